"""The bpy renderer on a tiny real job: frames, masks and visibility come back, the person is where the
camera model says."""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.models.loader import load_body_model
from benchmarks.groundtruth.generate import (
    DEFAULT_DATA,
    REPO,
    SUITES,
    RenderSettings,
    bpy_python,
    pose_clip,
    write_job,
)
from benchmarks.groundtruth.scene import CameraTrack, face_regions, make_camera, project
from protocol.skeleton import JOINT_INDEX


@pytest.mark.slow
@pytest.mark.blender
def test_render_tiny_job(tmp_path: Path) -> None:
    model = load_body_model("default")
    spec = dataclasses.replace(SUITES["smoke"][0], frames=4)
    motion = pose_clip(spec, model, DEFAULT_DATA)
    rest = model.rest_data(motion.betas)
    region, hand = face_regions(rest["faces"], rest["skin_indices"], rest["skin_weights"], rest["vertices"],
                                rest["joints"])
    cam = make_camera("static", motion.joints, motion.joint_rotations, motion.vertices[:, ::25], 128, 96)
    settings = RenderSettings(width=128, height=96, samples=1, threads=1)
    write_job(tmp_path / "job.npz", motion, cam, rest["faces"], region, hand, settings, np.array([0, 1]))
    proc = subprocess.run([str(bpy_python()), "-m", "benchmarks.groundtruth.render", str(tmp_path / "job.npz"),
                           str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    vis = np.load(tmp_path / "out" / "visibility.npz")
    assert vis["hand_visible_joints"].shape == (4, 2, 16)
    uv, _ = project(motion.joints, CameraTrack(cam.K, cam.R_w2c, cam.t_w2c, 128, 96))
    for t in (0, 1):
        frame = cv2.imread(str(tmp_path / "out" / f"frame_{t:05d}.png"))
        assert frame.shape == (96, 128, 3)
        mask = cv2.imread(str(tmp_path / "out" / f"mask_{t:05d}.png"), cv2.IMREAD_UNCHANGED)[..., 3] > 127
        x, y = np.round(uv[t, JOINT_INDEX["head"]]).astype(int)
        assert mask[y - 1:y + 2, x - 1:x + 2].any()
        assert 0.005 < mask.mean() < 0.5  # a person, not an empty or a full frame
