"""`fit` vs per-frame IK: solve speed (frames/s, CPU) and accuracy on a synthetic walk and the rendered clips.

Run from the repo root: .venv/bin/python -m benchmarks.bench_fit [--frames 300] [--threads 1] [--no-clips]
- speed: the solve alone (perception and camera excluded) on a synthetic 300-frame walk, per preset, wall and CPU
  seconds with `--threads` torch threads (the method's own default is 1);
- synthetic accuracy: 90 noisy frames (3 px, 3 cm) with a 10-frame body gap and a 15-frame left-hand gap;
- rendered clips (tests/data/groundtruth): the whole pipeline with each preset, camera-frame MPJPE / PA-MPJPE of the
  22 body joints, wrist-relative hand MPJPE, jitter (10 m/s^3), against per-frame IK on the same observations.
Writes results/fit.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from backend.cache.stage_cache import StageCache
from backend.eval.metrics import BODY_JOINTS, jitter, mpjpe, pa_mpjpe
from backend.fitting.rig import LandmarkRig
from backend.fitting.wholebody.settings import FitSettings
from backend.fitting.wholebody.solve import FitOutput, solve_fit
from backend.models.base import BodyModel
from backend.models.loader import load_body_model
from backend.pipeline import make_spec, run_job
from backend.presets import get_preset
from backend.settings import resolve
from protocol.skeleton import LEFT_HAND_JOINTS, RIGHT_HAND_JOINTS
from tests.support.synthetic_fit import CAMERA_HEIGHT, joints_of, synthetic_clip

PRESETS = ("preview-fast", "fullbody-default")
PER_FRAME_IK = FitSettings(iterations=0, global_iterations=0, init_smooth=0.0)
GT_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "groundtruth"
RESULTS = Path(__file__).resolve().parent / "results"


def preset_settings(name: str) -> FitSettings:
    """The method settings a preset resolves to."""
    return resolve(FitSettings, get_preset(name).settings, {}).section("method")


def world_joints(model: BodyModel, out: FitOutput, initial: bool = False) -> np.ndarray:
    """World joints of a solve, or of its per-frame start."""
    if initial:
        rest_pelvis = model.rest_joints(torch.zeros(10))[0].numpy()
        return joints_of(model, out.init_pose, out.init_root_pos - rest_pelvis, np.zeros(10))
    return joints_of(model, out.full_pose, out.transl, out.betas)


def in_camera(joints: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """World joints seen from per-frame cameras."""
    return np.einsum("tij,tnj->tni", r, joints) + t[:, None]


def speed(model: BodyModel, rig: LandmarkRig, frames: int) -> dict[str, dict[str, float]]:
    """Seconds and frames/s of the solve alone, per preset."""
    clip = synthetic_clip(model, t=frames)
    solve_fit(clip.obs, clip.cam, rig, FitSettings(iterations=1, global_iterations=1))  # warm-up
    out = {}
    for name in PRESETS:
        wall, cpu = time.perf_counter(), time.process_time()
        solve_fit(clip.obs, clip.cam, rig, preset_settings(name))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        out[name] = {"frames": frames, "wall_s": wall, "cpu_s": cpu, "fps_wall": frames / wall, "fps_cpu": frames / cpu}
        print(f"speed {name:18s} {frames} frames: wall {wall:.2f} s ({frames / wall:.0f} fps), "
              f"cpu {cpu:.2f} s ({frames / cpu:.0f} fps)")
    return out


def synthetic_accuracy(model: BodyModel, rig: LandmarkRig) -> dict[str, dict[str, float]]:
    """MPJPE on observed and on gap frames, jitter and root error on the synthetic walk."""
    clip = synthetic_clip(model)
    gt = clip.joints_world.copy()
    gt[..., 1] += CAMERA_HEIGHT
    seen = clip.obs.body_valid
    runs = {"per-frame IK": world_joints(model, solve_fit(clip.obs, clip.cam, rig, PER_FRAME_IK), initial=True)}
    for name in PRESETS:
        runs[name] = world_joints(model, solve_fit(clip.obs, clip.cam, rig, preset_settings(name)))
    out = {"ground truth": {"jitter": float(jitter(gt, 30.0, joints=BODY_JOINTS).mean())}}
    for name, joints in runs.items():
        out[name] = {
            "mpjpe_seen_mm": float(mpjpe(joints, gt, valid=seen).mean()),
            "mpjpe_gap_mm": float(mpjpe(joints, gt, valid=~seen).mean()),
            "jitter": float(jitter(joints, 30.0, joints=BODY_JOINTS).mean()),
            "root_mm": float(np.linalg.norm(joints[:, 0] - gt[:, 0], axis=-1).mean() * 1000),
        }
        print(f"synthetic {name:18s} " + " ".join(f"{k} {v:.1f}" for k, v in out[name].items()))
    return out


def clip_scores(pred: np.ndarray, truth: np.ndarray, seen: np.ndarray) -> dict[str, float]:
    """Camera-frame body and hand errors and jitter."""
    return {
        "mpjpe_mm": float(mpjpe(pred, truth, joints=BODY_JOINTS, valid=seen).mean()),
        "pa_mpjpe_mm": float(pa_mpjpe(pred, truth, joints=BODY_JOINTS, valid=seen).mean()),
        "left_hand_mm": float(mpjpe(pred, truth, root=20, joints=list(LEFT_HAND_JOINTS), valid=seen).mean()),
        "right_hand_mm": float(mpjpe(pred, truth, root=21, joints=list(RIGHT_HAND_JOINTS), valid=seen).mean()),
        "jitter": float(jitter(pred, 30.0, joints=BODY_JOINTS).mean()),
    }


def rendered_clips(cache: StageCache) -> dict[str, dict[str, dict[str, float]]]:
    """Each ground-truth clip through the pipeline with each preset, and per-frame IK on its observations."""
    index = GT_DIR / "index.json"
    if not index.exists():
        print(f"no rendered clips: {index} is missing")
        return {}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for clip in json.loads(index.read_text())["clips"]:
        name = clip["name"]
        with np.load(GT_DIR / f"{name}.npz") as f:
            truth = in_camera(f["joints"], f["R_w2c"], f["t_w2c"])
        out[name] = {"ground truth": {"jitter": float(jitter(truth, 30.0, joints=BODY_JOINTS).mean())}}
        for preset in PRESETS:
            result, ctx = run_job(make_spec(str(GT_DIR / f"{name}.mp4"), preset=preset), cache)
            model = ctx.body_model()
            motion, camera = result.smplx, result.camera
            obs = ctx.observations()
            if preset == PRESETS[0]:
                base = solve_fit(obs, ctx.camera(), LandmarkRig(model), PER_FRAME_IK)
                ik = in_camera(world_joints(model, base, initial=True), base.r_w2c, base.t_w2c)
                out[name]["per-frame IK"] = clip_scores(ik, truth, obs.body_valid)
            pred = in_camera(joints_of(model, motion.poses().reshape(-1, 55, 3), motion.transl, motion.betas),
                             camera.R_w2c, camera.t_w2c)
            out[name][preset] = clip_scores(pred, truth, obs.body_valid) | {"fit_s": ctx.timings.get("fit", 0.0)}
        for label, row in out[name].items():
            print(f"{name:13s} {label:18s} " + " ".join(f"{k} {v:.1f}" for k, v in row.items()))
    return out


def main() -> None:
    """Run the benchmark and write results/fit.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-clips", action="store_true", help="skip the rendered clips (no perception run)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_body_model("default")
    rig = LandmarkRig(model)
    report = {"threads": args.threads, "speed": speed(model, rig, args.frames),
              "synthetic": synthetic_accuracy(model, rig)}
    if not args.no_clips:
        with tempfile.TemporaryDirectory() as tmp:
            report["clips"] = rendered_clips(StageCache(Path(tmp)))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "fit.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS / 'fit.json'}")


if __name__ == "__main__":
    main()
