"""Proof on real pixels that hand index 0 is the person's LEFT hand and index 1 their RIGHT.

Megamind.avi frames 30-60 show a woman facing the camera (frontal face, looked at by eye) raising a glass in
her RIGHT hand, which therefore appears on the image's LEFT, around x 90-220, y 380-520 px (720x528 frame).
Mirroring the frames turns her into a person, still facing the camera, whose glass is in her LEFT hand,
on the image's right: the side must follow the anatomy, not the label a detector saw in the unmirrored clip.
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from backend.perception import PerceptionSettings, detect
from backend.perception.hand_tracker import PalmDetector
from backend.perception.landmarks import side_from_hands_label
from backend.perception.observations import LEFT, RIGHT
from backend.perception.runners import HandsRunner
from backend.perception.views import full_view
from backend.video import iter_frames
from tests.integration.clips import megamind

START, STOP = 30, 60
WIDTH = 720
GLASS_HAND_BOX = (90.0, 380.0, 220.0, 520.0)  # x0, y0, x1, y1 on the unmirrored frames
SETTINGS = PerceptionSettings(hands_process=False)


def _in_box(points: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    return (points[:, 0] >= box[0]) & (points[:, 0] <= box[2]) & (points[:, 1] >= box[1]) & (points[:, 1] <= box[3])


def _mirrored(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    return (WIDTH - box[2], box[1], WIDTH - box[0], box[3])


@pytest.fixture(scope="module")
def flipped_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames 30-60 of Megamind.avi mirrored left-right, as a lossless-quality H.264 file."""
    path = tmp_path_factory.mktemp("flip") / "megamind_flipped.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 720, 528, "yuv420p"
        stream.options = {"crf": "12"}
        for frame in iter_frames(megamind(), START, STOP):
            image = np.ascontiguousarray(frame.image[:, ::-1])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def closeup_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Frames 30-50 cropped to the glass hand (x 0-300, y 300-528) and enlarged 2x: a hand, barely a body."""
    path = tmp_path_factory.mktemp("closeup") / "glass_hand.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 600, 456, "yuv420p"
        stream.options = {"crf": "12"}
        for frame in iter_frames(megamind(), START, START + 20):
            image = cv2.resize(frame.image[300:528, 0:300], (600, 456), interpolation=cv2.INTER_CUBIC)
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.mark.slow
def test_hands_detector_label_is_mirrored_on_real_pixels() -> None:
    """mediapipe's hand model calls the glass hand (the woman's right) "Left": its labels assume a selfie mirror."""
    frame = next(iter_frames(megamind(), 60, 61)).image
    runner, palms = HandsRunner(SETTINGS), PalmDetector(SETTINGS.min_detection_confidence)
    try:
        view = full_view(frame.shape[1], frame.shape[0])
        runner.submit(frame, view, palms=palms(frame))
        hands = runner.collect()
    finally:
        runner.close()
        palms.close()
    glass = [h for h in hands if _in_box(h.wrist[None], GLASS_HAND_BOX)[0]]
    assert glass, "Hands found no hand on the glass"
    assert all(h.side == RIGHT for h in glass)
    assert side_from_hands_label("Left") == RIGHT


@pytest.mark.slow
def test_glass_hand_is_the_right_hand() -> None:
    obs = detect(megamind(), START, STOP, settings=SETTINGS)
    assert obs.body_valid.mean() > 0.9
    body = obs.body_kp2d[obs.body_valid]
    # facing the camera: the person's left shoulder (11) is on the image's right of their right shoulder (12)
    assert (body[:, 11, 0] > body[:, 12, 0]).all()
    right = obs.hand_valid[:, RIGHT]
    assert right.mean() > 0.8
    wrists = obs.hand_kp2d[right, RIGHT, 0, :2]
    assert _in_box(wrists, GLASS_HAND_BOX).mean() > 0.9
    # and no left hand is ever put on the glass
    left_wrists = obs.hand_kp2d[obs.hand_valid[:, LEFT], LEFT, 0, :2]
    assert not _in_box(left_wrists, GLASS_HAND_BOX).any()
    # the right hand hangs off the pose's right wrist (16), not its left (15)
    both = right & obs.body_valid
    d_right = np.linalg.norm(obs.hand_kp2d[both, RIGHT, 0, :2] - obs.body_kp2d[both, 16, :2], axis=1)
    d_left = np.linalg.norm(obs.hand_kp2d[both, RIGHT, 0, :2] - obs.body_kp2d[both, 15, :2], axis=1)
    assert (d_right < d_left).mean() > 0.9


@pytest.mark.slow
def test_mirrored_frames_swap_the_sides(flipped_clip: Path) -> None:
    obs = detect(flipped_clip, settings=SETTINGS)
    assert obs.body_valid.mean() > 0.9
    body = obs.body_kp2d[obs.body_valid]
    # the mirrored woman still faces the camera, so her left shoulder is still on the image's right...
    assert (body[:, 11, 0] > body[:, 12, 0]).all()
    # ...but the glass, now on the image's right, is in her left hand
    left = obs.hand_valid[:, LEFT]
    assert left.mean() > 0.8
    assert _in_box(obs.hand_kp2d[left, LEFT, 0, :2], _mirrored(GLASS_HAND_BOX)).mean() > 0.9
    right_wrists = obs.hand_kp2d[obs.hand_valid[:, RIGHT], RIGHT, 0, :2]
    assert not _in_box(right_wrists, _mirrored(GLASS_HAND_BOX)).any()


@pytest.mark.slow
def test_close_up_hand_without_a_body_is_the_right_hand(closeup_clip: Path) -> None:
    """The pose sees no body here, so only the hand model's (un-mirrored) label can name the side."""
    obs = detect(closeup_clip, settings=SETTINGS)
    assert obs.body_valid.mean() < 0.5
    assert obs.hand_valid[:, RIGHT].all()
    assert not obs.hand_valid[:, LEFT].any()
    wrists = obs.hand_kp2d[:, RIGHT, 0, :2]
    assert ((wrists[:, 0] > 200) & (wrists[:, 0] < 350) & (wrists[:, 1] > 220) & (wrists[:, 1] < 340)).all()
