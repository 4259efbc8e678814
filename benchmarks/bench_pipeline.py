"""End-to-end speed of the presets on real 720p video: frames per second of each stage and of the whole job.

Run from the repo root: .venv/bin/python -m benchmarks.bench_pipeline [--frames 120] [--preset P ...] [--json F]
Each preset runs the whole pipeline (perception, camera, solve) on a fresh stage cache, so nothing is reused;
perception and camera overlap (see JobContext.start_camera), so the stage figures add up to more than the total.
Every preset first runs once on 10 frames of the sample, untimed: the backend is a long-running server, so
one-time start-up (imports, model loading, first calls) belongs to no job and must not land on the first preset.
Clips: opencv-doc's Megamind.avi upscaled and cropped to 1280x720 (apt-get install opencv-doc) and the README's
sample clip (480x360). Writes results/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from backend.cache.stage_cache import StageCache
from backend.pipeline import make_spec, run_job
from benchmarks.bench_perception import DATA, make_720p

SAMPLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "groundtruth" / "walk_static.mp4"
STAGES = ("perception", "camera", "fit", "hmp")


def run_preset(video: Path, preset: str, workdir: Path) -> dict[str, float]:
    """One uncached run of `preset` on `video`: frames, seconds and frames/s per stage and in total."""
    spec = make_spec(str(video), preset=preset)
    cache = StageCache(workdir / f"cache-{preset}-{video.stem}")
    t0 = time.perf_counter()
    result, ctx = run_job(spec, cache)
    total = time.perf_counter() - t0
    frames = len(result.meta.frame_indices)
    row: dict[str, float] = {"frames": frames, "total_s": total, "fps": frames / total}
    for stage in STAGES:
        if stage in ctx.timings:
            row[f"{stage}_s"] = ctx.timings[stage]
            row[f"{stage}_fps"] = frames / ctx.timings[stage]
    return row


def main() -> None:
    """Make the clips, run every preset on each, print and write the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120, help="frames of the 720p clip")
    ap.add_argument("--preset", nargs="+", default=["fullbody-default", "preview-fast"])
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "pipeline.json")
    args = ap.parse_args()
    report: dict[str, object] = {"cpu_count": os.cpu_count(), "load_avg_before": list(os.getloadavg()), "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clips = {"megamind 1280x720": make_720p(DATA / "Megamind.avi", work / "mm720.mp4", args.frames),
                 "sample 480x360": SAMPLE}
        for preset in args.preset:
            run_job(make_spec(str(SAMPLE), preset=preset, frames=[0, 10]), StageCache(work / f"warm-{preset}"))
        for name, video in clips.items():
            for preset in args.preset:
                row = {"clip": name, "preset": preset, **run_preset(video, preset, work)}
                report["rows"].append(row)  # type: ignore[union-attr]
                stages = "  ".join(f"{s} {row[f'{s}_fps']:.1f}" for s in STAGES if f"{s}_fps" in row)
                print(f"{name:18s} {preset:18s} end to end {row['fps']:5.1f} fps  ({stages} fps)", flush=True)
    report["load_avg_after"] = list(os.getloadavg())
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
