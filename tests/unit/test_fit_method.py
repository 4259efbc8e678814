"""The `fit` method's glue: refine pins from file, camera rows matched to perception frames, registration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from backend.camera.types import CameraSolve
from backend.fitting.gravity import pitch_correction
from backend.fitting.wholebody.job import align_camera, load_pins, scene_points
from backend.fitting.wholebody.settings import FitSettings
from backend.methods import registry
from backend.settings import resolve
from protocol.errors import BadRequest


def test_pins_map_video_frames_to_clip_rows(tmp_path: Path) -> None:
    frames = np.arange(100, 130)
    path = tmp_path / "pins.npz"
    poses = np.random.default_rng(0).normal(size=(2, 55, 3)).astype(np.float32)
    np.savez(path, pin_frames=np.array([105, 129]), pin_poses=poses)
    rows, got = load_pins(str(path), frames)
    assert rows.tolist() == [5, 29]
    assert np.array_equal(got, poses)
    assert load_pins(None, frames) is None
    np.savez(path, pin_frames=np.array([99]), pin_poses=poses[:1])
    with pytest.raises(BadRequest, match="not in the solved clip"):
        load_pins(str(path), frames)
    np.savez(path, pin_frames=np.array([105]), pin_poses=poses[:1, :22])
    with pytest.raises(BadRequest, match="pin_poses"):
        load_pins(str(path), frames)
    with pytest.raises(BadRequest, match="unreadable"):
        load_pins(str(tmp_path / "missing.npz"), frames)


def _camera(frames: np.ndarray) -> CameraSolve:
    t = len(frames)
    return CameraSolve(K=np.eye(3), R_w2c=np.repeat(np.eye(3)[None], t, 0), t_w2c=np.arange(3 * t, dtype=float)
                       .reshape(t, 3), static=False, scale_known=False, angvel=np.zeros((t, 3)),
                       up=np.array([0.0, 1.0, 0.0]), frame_indices=frames, times=frames / 30.0)


def test_camera_rows_follow_the_perception_frames() -> None:
    cam = _camera(np.arange(10, 20))
    same = align_camera(cam, np.arange(10, 20))
    assert same is cam
    sub = align_camera(cam, np.array([12, 15]))
    assert sub.frame_indices.tolist() == [12, 15]
    assert np.array_equal(sub.t_w2c, cam.t_w2c[[2, 5]])
    with pytest.raises(BadRequest, match="lacks frames"):
        align_camera(cam, np.array([9, 12]))


def test_scene_points_follow_the_solved_world() -> None:
    """Points turn with the world the solve turned (a pitch corrected from the body), then scale and drop with the
    ground; seen through the solved camera they stay where the camera solve saw them."""
    cam = _camera(np.arange(3))
    cam.points = np.array([[0.0, 1.0, -4.0], [1.0, -0.5, -2.0]], np.float32)
    q = pitch_correction(0.3)
    out = SimpleNamespace(world_rotation=q, scale=2.0, ground_shift=1.5)
    pts = scene_points(cam, out)  # type: ignore[arg-type]
    expected = (cam.points.astype(np.float64) @ q.T) * 2.0 - np.array([0.0, 1.5, 0.0])
    np.testing.assert_allclose(pts, expected, atol=1e-6)
    r_solved, t_solved = cam.R_w2c[0] @ q.T, cam.t_w2c[0] * 2.0 + cam.R_w2c[0] @ q.T @ np.array([0.0, 1.5, 0.0])
    np.testing.assert_allclose(pts @ r_solved.T + t_solved, cam.points @ cam.R_w2c[0].T * 2.0 + cam.t_w2c[0] * 2.0,
                               atol=1e-5)


def test_fit_is_registered_with_light_settings() -> None:
    entry = registry.get("fit")
    assert entry.produces == frozenset({"body", "camera", "scene"})
    assert entry.settings_type() is FitSettings
    assert entry.create().name == "fit"


def test_settings_module_imports_no_torch() -> None:
    code = "import sys, backend.fitting.wholebody.settings; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0


@pytest.mark.parametrize(("override", "named"), [({"coarse_step": 0}, "coarse_step"),
                                                 ({"fine_iterations": -1}, "fine_iterations"),
                                                 ({"optimiser": "sgd"}, "optimiser")])
def test_settings_no_solve_can_run_are_a_bad_request(override: dict, named: str) -> None:
    with pytest.raises(BadRequest, match=named):
        resolve(FitSettings, {}, override)
    assert resolve(FitSettings, {}, {"coarse_step": 1, "fine_iterations": 0}).section("method").coarse_step == 1
