"""HMP vs its per-frame initialisation on the rendered ground-truth hand clips, through real perception.

Run from the repo root: .venv/bin/python -m benchmarks.bench_hmp_rendered [--suite full] [--clips ...]
Each clip goes through mediapipe (the `hands-closeup` preset's perception, from the shared stage cache), then
`fit_hand` with the method's default settings and a fixed camera, once per hand. Scored in the camera frame on
the 16 joints of each hand, on frames where the render shows the hand and mediapipe found it: PA-MPJPE,
RA-MPJPE (mm) and RA-ACC (mm/frame^2) of raw mediapipe, the per-frame IK start and HMP. Writes
results/hmp_rendered.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from backend.cache.stage_cache import StageCache
from backend.eval import bench
from backend.eval import metrics as M
from backend.eval.landmark_joints import SIDES, hand_landmarks_to_joints
from backend.methods.base import JobContext
from backend.methods.hmp.method import fit_config, hands_camera
from backend.methods.hmp.settings import HmpSettings
from backend.models.base import HandPose
from backend.models.loader import load_hand_model
from backend.pipeline import job_settings, make_spec
from backend.priors.hand_motion.fitting import CameraTrack, HandFit, HandTrack, fit_hand
from backend.priors.hand_motion.model import load_hand_prior

PRESET = "hands-closeup"
CLIPS = ("wash_hand", "sword_hand", "punch_hand")


def camera_joints(fit: HandFit, side: str, cam: CameraTrack) -> np.ndarray:
    """(T,55,3) SMPL-X-layout joints with only this hand filled, in the camera frame."""
    with torch.no_grad():
        joints = load_hand_model("default", side)(HandPose(
            torch.as_tensor(fit.global_orient), torch.as_tensor(fit.hand_pose),
            torch.as_tensor(fit.betas)[None], torch.as_tensor(fit.transl))).joints.double().numpy()
    out = np.full((joints.shape[0], 55, 3), np.nan)
    out[:, list(M.hand_joints(side))] = np.einsum("tij,tnj->tni", cam.R_w2c, joints) + cam.t_w2c[:, None]
    return out


def scores(pred: np.ndarray, gt: np.ndarray, side: str, valid: np.ndarray) -> dict[str, float]:
    """PA-MPJPE, RA-MPJPE and RA-ACC of one hand on the valid frames."""
    idx = M.hand_joints(side)
    return {"pa_mpjpe": float(M.pa_mpjpe(pred, gt, joints=idx, valid=valid).mean()),
            "ra_mpjpe": float(M.ra_mpjpe(pred, gt, idx, valid=valid).mean()),
            "ra_acc": float(M.ra_acc(pred, gt, idx, valid=valid).mean())}


def bench_clip(video: Path, truth: Path, cache: StageCache) -> dict[str, dict[str, dict[str, float]]]:
    """Per hand: the scores of raw mediapipe, the per-frame start and HMP on one clip."""
    spec = make_spec(str(video), preset=PRESET)
    job = JobContext(spec, job_settings(spec), cache)
    obs = job.observations()
    settings = HmpSettings()
    rc = hands_camera(job, settings, len(obs))
    cam = CameraTrack(K=np.asarray(rc.K), R_w2c=np.asarray(rc.R_w2c), t_w2c=np.asarray(rc.t_w2c))
    gt = bench.load_ground_truth(truth).frames([int(i) for i in obs.frame_indices])
    raw = hand_landmarks_to_joints(obs.hand_kp3d)
    prior, cfg = load_hand_prior(), fit_config(settings)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for col, side in enumerate(SIDES):
        valid = gt.hand_visible[:, col] & obs.hand_valid[:, col]
        if valid.sum() < settings.min_detections:
            continue
        track = HandTrack(side, obs.hand_kp2d[:, col], obs.hand_kp3d[:, col], obs.hand_valid[:, col])
        fit, init, _ = fit_hand(track, cam, load_hand_model("default", side), prior, cfg)
        out[side] = {"frames": {"n": int(valid.sum())},
                     "raw mediapipe": scores(raw, gt.joints_cam, side, valid),
                     "per-frame IK": scores(camera_joints(init, side, cam), gt.joints_cam, side, valid),
                     "hmp": scores(camera_joints(fit, side, cam), gt.joints_cam, side, valid)}
    return out


def main() -> None:
    """Score every hand clip of the suite and print the per-row means over hands."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="full")
    ap.add_argument("--clips", nargs="+", default=list(CLIPS))
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "vidrig" / "cache")
    ap.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "hmp_rendered.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    folder = bench.resolve_suite(args.suite)
    cache = StageCache(args.cache)
    report = {clip.name: bench_clip(clip.video, clip.truth, cache)
              for clip in bench.list_clips(folder, args.clips) if clip.truth is not None}
    rows = ("raw mediapipe", "per-frame IK", "hmp")
    hands = [h for clip in report.values() for h in clip.values()]
    mean = {r: {k: float(np.mean([h[r][k] for h in hands])) for k in ("pa_mpjpe", "ra_mpjpe", "ra_acc")}
            for r in rows}
    for clip, per_side in report.items():
        for side, rs in per_side.items():
            print(f"{clip:12s} {side:5s} ({rs['frames']['n']:3d} frames) " + "  ".join(
                f"{r}: {rs[r]['pa_mpjpe']:.1f}/{rs[r]['ra_mpjpe']:.1f}/{rs[r]['ra_acc']:.1f}" for r in rows))
    for r in rows:
        print(f"mean over {len(hands)} hands, {r:14s} PA-MPJPE {mean[r]['pa_mpjpe']:.1f}  "
              f"RA-MPJPE {mean[r]['ra_mpjpe']:.1f}  RA-ACC {mean[r]['ra_acc']:.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"suite": str(folder), "clips": report, "mean": mean}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
