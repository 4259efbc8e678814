"""The whole-clip solve on a synthetic walk with known motion: better than per-frame IK, gaps filled, metric world."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import numpy as np
import pytest
import torch

from backend.eval.metrics import BODY_JOINTS, jitter, mpjpe
from backend.fitting.rig import LandmarkRig
from backend.fitting.wholebody.settings import FitSettings
from backend.fitting.wholebody.solve import FitOutput, hand_3d_scale, pose_hand_trust, solve_fit
from backend.models.base import BodyModel
from backend.models.loader import load_body_model
from protocol.errors import Cancelled, NoPerson
from protocol.skeleton import JOINT_INDEX, LEFT_HAND_JOINTS
from tests.support.synthetic_fit import CAMERA_HEIGHT, SyntheticClip, joints_of, synthetic_clip

FAST = FitSettings(iterations=50, fine_iterations=30, global_iterations=10, init_smooth=3.0)  # as preview-fast
PER_FRAME_IK = FitSettings(iterations=0, global_iterations=0, init_smooth=0.0)


@pytest.fixture(scope="module")
def model() -> BodyModel:
    """The shipped default body model."""
    torch.set_num_threads(1)
    return load_body_model("default")


@pytest.fixture(scope="module")
def rig(model: BodyModel) -> LandmarkRig:
    """Its landmark rig."""
    return LandmarkRig(model)


@pytest.fixture(scope="module")
def clip(model: BodyModel) -> SyntheticClip:
    """90 frames of walking, noisy 2D (3 px) and 3D (3 cm), no body in frames 40-49, no left hand in 20-34."""
    return synthetic_clip(model)


@pytest.fixture(scope="module")
def fitted(clip: SyntheticClip, rig: LandmarkRig) -> FitOutput:
    """The fast solve of the clip."""
    return solve_fit(clip.obs, clip.cam, rig, FAST)


def _joints(model: BodyModel, out: FitOutput, initial: bool = False) -> np.ndarray:
    """World joints of the solve (or of its per-frame start)."""
    if initial:
        rest_pelvis = model.rest_joints(torch.zeros(10))[0].numpy()
        return joints_of(model, out.init_pose, out.init_root_pos - rest_pelvis, np.zeros(10))
    return joints_of(model, out.full_pose, out.transl, out.betas)


def _ground_truth(clip: SyntheticClip) -> np.ndarray:
    """True joints in the fit's world: the ground at y = 0."""
    gt = clip.joints_world.copy()
    gt[..., 1] += CAMERA_HEIGHT
    return gt


def test_fit_beats_per_frame_ik(model: BodyModel, rig: LandmarkRig, clip: SyntheticClip, fitted: FitOutput) -> None:
    baseline = solve_fit(clip.obs, clip.cam, rig, PER_FRAME_IK)
    gt = _ground_truth(clip)
    seen = clip.obs.body_valid
    fit_j, ik_j = _joints(model, fitted), _joints(model, baseline, initial=True)
    fit_err, ik_err = mpjpe(fit_j, gt, valid=seen).mean(), mpjpe(ik_j, gt, valid=seen).mean()
    fit_jit = jitter(fit_j, 30.0, joints=BODY_JOINTS).mean()
    ik_jit = jitter(ik_j, 30.0, joints=BODY_JOINTS).mean()
    assert fit_err < 0.6 * ik_err
    assert fit_err < 35.0  # mm
    assert fit_jit < 0.1 * ik_jit
    assert fit_jit < 4.0 * jitter(gt, 30.0, joints=BODY_JOINTS).mean()


def test_coarse_phases_solve_as_well_as_every_frame(model: BodyModel, rig: LandmarkRig, clip: SyntheticClip,
                                                    fitted: FitOutput) -> None:
    every = solve_fit(clip.obs, clip.cam, rig, replace(FAST, coarse_step=1))
    gt, seen = _ground_truth(clip), clip.obs.body_valid
    coarse_j, every_j = _joints(model, fitted), _joints(model, every)
    assert mpjpe(coarse_j, gt, valid=seen).mean() < mpjpe(every_j, gt, valid=seen).mean() + 1.0  # mm
    coarse_jit = jitter(coarse_j, 30.0, joints=BODY_JOINTS).mean()
    assert coarse_jit < 1.1 * jitter(every_j, 30.0, joints=BODY_JOINTS).mean()


