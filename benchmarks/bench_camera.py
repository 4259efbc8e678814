"""Camera stage benchmark: speed (frames/s) and accuracy on synthetic 720p clips, and the static vtest.avi clip.

Run from the repository root: .venv/bin/python -m benchmarks.bench_camera [--frames 120] [--vtest PATH]
Writes benchmarks/results/camera.json. Wall time depends on what else the machine runs; CPU time is the
process's own (all its threads).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from backend.camera import CameraSettings, solve_camera
from backend.camera.synthetic import accuracy, make_clip, trajectory_error, upscaled, write_video

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
OUT = Path(__file__).resolve().parent / "results" / "camera.json"


def bench_synthetic(kind: str, frames: int, tmp: Path) -> dict:
    """Render `kind` at 640x360, upscale to 1280x720, encode, then time solve_camera end to end."""
    clip = upscaled(make_clip(kind, T=frames, w=640, h=360), 2)
    path = tmp / f"{kind}.mp4"
    write_video(clip, str(path))
    t0, c0 = time.perf_counter(), time.process_time()
    sol = solve_camera(path, settings=CameraSettings())
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    ate, rot = trajectory_error(clip, sol.R_w2c, sol.t_w2c)
    row = {
        "clip": f"synthetic {kind} 1280x720",
        "frames": frames,
        "wall_s": dt,
        "cpu_s": dc,
        "fps_wall": frames / dt,
        "fps_cpu": frames / dc,
        "static": sol.static,
        "points": len(sol.points),
        "fov_deg": 2 * math.degrees(math.atan(0.5 * clip.size[0] / sol.K[0, 0])),
        "fov_true_deg": 55.0,
        "centre_rms_over_path": ate,
        "median_rotation_error_deg": rot,
        **asdict(accuracy(clip, sol.R_w2c, sol.t_w2c, sol.angvel)),
    }
    print(json.dumps(row))
    return row


def bench_vtest(path: Path) -> dict:
    """Time the static-camera clip and report whether it came out static."""
    t0, c0 = time.perf_counter(), time.process_time()
    sol = solve_camera(path)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    n = len(sol.frame_indices)
    row = {
        "clip": f"{path.name} 768x576",
        "frames": n,
        "wall_s": dt,
        "cpu_s": dc,
        "fps_wall": n / dt,
        "fps_cpu": n / dc,
        "static": sol.static,
    }
    print(json.dumps(row))
    return row


def main() -> None:
    """Parse arguments, run every benchmark and write the results file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--kinds", nargs="+", default=["static", "pan", "dolly", "walk"])
    ap.add_argument("--vtest", type=Path, default=VTEST)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            rows.append(bench_synthetic(kind, args.frames, Path(tmp)))
    if args.vtest.exists():
        rows.append(bench_vtest(args.vtest))
    else:
        print(f"vtest skipped: {args.vtest} not found (apt-get install opencv-doc)")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"cpu_count": os.cpu_count(), "load_avg": os.getloadavg(), "rows": rows}, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
