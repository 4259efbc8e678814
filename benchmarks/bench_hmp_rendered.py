"""HMP vs its per-frame initialisation on the rendered ground-truth hand clips, through real perception.

Run from the repo root: .venv/bin/python -m benchmarks.bench_hmp_rendered [--suite full] [--clips ...]
Each clip goes through mediapipe (the `hands-closeup` preset's perception, from the shared stage cache), then
`fit_hand` with the method's default settings and a fixed camera, once per hand. Scored in the camera frame on
the 16 joints of each hand, on frames where the render shows the hand and mediapipe found it: PA-MPJPE,
RA-MPJPE (mm) and RA-ACC (mm/frame^2) of raw mediapipe, the per-frame IK start and HMP, as the mean over
hands and pooled over all scored frames. A second pass hides 30% of each clip's frames (stretches of 4-20
frames, three mask seeds) from the fit and scores the same frames, plus RA-MPJPE on the hidden ones (per-frame
IK there is its slerp infill). Writes results/hmp_rendered.json.
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
from backend.priors.hand_motion.simulate import occlusion_mask

PRESET = "hands-closeup"
CLIPS = ("wash_hand", "sword_hand", "punch_hand")
CONDITIONS = {"occluded_0pct": (0.0, (0,)), "occluded_30pct": (0.3, (0, 1, 2))}  # share hidden, mask seeds
METRICS = ("pa_mpjpe", "ra_mpjpe", "ra_acc")


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
    """PA-MPJPE, RA-MPJPE and RA-ACC of one hand on the valid frames (the sums too, for pooled means)."""
    idx = M.hand_joints(side)
    pa, ra = M.pa_mpjpe(pred, gt, joints=idx, valid=valid), M.ra_mpjpe(pred, gt, idx, valid=valid)
    acc = M.ra_acc(pred, gt, idx, valid=valid)
    return {"pa_mpjpe": float(pa.mean()), "ra_mpjpe": float(ra.mean()), "ra_acc": float(acc.mean()),
            "sums": {"pa_mpjpe": float(pa.sum()), "ra_mpjpe": float(ra.sum()), "ra_acc": float(acc.sum()),
                     "frames": len(pa), "windows": len(acc)}}


def pooled(hands: list[dict], row: str) -> dict[str, float]:
    """A row's metrics over every scored frame (RA-ACC: every window) of all hands, as papers average."""
    s = [h[row]["sums"] for h in hands]
    frames, windows = sum(x["frames"] for x in s), sum(x["windows"] for x in s)
    return {"pa_mpjpe": sum(x["pa_mpjpe"] for x in s) / frames, "ra_mpjpe": sum(x["ra_mpjpe"] for x in s) / frames,
            "ra_acc": sum(x["ra_acc"] for x in s) / max(windows, 1)}


def bench_clip(video: Path, truth: Path, cache: StageCache, occluded: float = 0.0,
               seed: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """Per hand: the scores of raw mediapipe (all detections), the per-frame start and HMP on one clip, with
    `occluded` of the detections hidden from the fit."""
    spec = make_spec(str(video), preset=PRESET)
    job = JobContext(spec, job_settings(spec), cache)
    obs = job.observations()
    settings = HmpSettings()
    rc = hands_camera(job, settings, len(obs))
    cam = CameraTrack(K=np.asarray(rc.K), R_w2c=np.asarray(rc.R_w2c), t_w2c=np.asarray(rc.t_w2c))
    gt = bench.load_ground_truth(truth).frames([int(i) for i in obs.frame_indices])
    raw = hand_landmarks_to_joints(obs.hand_kp3d)
    prior, cfg = load_hand_prior(), fit_config(settings)
    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for col, side in enumerate(SIDES):
        valid = gt.hand_visible[:, col] & obs.hand_valid[:, col]
        if valid.sum() < settings.min_detections:
            continue
        shown = obs.hand_valid[:, col] & (occlusion_mask(rng, len(obs), occluded) if occluded > 0 else True)
        track = HandTrack(side, obs.hand_kp2d[:, col], obs.hand_kp3d[:, col], shown)
        fit, init, _ = fit_hand(track, cam, load_hand_model("default", side), prior, cfg)
        rows = {"per-frame IK": camera_joints(init, side, cam), "hmp": camera_joints(fit, side, cam)}
        out[side] = {"frames": {"n": int(valid.sum())}, "raw mediapipe": scores(raw, gt.joints_cam, side, valid)}
        hidden = valid & ~shown
        for name, joints in rows.items():
            out[side][name] = scores(joints, gt.joints_cam, side, valid)
            if occluded > 0 and hidden.any():
                out[side][name]["ra_mpjpe_hidden"] = float(
                    M.ra_mpjpe(joints, gt.joints_cam, M.hand_joints(side), valid=hidden).mean())
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
    clips = [clip for clip in bench.list_clips(folder, args.clips) if clip.truth is not None]
    report: dict[str, dict] = {}
    for cond, (share, seeds) in CONDITIONS.items():
        runs = {seed: {clip.name: bench_clip(clip.video, clip.truth, cache, share, seed) for clip in clips}
                for seed in seeds}
        per_clip = {f"{name} seed {seed}" if len(seeds) > 1 else name: result
                    for seed, run in runs.items() for name, result in run.items()}
        hands = [h for clip in per_clip.values() for h in clip.values()]
        rows = ("raw mediapipe", "per-frame IK", "hmp") if share == 0 else ("per-frame IK", "hmp")
        keys = METRICS if share == 0 else (*METRICS, "ra_mpjpe_hidden")
        mean = {r: {k: float(np.mean([h[r][k] for h in hands if k in h[r]])) for k in keys} for r in rows}
        pool = {r: pooled(hands, r) for r in rows}
        report[cond] = {"clips": per_clip, "mean": mean, "pooled": pool}
        print(f"== {cond}")
        for clip, per_side in per_clip.items():
            for side, rs in per_side.items():
                print(f"{clip:19s} {side:5s} ({rs['frames']['n']:3d} frames) " + "  ".join(
                    f"{r}: {rs[r]['pa_mpjpe']:.1f}/{rs[r]['ra_mpjpe']:.1f}/{rs[r]['ra_acc']:.1f}" for r in rows))
        for r in rows:
            hidden = f"  RA-MPJPE hidden {mean[r]['ra_mpjpe_hidden']:.1f}" if "ra_mpjpe_hidden" in mean[r] else ""
            print(f"mean over {len(hands):2d} hands, {r:14s} PA-MPJPE {mean[r]['pa_mpjpe']:.1f}  "
                  f"RA-MPJPE {mean[r]['ra_mpjpe']:.1f}  RA-ACC {mean[r]['ra_acc']:.2f}{hidden}")
        for r in rows:
            print(f"pooled over frames, {r:14s} PA-MPJPE {pool[r]['pa_mpjpe']:.1f}  "
                  f"RA-MPJPE {pool[r]['ra_mpjpe']:.1f}  RA-ACC {pool[r]['ra_acc']:.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"suite": str(folder), "conditions": report}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
