"""`fit` on the rendered ground-truth smoke clips (known SMPL-X motion): accuracy against per-frame IK."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.cache.stage_cache import StageCache
from backend.eval.metrics import BODY_JOINTS, FOOT_JOINTS, foot_sliding, jitter, mpjpe, pa_mpjpe
from backend.fitting.rig import LandmarkRig
from backend.fitting.wholebody.settings import FitSettings
from backend.fitting.wholebody.solve import solve_fit
from backend.pipeline import make_spec, run_job
from tests.support.synthetic_fit import joints_of

GT_DIR = Path(__file__).resolve().parents[1] / "data" / "groundtruth"
INDEX = GT_DIR / "index.json"
CLIPS = [c["name"] for c in json.loads(INDEX.read_text())["clips"]]
pytestmark = pytest.mark.slow


def _in_camera(joints: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """World joints (T,55,3) seen from per-frame cameras."""
    return np.einsum("tij,tnj->tni", r, joints) + t[:, None]


@pytest.mark.parametrize("name", [c for c in ("walk_static", "punch_pan") if c in CLIPS])
def test_fit_beats_per_frame_ik_on_rendered_clips(name: str, tmp_path: Path) -> None:
    with np.load(GT_DIR / f"{name}.npz") as f:
        gt = {k: f[k] for k in ("joints", "R_w2c", "t_w2c")}
    spec = make_spec(str(GT_DIR / f"{name}.mp4"), preset="fullbody-default")
    result, ctx = run_job(spec, StageCache(tmp_path / "cache"))
    model = ctx.body_model()
    motion, camera = result.smplx, result.camera
    assert motion is not None and camera is not None
    fit = _in_camera(joints_of(model, motion.poses().reshape(-1, 55, 3), motion.transl, motion.betas),
                     camera.R_w2c, camera.t_w2c)
    truth = _in_camera(gt["joints"], gt["R_w2c"], gt["t_w2c"])

    obs, cam = ctx.observations(), ctx.camera()
    base = solve_fit(obs, cam, LandmarkRig(model), FitSettings(iterations=0, global_iterations=0, init_smooth=0.0))
    rest_pelvis = model.rest_joints(torch.zeros(10))[0].numpy()
    ik = _in_camera(joints_of(model, base.init_pose, base.init_root_pos - rest_pelvis, np.zeros(10)),
                    base.r_w2c, base.t_w2c)
    seen = obs.body_valid
    assert seen.mean() > 0.8
    fit_err = mpjpe(fit, truth, joints=BODY_JOINTS, valid=seen).mean()
    ik_err = mpjpe(ik, truth, joints=BODY_JOINTS, valid=seen).mean()
    assert fit_err < ik_err
    assert fit_err < 100.0  # mm
    assert pa_mpjpe(fit, truth, joints=BODY_JOINTS, valid=seen).mean() < 70.0
    fit_jitter = jitter(fit, 30.0, joints=BODY_JOINTS).mean()
    assert fit_jitter < 0.2 * jitter(ik, 30.0, joints=BODY_JOINTS).mean()
    assert fit_jitter < 2.0 * jitter(truth, 30.0, joints=BODY_JOINTS).mean()


def _slide_and_error(name: str, tmp_path: Path, variants: dict[object, FitSettings]) -> tuple[dict, dict]:
    """Foot sliding on the clip's ground-truth contacts (mm/frame) and world MPJPE (mm) of the solve with each
    variant's settings, on the same observations and camera."""
    with np.load(GT_DIR / f"{name}.npz") as f:
        truth_world, contacts = f["joints"], f["contacts"].astype(bool)
    spec = make_spec(str(GT_DIR / f"{name}.mp4"), preset="fullbody-default")
    _, ctx = run_job(spec, StageCache(tmp_path / "cache"))
    obs, cam, rig = ctx.observations(), ctx.camera(), LandmarkRig(ctx.body_model())
    slide, err = {}, {}
    for key, settings in variants.items():
        out = solve_fit(obs, cam, rig, settings)
        joints = joints_of(ctx.body_model(), out.full_pose, out.transl, out.betas)
        slide[key] = float(foot_sliding(joints[:, list(FOOT_JOINTS)], contacts).mean())
        err[key] = float(mpjpe(joints, truth_world, joints=BODY_JOINTS).mean())
    return slide, err


def test_foot_lock_stops_planted_feet_sliding(tmp_path: Path) -> None:
    slide, err = _slide_and_error("walk_static", tmp_path, {
        iters: replace(FitSettings(), foot_lock_iterations=iters) for iters in (0, 30)})
    assert slide[30] < 0.7 * slide[0], slide  # measured 12.7 -> 7.2 mm/frame (the rendered truth: 5.5)
    assert err[30] < err[0] + 3.0, err  # and the pose is no worse


def test_unseen_feet_stand_in_a_close_up(tmp_path: Path) -> None:
    slide, err = _slide_and_error("wash_closeup", tmp_path, {
        stand: replace(FitSettings(), unseen_feet_stand=stand) for stand in (False, True)})
    assert slide[True] < 0.7 * slide[False], slide  # measured 25.5 -> 14.6 mm/frame
    assert err[True] < err[False] + 3.0, err  # measured 217.9 -> 195.9 mm (legs out of view stay put)
