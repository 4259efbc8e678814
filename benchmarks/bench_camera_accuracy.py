"""Camera-solve accuracy on the rendered ground-truth clips (known per-frame camera): rotation, centre path, static.

Run from the repository root:
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_camera_accuracy [--dirs DIR ...] [--clips NAME ...]
--gt-focal gives the solve the true focal length (isolates the pose solve from the focal guess).
--e2e also runs `vidrig process CLIP --preset preview-fast` (a fresh stage cache, so no camera solved by other
code is reused; about a minute a clip) and compares the body's world root trajectory (`trans`) with the ground
truth: e2e_extent / gt_extent (largest per-axis range, m) and e2e_path / gt_path (path length, m).
Defaults to the smoke clips in tests/data/groundtruth and the full suite in ~/.cache/vidrig/groundtruth-full.
Per clip: the camera is solved from the video alone (default settings, person masks by selfie segmentation) and
compared with the clip's NAME.npz:
- rot_mean/rot_max: geodesic angle (deg) of R_est(t) R_est(0)^T against R_gt(t) R_gt(0)^T (first frame aligned);
- path_err: RMS camera-centre error after a similarity (Umeyama) fit, divided by the GT path length (NaN when the
  GT centre does not move);
- est_path: the solved centre's path length divided by the scene depth the solve assumes (`scene_depth`), and
  gt_path the GT path length divided by the GT median depth of the person: a drift check for fixed cameras and a
  scale sanity check for moving ones;
- static (solved) against static_gt.
Writes benchmarks/results/camera_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from backend.camera import CameraSettings, solve_camera
from backend.camera.types import CameraSolve

REPO = Path(__file__).resolve().parents[1]
DIRS = [REPO / "tests" / "data" / "groundtruth", Path.home() / ".cache" / "vidrig" / "groundtruth-full"]
OUT = REPO / "benchmarks" / "results" / "camera_accuracy.json"


def centres(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(T,3) camera centres -R^T t of world->camera poses."""
    return -np.einsum("tji,tj->ti", R, t)


def rotation_errors_deg(R_est: np.ndarray, R_gt: np.ndarray) -> np.ndarray:
    """(T,) geodesic angle (deg) between the estimated and true rotations relative to the first frame."""
    rel_e = np.einsum("tij,kj->tik", R_est, R_est[0])
    rel_g = np.einsum("tij,kj->tik", R_gt, R_gt[0])
    return np.degrees(Rotation.from_matrix(np.einsum("tij,tkj->tik", rel_e, rel_g)).magnitude())


def umeyama_path_error(C_est: np.ndarray, C_gt: np.ndarray) -> float:
    """RMS centre error after the best similarity C_gt ~ s Q C_est + c, over the GT path length (NaN if ~0)."""
    path = float(np.linalg.norm(np.diff(C_gt, axis=0), axis=1).sum())
    if path < 1e-6:
        return float("nan")
    mg, me = C_gt.mean(0), C_est.mean(0)
    G, E = C_gt - mg, C_est - me
    u, sv, vt = np.linalg.svd(G.T @ E)
    S = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    ve = float((E**2).sum())
    s = float((sv * np.diag(S)).sum() / ve) if ve > 0 else 0.0
    fitted = s * E @ (u @ S @ vt).T + mg
    return float(np.sqrt(((fitted - C_gt) ** 2).sum(1).mean()) / path)


def score(sol: CameraSolve, gt: dict, depth_guess: float) -> dict:
    """Rotation, path and static figures of one solve against its ground truth (see the module docstring)."""
    R_gt, t_gt = np.asarray(gt["R_w2c"], np.float64), np.asarray(gt["t_w2c"], np.float64)
    n = min(len(R_gt), sol.n_frames)
    R_gt, t_gt = R_gt[:n], t_gt[:n]
    C_gt, C_est = centres(R_gt, t_gt), sol.camera_centers()[:n]
    rot = rotation_errors_deg(sol.R_w2c[:n], R_gt)
    gt_path = float(np.linalg.norm(np.diff(C_gt, axis=0), axis=1).sum())
    joints_cam = np.einsum("tij,tnj->tni", R_gt, np.asarray(gt["joints"], np.float64)[:n]) + t_gt[:, None]
    gt_depth = float(np.median(joints_cam[..., 2]))
    gt_turn = float(np.degrees(Rotation.from_matrix(np.einsum("tij,kj->tik", R_gt, R_gt[0])).magnitude().max()))
    return {
        "frames": n,
        "static_gt": bool(gt_path < 1e-6 and gt_turn < 1e-3),
        "static": sol.static,
        "gt_turn_deg": gt_turn,
        "rot_mean": float(rot.mean()),
        "rot_max": float(rot.max()),
        "path_err": umeyama_path_error(C_est, C_gt),
        "gt_path": gt_path / gt_depth,
        "est_path": float(np.linalg.norm(np.diff(C_est, axis=0), axis=1).sum()) / depth_guess,
        "est_extent": float(np.ptp(C_est, axis=0).max()) / depth_guess,
    }