def test_masked_frames_are_filled_smoothly(model: BodyModel, clip: SyntheticClip, fitted: FitOutput) -> None:
    gt = _ground_truth(clip)
    joints = _joints(model, fitted)
    gap = ~clip.obs.body_valid
    assert mpjpe(joints, gt, valid=gap).mean() < 70.0
    around = slice(36, 54)  # the body gap and its edges
    assert jitter(joints[around], 30.0, joints=BODY_JOINTS).max() < 4.0 * jitter(gt[around], 30.0,
                                                                                  joints=BODY_JOINTS).max()
    left_hand = list(LEFT_HAND_JOINTS)
    hand_gap = np.zeros(len(gt), bool)
    hand_gap[20:35] = True
    assert mpjpe(joints, gt, root=JOINT_INDEX["left_wrist"], joints=left_hand, valid=hand_gap).mean() < 30.0
    assert np.isfinite(fitted.full_pose).all() and np.isfinite(fitted.transl).all()


def test_world_is_metric_with_feet_on_the_ground(model: BodyModel, clip: SyntheticClip, fitted: FitOutput) -> None:
    gt = _ground_truth(clip)
    joints = _joints(model, fitted)
    assert fitted.ground_shift == pytest.approx(-CAMERA_HEIGHT, abs=0.05)
    assert np.linalg.norm(joints[:, 0] - gt[:, 0], axis=-1).mean() < 0.15
    feet = joints[:, [JOINT_INDEX["left_foot"], JOINT_INDEX["right_foot"]], 1].min(axis=1)
    assert np.percentile(feet, 10) == pytest.approx(np.percentile(gt[:, [10, 11], 1].min(axis=1), 10), abs=0.04)
    assert fitted.contacts.shape == (len(gt), 4) and fitted.confidence.shape == (len(gt), 55)
    assert fitted.confidence[~clip.obs.body_valid, :22].max() == 0.0
    # The camera-frame body is the world body seen through the returned camera.
    pelvis_c = np.einsum("tij,tj->ti", fitted.r_w2c, joints[:, 0]) + fitted.t_w2c
    rest_pelvis = model.rest_joints(torch.as_tensor(fitted.betas))[0].numpy()
    assert np.allclose(pelvis_c, fitted.transl_c + rest_pelvis, atol=1e-3)


def test_a_ground_plane_the_body_does_not_stand_on_is_set_aside(rig: LandmarkRig, clip: SyntheticClip) -> None:
    # The camera stage builds its world with the ground at y = 0; here the floor is CAMERA_HEIGHT below that.
    wrong = replace(clip.cam, ground_plane=np.array([0.0, 1.0, 0.0, 0.0]))
    out = solve_fit(clip.obs, wrong, rig, FAST)
    # The ground is found from the feet, as without a plane; the plane's up is kept (the body's pitch corrects only
    # a camera that showed no plane at all), so the comparison is with a solve that keeps the level camera's up.
    level = solve_fit(clip.obs, clip.cam, rig, replace(FAST, pitch_from_body=False))
    assert out.ground_shift == pytest.approx(level.ground_shift, abs=1e-4)
    np.testing.assert_allclose(out.full_pose, level.full_pose, atol=1e-4)
    # The same floor, moved into a camera world that has it at y = 0, is kept: the world needs no shift.
    lifted = replace(clip.cam, ground_plane=np.array([0.0, 1.0, 0.0, 0.0]),
                     t_w2c=clip.cam.t_w2c - clip.cam.R_w2c[:, :, 1] * CAMERA_HEIGHT)
    assert solve_fit(clip.obs, lifted, rig, FAST).ground_shift == 0.0


def test_moving_camera_scale_is_recovered(model: BodyModel, rig: LandmarkRig) -> None:
    moving = synthetic_clip(model, camera_units=2.0, seed=1)
    out = solve_fit(moving.obs, moving.cam, rig, replace(FAST, iterations=20, global_iterations=5))
    assert out.scale == pytest.approx(2.0, rel=0.15)
    joints = _joints(model, out)
    gt = _ground_truth(moving)
    walked = joints[-1, 0] - joints[0, 0]
    assert walked[0] == pytest.approx(gt[-1, 0, 0] - gt[0, 0, 0], abs=0.25)  # 3 m along +x in a fixed world


def test_pins_hold_the_animators_pose(model: BodyModel, rig: LandmarkRig, clip: SyntheticClip) -> None:
    pinned = clip.full_pose[[30, 60]].copy()
    pinned[:, JOINT_INDEX["left_elbow"]] = [0.0, -1.8, 0.0]  # a much deeper bend than observed
    out = solve_fit(clip.obs, clip.cam, rig, replace(FAST, iterations=20, global_iterations=0),
                    pins=(np.array([30, 60]), pinned))
    got = out.full_pose[[30, 60], JOINT_INDEX["left_elbow"]]
    assert np.allclose(got, [[0.0, -1.8, 0.0]] * 2, atol=0.1)


