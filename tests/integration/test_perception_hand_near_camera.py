"""A hand near the camera, the face out of view: mediapipe Pose makes a small false body out of the other hand.

The clip (tests/data/perception/hand_near_camera.mp4) is the first 27 frames of the full suite's `punch_hand`, rendered
by benchmarks.groundtruth from CMU motion capture (002_05, see tests/data/perception/README.md). The camera follows
the hands from chest height; both hands are in view in every frame. Its .npz holds the true wrist pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.perception import PerceptionSettings, detect
from backend.perception.observations import LEFT, RIGHT

DATA = Path(__file__).resolve().parents[1] / "data" / "perception"
CLIP = DATA / "hand_near_camera.mp4"


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """(T, 2, 2) true pixels of the person's left and right wrists."""
    with np.load(DATA / "hand_near_camera.npz") as d:
        assert d["hand_visible"].all()
        return d["wrist_px"].astype(np.float64)


def _on_wrist(obs, truth: np.ndarray, side: int, wrist_of: int) -> np.ndarray:
    """Frames where hand `side` was found with its wrist within 60 px of the true wrist of side `wrist_of`, and
    nearer that one than the other."""
    wrist = obs.hand_kp2d[:, side, 0, :2]
    there = np.linalg.norm(wrist - truth[:, wrist_of], axis=1)
    elsewhere = np.linalg.norm(wrist - truth[:, 1 - wrist_of], axis=1)
    return obs.hand_valid[:, side] & (there < elsewhere) & (there < 60.0)


def test_a_hand_too_big_for_the_body_found_with_it_keeps_the_hands(truth: np.ndarray) -> None:
    """The right hand (up to 90 px from wrist to knuckle) outgrows 0.6 x the torso of the false body found with it:
    it is found on its own wrist in nearly every frame and the false body is dropped. With the check off, that body
    holds the hands to its own wrists: most right hands are lost, and some land on the left wrist."""
    checked = detect(CLIP, settings=PerceptionSettings(hands_process=False))
    unchecked = detect(CLIP, settings=PerceptionSettings(hands_process=False, outsized_hand=1e9))
    assert len(checked) == len(truth) == 27
    right = _on_wrist(checked, truth, RIGHT, RIGHT)
    assert right.sum() >= 24, right
    assert right.sum() >= _on_wrist(unchecked, truth, RIGHT, RIGHT).sum() + 10
    swapped = [sum(int(_on_wrist(obs, truth, side, 1 - side).sum()) for side in (LEFT, RIGHT))
               for obs in (checked, unchecked)]
    assert swapped[0] == 0 and swapped[1] > 0, swapped
    assert checked.body_valid.sum() < unchecked.body_valid.sum()
