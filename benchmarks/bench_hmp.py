"""HMP vs per-frame IK on held-out synthetic hand motion: PA-MPJPE, RA-MPJPE, RA-ACC and fitting speed (CPU).

Run from the repo root: .venv/bin/python -m benchmarks.bench_hmp [--sequences 4] [--frames 150] [--threads 1]
    [--family synthetic|harness]
Each sequence is a finger motion on a moving wrist, seen by a 1280x720 camera with 3 px keypoint noise and 6 mm
landmark noise, with no and with 30% of the frames occluded, fitted on the default hand model with the shipped
prior. `synthetic`: the prior's own generator (seeds 50_000 + i, never used in training); `harness`: the
ground-truth harness's band-limited per-joint processes (benchmarks.groundtruth.fingers), another motion family.
Also reports the prior's encode-decode round trip on that family. Writes results/hmp_<family>.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from backend.eval.metrics import pa_mpjpe, ra_acc, ra_mpjpe
from backend.geometry.rotations import axis_angle_to_matrix
from backend.models.base import HandModel, HandPose
from backend.models.loader import load_body_model, load_hand_model
from backend.priors.hand_motion.fitting import FitConfig, HandFit, fit_hand
from backend.priors.hand_motion.model import DEFAULT_CHECKPOINT, load_hand_prior
from backend.priors.hand_motion.simulate import simulate
from backend.priors.hand_motion.synthetic import generate_dataset
from backend.priors.hand_motion.train import round_trip_error
from benchmarks.groundtruth.fingers import synthetic_hands

HAND16 = list(range(16))
FPS = 30.0


def joints_of(model: HandModel, fit: HandFit) -> np.ndarray:
    """World joints (T,16,3) of a fitted hand."""
    with torch.no_grad():
        out = model(HandPose(torch.as_tensor(fit.global_orient), torch.as_tensor(fit.hand_pose),
                             torch.as_tensor(fit.betas)[None], torch.as_tensor(fit.transl)))
    return out.joints.numpy()


def scores(pred: np.ndarray, gt: np.ndarray, hidden: np.ndarray) -> dict[str, float]:
    """PA-MPJPE and RA-MPJPE (mm) over all frames and over occluded ones, RA-ACC (mm/s^2)."""
    out = {
        "pa_mpjpe": float(pa_mpjpe(pred, gt).mean()),
        "ra_mpjpe": float(ra_mpjpe(pred, gt, HAND16).mean()),
        "ra_acc": float(ra_acc(pred, gt, HAND16, fps=FPS).mean()),
    }
    if hidden.any():
        out["ra_mpjpe_occluded"] = float(ra_mpjpe(pred, gt, HAND16, valid=hidden).mean())
    return out


def finger_motion(family: str, seed: int, frames: int, side: str) -> np.ndarray | None:
    """The finger motion of one sequence in `side`'s convention (None: simulate draws its own synthetic one)."""
    if family == "synthetic":
        return None
    rest = load_body_model("default").rest_joints(torch.zeros(1, 10)).numpy()
    left, right = synthetic_hands(frames, FPS, rest, seed)
    return left if side == "left" else right


def family_round_trip(family: str, count: int, frames: int) -> tuple[float, float]:
    """The prior's held-out round trip (degrees, mm) on `count` right-hand clips of a motion family."""
    if family == "synthetic":
        clips = generate_dataset(count, frames, seed=50_000)
    else:
        clips = [finger_motion(family, 50_000 + i, frames, "right") for i in range(count)]
    rots = axis_angle_to_matrix(torch.as_tensor(np.stack(clips), dtype=torch.float32))
    windows = torch.cat([rots[:, s:s + 128] for s in range(0, frames - 127, 64)])
    return round_trip_error(load_hand_prior(), windows)


def main() -> None:
    """Fit every sequence in both conditions and print/write the averaged metrics."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--family", choices=["synthetic", "harness"], default="synthetic")
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="output path (default: benchmarks/results/hmp_<family>.json)")
    args = ap.parse_args()
    out = Path(args.json) if args.json else Path(__file__).parent / "results" / f"hmp_{args.family}.json"
    torch.set_num_threads(args.threads)
    prior = load_hand_prior()
    cfg = FitConfig()
    rt_deg, rt_mm = family_round_trip(args.family, 8, 256)
    print(f"{args.family} round trip: {rt_deg:.2f} deg, {rt_mm:.2f} mm")
    report: dict[str, object] = {"checkpoint": str(DEFAULT_CHECKPOINT), "family": args.family, "frames": args.frames,
                                 "sequences": args.sequences, "threads": args.threads,
                                 "round_trip": {"rot_deg": rt_deg, "landmark_mm": rt_mm}, "conditions": {}}
    for occluded in (0.0, 0.3):
        rows: dict[str, list[dict[str, float]]] = {"init": [], "hmp": []}
        seconds, frames = 0.0, 0
        for i in range(args.sequences):
            side = ("right", "left")[i % 2]
            model = load_hand_model("default", side)
            pose = finger_motion(args.family, 50_000 + i, args.frames, side)
            sim = simulate(model, seed=50_000 + i, n_frames=args.frames, occluded=occluded, pose=pose)
            t0 = time.perf_counter()
            fit, init, _ = fit_hand(sim.track, sim.camera, model, prior, cfg)
            seconds += time.perf_counter() - t0
            frames += args.frames
            hidden = ~sim.track.valid
            rows["init"].append(scores(joints_of(model, init), sim.joints, hidden))
            rows["hmp"].append(scores(joints_of(model, fit), sim.joints, hidden))
        summary = {name: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for name, rs in rows.items()}
        summary["fit_frames_per_second"] = frames / seconds  # type: ignore[assignment]
        report["conditions"][f"occluded_{int(occluded * 100)}pct"] = summary  # type: ignore[index]
        print(f"occluded {occluded:.0%}: " + json.dumps(summary, indent=1))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
