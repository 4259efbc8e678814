"""Camera solve of real files end to end: an encoded synthetic pan, the static vtest.avi clip, offline mediapipe."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from backend.camera import CameraSettings, solve_camera
from backend.camera.masks import SelfieSegmenter
from backend.camera.solve import LEVEL_R_W2C
from backend.camera.synthetic import accuracy, make_clip, write_video
from tests.integration.clips import vtest

pytestmark = pytest.mark.slow


def test_encoded_pan_through_the_video_module(tmp_path):
    """H.264 file -> backend.video -> camera with mediapipe masks on: the pan's angle, axis and sign."""
    clip = make_clip("pan", T=40, w=640, h=360)
    path = tmp_path / "pan.mp4"
    write_video(clip, str(path))
    fractions: list[float] = []
    sol = solve_camera(path, settings=CameraSettings(), progress=lambda f, m: fractions.append(f))
    acc = accuracy(clip, sol.R_w2c, sol.t_w2c, sol.angvel)
    assert not sol.static
    assert acc.rotation_error_pct < 3.0 and acc.axis_error_deg < 2.0
    assert sol.angvel[5:-5, 1].min() > 0  # turning right
    # the default 55 deg field of view is right here; the refinement must keep it (original pixels)
    np.testing.assert_allclose(sol.K, clip.K, rtol=0.01)
    assert (sol.K[0, 2], sol.K[1, 2]) == (320.0, 180.0)
    np.testing.assert_array_equal(sol.frame_indices, np.arange(40))
    np.testing.assert_allclose(sol.times, np.arange(40) / 30.0, atol=1e-6)
    assert fractions[-1] == 1.0


def test_frame_range_is_honoured(tmp_path):
    clip = make_clip("static", T=20, w=320, h=180)
    path = tmp_path / "still.mp4"
    write_video(clip, str(path))
    sol = solve_camera(path, 5, 15, settings=CameraSettings(use_person_segmentation=False))
    np.testing.assert_array_equal(sol.frame_indices, np.arange(5, 15))
    assert sol.static and sol.R_w2c.shape == (10, 3, 3)


def test_vtest_pedestrians_static_camera():
    """OpenCV's vtest.avi: a fixed camera over a walkway with pedestrians must come out exactly static."""
    sol = solve_camera(vtest(), 0, 300)
    assert sol.static
    assert len(sol.frame_indices) == 300
    assert (sol.R_w2c == LEVEL_R_W2C).all()
    assert not sol.t_w2c.any() and not sol.angvel.any()


def test_selfie_segmentation_runs_offline(monkeypatch):
    """The bundled model loads and segments a person-free frame with every network connection refused."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    frame = make_clip("static", T=1, w=320, h=180, person=False).frames[0].image
    with SelfieSegmenter() as seg:
        mask = seg(frame)
    assert mask.shape == (180, 320) and mask.dtype == bool
