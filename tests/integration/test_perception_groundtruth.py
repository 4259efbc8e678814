"""Handedness and keypoint accuracy against the rendered ground-truth clips (known SMPL-X joints and camera).

Index 0 of the hands must sit on the model's own left wrist, index 1 on its right, as must Pose's wrists 15 / 16.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backend.perception import PerceptionSettings, detect
from backend.perception.observations import LEFT, RIGHT
from protocol.skeleton import JOINT_INDEX

GT_DIR = Path(__file__).resolve().parents[1] / "data" / "groundtruth"
INDEX = GT_DIR / "index.json"
CLIPS = [c["name"] for c in json.loads(INDEX.read_text())["clips"]]


def projected_wrists(gt_dir: Path, name: str) -> np.ndarray:
    """(T, 2, 2) pixel positions of the model's left and right wrists in the clip's camera."""
    with np.load(gt_dir / f"{name}.npz") as d:
        joints, K, R, t = d["joints"], d["K"], d["R_w2c"], d["t_w2c"]
    wrists = joints[:, [JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"]]].astype(np.float64)
    cam = np.einsum("tij,tkj->tki", R, wrists) + t[:, None]
    uv = np.einsum("ij,tkj->tki", K, cam)
    return uv[..., :2] / uv[..., 2:3]


def check_clip(gt_dir: Path, name: str) -> None:
    """Run detect on one clip and check that every side lands on its own wrist."""
    truth = projected_wrists(gt_dir, name)
    obs = detect(gt_dir / f"{name}.mp4", settings=PerceptionSettings(hands_process=False))
    assert len(obs) == len(truth)
    body = obs.body_valid
    assert body.mean() > 0.8
    for side, pose_wrist in ((LEFT, 15), (RIGHT, 16)):
        seen = body & (obs.body_kp2d[:, pose_wrist, 2] >= 0.5)  # a wrist hidden behind the body is a guess
        own = np.linalg.norm(obs.body_kp2d[seen, pose_wrist, :2] - truth[seen, side], axis=1)
        other = np.linalg.norm(obs.body_kp2d[seen, pose_wrist, :2] - truth[seen, 1 - side], axis=1)
        assert (own < other).mean() > 0.9, f"pose wrist {pose_wrist} is not on the model's side {side}"
        found = obs.hand_valid[:, side]
        if found.sum() < 5:
            continue
        own = np.linalg.norm(obs.hand_kp2d[found, side, 0, :2] - truth[found, side], axis=1)
        other = np.linalg.norm(obs.hand_kp2d[found, side, 0, :2] - truth[found, 1 - side], axis=1)
        assert (own < other).mean() >= 0.85, f"hand {side} is on the wrong wrist"
        assert np.median(own) < 0.5 * np.median(other)


@pytest.mark.slow
@pytest.mark.parametrize("name", CLIPS)
def test_sides_match_the_rendered_model(name: str) -> None:
    check_clip(GT_DIR, name)
