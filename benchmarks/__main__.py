"""Run every speed benchmark in turn (`python -m benchmarks`); each writes its JSON to benchmarks/results/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BACKEND = [sys.executable, "-m"]
STEPS: list[list[str]] = [
    [*BACKEND, "benchmarks.bench_protocol"],
    [*BACKEND, "benchmarks.bench_perception"],
    [*BACKEND, "benchmarks.bench_camera"],
    [*BACKEND, "benchmarks.bench_fit"],
    [*BACKEND, "benchmarks.bench_pipeline"],
    [*BACKEND, "benchmarks.bench_first_job"],
    [*BACKEND, "benchmarks.bench_hmp", "--family", "synthetic"],
    [str(REPO / ".venv-blender" / "bin" / "python"), "benchmarks/bench_addon.py"],
]


def main() -> int:
    """Run each benchmark from the repository root; the exit code is the number that failed."""
    failed = 0
    for step in STEPS:
        print(f"== {' '.join(step[1:])}", flush=True)
        failed += subprocess.run(step, cwd=REPO, check=False).returncode != 0
    return failed


if __name__ == "__main__":
    sys.exit(main())
