"""The world's pitch from the upright body, where the camera assumed itself level."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.fitting.gravity import MIN_UPRIGHT_FRAMES, body_pitch, pitch_correction, upright_frames
from backend.fitting.rig import LandmarkRig
from backend.fitting.wholebody.settings import FitSettings
from backend.fitting.wholebody.solve import solve_fit
from backend.models.base import BodyModel, BodyPose
from backend.models.loader import load_body_model
from tests.support.synthetic_fit import STATIC_R, synthetic_clip

UP = np.array([0.0, 1.0, 0.0])


@pytest.fixture(scope="module")
def model() -> BodyModel:
    """The shipped default body model."""
    torch.set_num_threads(1)
    return load_body_model("default")


def _pitched(deg: float) -> np.ndarray:
    """A level camera (STATIC_R) tipped down by `deg`."""
    p = math.radians(deg)
    return np.array([[1.0, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]]) @ STATIC_R


def _angle_deg(u: np.ndarray, v: np.ndarray) -> float:
    """Angle between two unit vectors in degrees."""
    return math.degrees(math.acos(float(np.clip(u @ v, -1.0, 1.0))))


def _landmarks(model: BodyModel, frames: int, knee: float = 0.0) -> np.ndarray:
    """(T,33,3) world landmarks of the default body standing (knees bent by `knee` radians, thighs raised to keep
    the torso over the feet), turning about the vertical over the clip."""
    pose = BodyPose.zeros(frames)
    pose.global_orient[:, 1] = torch.linspace(-0.6, 0.6, frames)
    pose.body_pose[:, 0, 0] = pose.body_pose[:, 1, 0] = -0.5 * knee  # hips
    pose.body_pose[:, 3, 0] = pose.body_pose[:, 4, 0] = knee  # knees
    with torch.no_grad():
        return model(pose).landmarks_body.double().numpy()


def _seen_by(world: np.ndarray, r_true: np.ndarray) -> np.ndarray:
    """Mediapipe-style metric landmarks (T,33,4) of world points seen by a camera r_true: camera axes, about the
    hips, visibility 0.9."""
    cam = world @ r_true.T
    kp3d = np.full((*cam.shape[:2], 4), 0.9)
    kp3d[..., :3] = cam - 0.5 * (cam[:, 23:24] + cam[:, 24:25])
    return kp3d


def test_pitch_correction_turns_a_pitched_vertical_onto_up() -> None:
    """The correction of angle a maps (0, cos a, sin a) to +y and is a proper rotation."""
    for a in (-0.4, 0.0, 0.3):
        q = pitch_correction(a)
        np.testing.assert_allclose(q @ np.array([0.0, math.cos(a), math.sin(a)]), UP, atol=1e-12)
        np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(q) == pytest.approx(1.0)


@pytest.mark.parametrize("deg", [-10.0, 0.0, 20.0, 35.0])
def test_standing_body_tells_the_pitch_of_a_camera_assumed_level(model: BodyModel, deg: float) -> None:
    """A camera tipped by `deg` but reported level: the corrected world's up agrees with the true one within a
    degree, where the level assumption is off by the whole pitch."""
    frames = 30
    kp3d = _seen_by(_landmarks(model, frames), _pitched(deg))
    level = np.repeat(STATIC_R[None], frames, 0)
    angle = body_pitch(kp3d, np.ones(frames, bool), level)
    assert angle is not None
    corrected_up = STATIC_R @ pitch_correction(angle).T @ UP
    true_up = _pitched(deg) @ UP
    assert _angle_deg(corrected_up, true_up) < 1.0
    assert _angle_deg(STATIC_R @ UP, true_up) == pytest.approx(abs(deg), abs=1e-6)


def test_crouching_hidden_or_brief_bodies_tell_nothing(model: BodyModel) -> None:
    """No answer from bent legs, from unseen ankles, or from fewer than MIN_UPRIGHT_FRAMES upright frames."""
    level = np.repeat(STATIC_R[None], 30, 0)
    crouch = _seen_by(_landmarks(model, 30, knee=1.2), _pitched(15.0))
    assert not upright_frames(crouch, np.ones(30, bool)).any()
    assert body_pitch(crouch, np.ones(30, bool), level) is None
    hidden = _seen_by(_landmarks(model, 30), _pitched(15.0))
    hidden[:, 27:29, 3] = 0.1  # ankles out of view
    assert body_pitch(hidden, np.ones(30, bool), level) is None
    brief = np.zeros(30, bool)
    brief[:MIN_UPRIGHT_FRAMES - 1] = True
    assert body_pitch(_seen_by(_landmarks(model, 30), _pitched(15.0)), brief, level) is None


def test_fit_stands_the_world_upright_under_a_pitched_static_camera(model: BodyModel) -> None:
    """A static camera tipped down 20 deg and reported level: the solved world's up is within 3 deg of the true
    one (the level world is 20 deg off, as the solve without the body's pitch shows)."""
    clip = synthetic_clip(model, t=60, pitch_deg=20.0)
    rig = LandmarkRig(model)
    quick = FitSettings(iterations=10, fine_iterations=5, global_iterations=5, foot_lock_iterations=0)
    true_up = _pitched(20.0) @ UP
    out = solve_fit(clip.obs, clip.cam, rig, quick)
    assert _angle_deg(out.r_w2c[0] @ UP, true_up) < 3.0
    np.testing.assert_allclose(out.r_w2c[0], STATIC_R @ out.world_rotation.T, atol=1e-9)
    level = solve_fit(clip.obs, clip.cam, rig, FitSettings(**{**quick.__dict__, "pitch_from_body": False}))
    assert _angle_deg(level.r_w2c[0] @ UP, true_up) == pytest.approx(20.0, abs=1e-6)
    np.testing.assert_allclose(level.world_rotation, np.eye(3))