def trajectory_extent(trans: np.ndarray) -> tuple[float, float]:
    """(largest per-axis range, path length) of a (T,3) trajectory in metres."""
    return float(np.ptp(trans, axis=0).max()), float(np.linalg.norm(np.diff(trans, axis=0), axis=1).sum())


def end_to_end(mp4: Path, gt_trans: np.ndarray, preset: str = "preview-fast") -> dict:
    """Run the whole pipeline on a clip in a fresh stage cache and compare the world root trajectory."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.npz"
        cmd = [sys.executable, "-m", "backend.cli", "process", str(mp4), "--preset", preset,
               "--cache", tmp, "--out", str(out)]
        subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
        with np.load(out, allow_pickle=False) as z:
            trans = np.asarray(z["trans"], np.float64)
    ext, path = trajectory_extent(trans)
    gt_ext, gt_path = trajectory_extent(np.asarray(gt_trans, np.float64))
    return {"e2e_extent": ext, "gt_extent": gt_ext, "e2e_path": path, "gt_path_m": gt_path}


def find_clips(dirs: list[Path], names: list[str] | None) -> list[Path]:
    """Every NAME.mp4 with a NAME.npz beside it in `dirs` (optionally only `names`), in order of dirs, names."""
    return [
        mp4
        for d in dirs
        for mp4 in sorted(d.glob("*.mp4"))
        if mp4.with_suffix(".npz").exists() and (not names or mp4.stem in names)
    ]


def main() -> None:
    """Solve and score every clip, print one row per clip and write the results file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dirs", nargs="+", type=Path, default=DIRS)
    ap.add_argument("--clips", nargs="+", default=None)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--gt-focal", action="store_true", help="give the solve the clip's true focal length")
    ap.add_argument("--e2e", action="store_true", help="also run the whole pipeline and score the root trajectory")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    head = f"{'clip':34s} {'static':>6s}/{'gt':<5s} {'turn':>6s} {'rot_mean':>8s} {'rot_max':>8s} {'path_err':>8s} "
    print(head + f"{'gt_path':>8s} {'est_path':>8s} {'extent':>8s} {'s':>6s}")
    for mp4 in find_clips(args.dirs, args.clips):
        with np.load(mp4.with_suffix(".npz"), allow_pickle=False) as z:
            gt = {k: z[k] for k in ("R_w2c", "t_w2c", "joints", "K", "trans")}
        settings = CameraSettings(focal_px=float(gt["K"][0, 0]) if args.gt_focal else None)
        t0 = time.perf_counter()
        sol = solve_camera(mp4, settings=settings)
        wall = time.perf_counter() - t0
        row = {"clip": f"{mp4.parent.name}/{mp4.stem}", "wall_s": wall, **score(sol, gt, settings.scene_depth)}
        rows.append(row)
        print(
            f"{row['clip']:34s} {row['static']!s:>6s}/{row['static_gt']!s:<5s} {row['gt_turn_deg']:6.1f} "
            f"{row['rot_mean']:8.2f} {row['rot_max']:8.2f} {row['path_err']:8.3f} {row['gt_path']:8.3f} "
            f"{row['est_path']:8.3f} {row['est_extent']:8.3f} {row['wall_s']:6.1f}",
            flush=True,
        )
        if args.e2e:
            row.update(end_to_end(mp4, gt["trans"]))
            print(f"{'':34s} root trajectory: extent {row['e2e_extent']:.2f} m (GT {row['gt_extent']:.2f}), "
                  f"path {row['e2e_path']:.2f} m (GT {row['gt_path_m']:.2f})", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"gt_focal": args.gt_focal, "e2e": args.e2e, "load_avg": os.getloadavg()}
    args.out.write_text(json.dumps({**meta, "rows": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
