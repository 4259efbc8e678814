"""Command line: `python -m benchmarks.groundtruth --suite smoke|full --out DIR`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.groundtruth.generate import DEFAULT_DATA, SUITES, RenderSettings, generate_suite


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and generate the suite; prints the index entries as JSON."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.groundtruth", description=__doc__)
    ap.add_argument("--suite", choices=sorted(SUITES), required=True)
    ap.add_argument("--out", type=Path, required=True, help="output folder (created)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding cmu_iclone30/ etc.")
    ap.add_argument("--only", nargs="*", help="generate only these clip names")
    ap.add_argument("--width", type=int, default=RenderSettings.width)
    ap.add_argument("--height", type=int, default=RenderSettings.height)
    ap.add_argument("--samples", type=int, default=RenderSettings.samples)
    ap.add_argument("--threads", type=int, default=RenderSettings.threads)
    ap.add_argument("--crf", type=int, default=RenderSettings.crf, help="H.264 quality (lower = larger)")
    ap.add_argument("--overlay", action="store_true", help="also save NAME_overlay.png (projected GT joints)")
    args = ap.parse_args(argv)
    settings = RenderSettings(args.width, args.height, args.samples, args.threads, args.crf)
    entries = generate_suite(args.suite, args.out, args.data, settings, args.only, args.overlay)
    json.dump(entries, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
