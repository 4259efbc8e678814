"""The first job after the backend starts against the next one: what an artist waits for once per session.

Run from the repo root: .venv/bin/python -m benchmarks.bench_first_job [--frames 30] [--preset P] [--json F]
Starts a real `vidrig serve` (fresh state folder), times it until its worker reports ready, then runs two jobs
of the same length on different frames of the README's sample (so neither finds the other's stages cached) and
times each from submit to result. Writes results/first_job.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from protocol import messages as m
from tests.support.server import ServerProcess

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "groundtruth" / "walk_static.mp4"


def timed_job(server: ServerProcess, preset: str, frames: tuple[int, int]) -> dict[str, Any]:
    """Submit one job and wait for its result: seconds from submit to result, and the job's stage timings."""
    with server.client(timeout=60) as client:
        start = time.perf_counter()
        job = client.submit(SAMPLE, preset=preset, frames=frames)
        reply = client.wait(job, timeout=600)
        seconds = time.perf_counter() - start
    if not isinstance(reply, m.ResultMessage) or reply.result is None:
        raise RuntimeError(f"job on frames {frames} did not finish: {reply}")
    return {"frames": list(frames), "seconds": seconds, "stages": reply.result.meta.timings}


def main() -> None:
    """Start the server, run the two jobs, print and write the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30, help="frames per job (the sample has 60)")
    ap.add_argument("--preset", default="fullbody-default")
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "first_job.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "state")
        start = time.perf_counter()
        server.start()
        ready = time.perf_counter() - start
        try:
            first = timed_job(server, args.preset, (0, args.frames))
            second = timed_job(server, args.preset, (args.frames, 2 * args.frames))
        finally:
            server.stop()
    report = {"cpu_count": os.cpu_count(), "preset": args.preset, "ready_s": ready, "first": first,
              "second": second, "first_extra_s": first["seconds"] - second["seconds"]}
    print(f"server ready after {ready:.1f} s; first job {first['seconds']:.2f} s, next job {second['seconds']:.2f} s "
          f"({args.frames} frames of the sample, {args.preset})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
