"""The committed ground-truth smoke clips: files agree with each other, the model and the pixels."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from backend.eval.metrics import evaluate_body
from backend.models.base import BodyPose
from backend.models.loader import load_body_model
from benchmarks.groundtruth.scene import CameraTrack, project
from protocol.skeleton import JOINT_INDEX, POSES_LAYOUT

GT_DIR = Path(__file__).resolve().parents[1] / "data" / "groundtruth"
INDEX = GT_DIR / "index.json"
CLIPS = [c["name"] for c in json.loads(INDEX.read_text())["clips"]]


def _load(name: str) -> dict[str, np.ndarray]:
    """All arrays of one clip's npz."""
    with np.load(GT_DIR / f"{name}.npz") as f:
        return {k: f[k] for k in f.files}


def _camera(d: dict[str, np.ndarray]) -> CameraTrack:
    """The clip's camera track."""
    return CameraTrack(d["K"], d["R_w2c"], d["t_w2c"], int(d["width"]), int(d["height"]))


def test_smoke_suite_fits_the_size_budget() -> None:
    total = sum(p.stat().st_size for p in GT_DIR.iterdir() if p.suffix in (".mp4", ".npz"))
    assert 2 <= len(CLIPS) <= 3
    assert total < 10 * 1024 * 1024


@pytest.mark.parametrize("name", CLIPS)
def test_npz_fields_are_consistent(name: str) -> None:
    d = _load(name)
    t = d["poses"].shape[0]
    assert d["poses"].shape == (t, 165) and d["trans"].shape == (t, 3) and d["betas"].shape == (10,)
    assert str(d["surface_model_type"]) == "smplx" and float(d["mocap_frame_rate"]) == pytest.approx(30.0)
    start = 0
    for key, count in POSES_LAYOUT:
        part = d["poses"][:, 3 * start:3 * (start + count)]
        np.testing.assert_array_equal(part, d[key].reshape(t, -1))
        start += count
    assert d["joints"].shape == (t, 55, 3)
    assert d["R_w2c"].shape == (t, 3, 3) and d["t_w2c"].shape == (t, 3) and d["K"].shape == (3, 3)
    np.testing.assert_allclose(np.einsum("tij,tkj->tik", d["R_w2c"], d["R_w2c"]), np.tile(np.eye(3), (t, 1, 1)),
                               atol=1e-6)
    assert d["contacts"].shape == (t, 4) and d["hand_visible"].shape == (t, 2)
    assert d["hand_joint_visible"].shape == (t, 2, 16)
    assert "mocap.cs.cmu.edu" in str(d["acknowledgment"])


@pytest.mark.parametrize("name", CLIPS)
def test_parameters_reproduce_the_stored_joints(name: str) -> None:
    d = _load(name)
    model = load_body_model("default")
    pose = BodyPose.from_full_pose(torch.from_numpy(d["poses"]), betas=torch.from_numpy(d["betas"])[None],
                                   transl=torch.from_numpy(d["trans"]))
    with torch.no_grad():
        joints = model(pose).joints.numpy()
    np.testing.assert_allclose(joints, d["joints"], atol=2e-4)
    # the metrics of the ground truth against itself are zero
    summary = evaluate_body(joints, d["joints"], joints, d["joints"], fps=30.0)
    assert summary["mpjpe"] < 0.5 and summary["wa_mpjpe"] < 0.5


@pytest.mark.parametrize("name", CLIPS)
def test_video_has_one_frame_per_pose(name: str) -> None:
    d = _load(name)
    with av.open(str(GT_DIR / f"{name}.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == d["poses"].shape[0]
    assert frames[0].shape == (int(d["height"]), int(d["width"]), 3)


@pytest.mark.parametrize("name", CLIPS)
def test_projected_joints_land_on_the_person(name: str) -> None:
    d = _load(name)
    cam = _camera(d)
    uv, depth = project(d["joints"], cam)
    for k, t in enumerate(d["mask_frames"]):
        mask = d["masks"][k]
        h, w = mask.shape
        px = np.round(uv[t]).astype(int)
        inside = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h) & (depth[t] > 0)
        head = JOINT_INDEX["head"]
        if inside[head]:
            x, y = px[head]
            assert mask[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2].any(), f"head off the silhouette, frame {t}"
        body = [j for j in range(22) if inside[j]]
        on = [mask[px[j, 1], px[j, 0]] for j in body]
        assert body and np.mean(on) >= 0.9, f"{name} frame {t}: only {np.mean(on):.2f} of body joints on the person"


@pytest.mark.slow
@pytest.mark.parametrize("name", CLIPS)
def test_mediapipe_sees_the_person(name: str) -> None:
    import mediapipe as mp

    with av.open(str(GT_DIR / f"{name}.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    found = 0
    with mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1) as holistic:
        for rgb in frames:
            found += holistic.process(rgb).pose_landmarks is not None
    assert found / len(frames) >= 0.8
