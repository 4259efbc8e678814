"""The face-less Holistic graph gives exactly mediapipe Holistic's pose and hand landmarks."""

from __future__ import annotations

import mediapipe as mp
import numpy as np
import pytest

from backend.perception.runners import _holistic_without_face
from backend.perception.settings import PerceptionSettings
from backend.video import iter_frames
from tests.integration.clips import megamind


def _points(lms) -> np.ndarray | None:
    """(N,3) landmark coordinates, None when absent."""
    return None if lms is None else np.array([(p.x, p.y, p.z) for p in lms.landmark])


@pytest.mark.slow
def test_faceless_holistic_matches_mediapipe_holistic() -> None:
    ours = _holistic_without_face(PerceptionSettings())
    theirs = mp.solutions.holistic.Holistic(static_image_mode=False, model_complexity=1, smooth_landmarks=False)
    compared = {"pose_landmarks": 0, "pose_world_landmarks": 0, "left_hand_landmarks": 0, "right_hand_landmarks": 0}
    try:
        for frame in iter_frames(megamind(), start=0, stop=40):
            a, b = ours.process({"image": frame.image}), theirs.process(frame.image)
            assert not hasattr(a, "face_landmarks")  # the face branch is gone
            for name in compared:
                pa, pb = _points(getattr(a, name)), _points(getattr(b, name))
                assert (pa is None) == (pb is None), name
                if pa is not None:
                    np.testing.assert_allclose(pa, pb, atol=1e-5, err_msg=name)
                    compared[name] += 1
    finally:
        ours.close()
        theirs.close()
    assert compared["pose_landmarks"] >= 30 and compared["right_hand_landmarks"] >= 10, compared