def test_lbfgs_variant_runs(rig: LandmarkRig, clip: SyntheticClip) -> None:
    out = solve_fit(clip.obs, clip.cam, rig, replace(FAST, optimiser="lbfgs", iterations=3, global_iterations=1))
    assert np.isfinite(out.full_pose).all() and out.losses[-1] < out.losses[0]


def test_no_body_and_cancellation(rig: LandmarkRig, clip: SyntheticClip) -> None:
    empty = replace(clip.obs, body_valid=np.zeros(len(clip.obs), bool))
    with pytest.raises(NoPerson):
        solve_fit(empty, clip.cam, rig, FAST)
    calls = []

    def cancel_later() -> None:
        calls.append(1)
        if len(calls) > 3:
            raise Cancelled("stop")

    with pytest.raises(Cancelled):
        solve_fit(clip.obs, clip.cam, rig, FAST, check_cancelled=cancel_later)
    stages: list[tuple[str, float]] = []
    solve_fit(clip.obs, clip.cam, rig, replace(FAST, iterations=3, global_iterations=1),
              progress=lambda stage, fraction, message: stages.append((stage, fraction)))
    assert stages[0] == ("fit", 0.0) and stages[-1] == ("fit", 1.0)
    assert all(b >= a for (_, a), (_, b) in pairwise(stages))


def test_shape_moves_towards_the_true_body(model: BodyModel, rig: LandmarkRig) -> None:
    truth = np.array([1.5, -1.0, 0.8, 0, 0, 0, 0, 0, 0, 0], np.float32)
    shaped = synthetic_clip(model, betas=truth, seed=2)
    out = solve_fit(shaped.obs, shaped.cam, rig, FAST)
    rest_true = model.rest_joints(torch.as_tensor(truth)).numpy()
    rest_fit = model.rest_joints(torch.as_tensor(out.betas)).numpy()
    rest_mean = model.rest_joints(torch.zeros(10)).numpy()
    bones = np.linalg.norm(rest_true - rest_true[:1], axis=-1), np.linalg.norm(rest_fit - rest_fit[:1], axis=-1)
    mean_bones = np.linalg.norm(rest_mean - rest_mean[:1], axis=-1)
    assert np.abs(bones[1] - bones[0]).mean() < 0.7 * np.abs(mean_bones - bones[0]).mean()


def test_larger_hands_trust_their_3d_landmarks_more(clip: SyntheticClip) -> None:
    """A hand's 3D weight is its wrist-to-middle-knuckle length over 2% of the image's longer side (1280 px here),
    between 1 and 6; impossible limits are refused."""
    obs = replace(clip.obs, hand_kp2d=np.zeros_like(clip.obs.hand_kp2d))
    obs.hand_kp2d[:4, 0, 9, 0] = [10.0, 25.6, 76.8, 300.0]  # left: 0.8%, 2%, 6%, 23% of 1280 px
    obs.hand_kp2d[:4, 1, 9, 1] = 51.2  # right, upwards: 4%
    scale = hand_3d_scale(obs, FitSettings())
    np.testing.assert_allclose(scale[:4, 0], [1.0, 1.0, 3.0, 6.0], rtol=1e-5)
    np.testing.assert_allclose(scale[:4, 1], 2.0, rtol=1e-5)
    for bad in ({"hand_3d_share": 0.0}, {"hand_3d_max": 0.5}):
        with pytest.raises(ValueError, match="hand_3d"):
            FitSettings(**bad)


def test_the_pose_model_s_own_hand_points_yield_to_a_seen_hand() -> None:
    """Where the hand tracker sees a hand, the pose's wrist, knuckles and thumb of that side count 1/scale (the
    hand's 3D gain), faded by the wrist gate; every other landmark and unseen hands keep weight 1."""
    gate = np.array([[1.0, 0.0], [0.5, 1.0], [0.0, 1.0]], np.float32)
    scale = np.array([[4.0, 6.0], [4.0, 1.0], [6.0, 2.0]], np.float32)
    trust = pose_hand_trust(gate, scale)
    left, right = [15, 17, 19, 21], [16, 18, 20, 22]
    np.testing.assert_allclose(trust[:, left], [[0.25] * 4, [0.625] * 4, [1.0] * 4], rtol=1e-6)
    np.testing.assert_allclose(trust[:, right], [[1.0] * 4, [1.0] * 4, [0.5] * 4], rtol=1e-6)
    others = np.setdiff1d(np.arange(33), left + right)
    assert (trust[:, others] == 1.0).all()
