"""Hand side rules on synthetic detections with known geometry."""

from __future__ import annotations

import numpy as np
import pytest

from backend.perception.landmarks import (
    HAND_WRIST_TO_MIDDLE_MCP_M,
    BodyDet,
    HandDet,
    assign_hands,
    dedupe_hands,
    side_from_hands_label,
    subject_box,
)
from backend.perception.observations import LEFT, RIGHT


def _body(left_wrist=(300.0, 300.0), right_wrist=(100.0, 300.0), wrist_vis: float = 0.9) -> BodyDet:
    """A person facing the camera: their left side on the image's right; shoulders 200 px apart."""
    kp = np.zeros((33, 3))
    kp[:, 2] = 0.9
    kp[:, :2] = [200.0, 200.0]
    kp[11, :2], kp[12, :2] = (300.0, 100.0), (100.0, 100.0)  # left, right shoulder
    kp[23, :2], kp[24, :2] = (260.0, 350.0), (140.0, 350.0)  # hips
    kp[0, :2] = (200.0, 40.0)
    kp[15, :2], kp[16, :2] = left_wrist, right_wrist
    kp[[15, 16], 2] = wrist_vis
    kp3d = np.zeros((33, 4))
    kp3d[:, 3] = kp[:, 2]
    return BodyDet(kp2d=kp, kp3d=kp3d)


def _hand(wrist, side: int | None, score: float = 0.9, world: bool = True, size: float = 40.0) -> HandDet:
    """A straight hand pointing up from `wrist`, `size` px from wrist to the middle knuckle."""
    kp = np.zeros((21, 3))
    kp[:, 0] = wrist[0] + np.linspace(-10, 10, 21)
    kp[:, 1] = wrist[1] - np.linspace(0, 2 * size, 21)
    kp[0, :2] = wrist
    kp[9, :2] = (wrist[0], wrist[1] - size)
    w = np.random.default_rng(0).normal(size=(21, 3)) * 0.03 if world else None
    return HandDet(kp2d=kp, score=score, world=w, side=side)


def test_hands_label_is_mirrored() -> None:
    assert side_from_hands_label("Left") == RIGHT
    assert side_from_hands_label("Right") == LEFT
    with pytest.raises(ValueError):
        side_from_hands_label("left")


def test_hands_go_to_the_nearest_arm() -> None:
    body = _body()
    near_left, near_right = _hand((305, 310), LEFT), _hand((95, 290), RIGHT)
    assert assign_hands([near_right, near_left], body, 0.6) == [near_left, near_right]


def test_proximity_beats_a_wrong_label() -> None:
    body = _body()
    mislabelled = _hand((300, 305), RIGHT)
    assert assign_hands([mislabelled], body, 0.6) == [mislabelled, None]


def test_label_breaks_a_tie_between_close_wrists() -> None:
    body = _body(left_wrist=(200, 300), right_wrist=(210, 300))
    hand = _hand((205, 300), LEFT)
    assert assign_hands([hand], body, 0.6) == [hand, None]
    hand_r = _hand((205, 300), RIGHT)
    assert assign_hands([hand_r], body, 0.6) == [None, hand_r]


def test_far_hand_belongs_to_someone_else() -> None:
    body = _body()
    stranger = _hand((600, 300), LEFT)
    assert assign_hands([stranger], body, 0.6) == [None, None]


def test_two_hands_at_one_wrist_keep_one() -> None:
    body = _body()
    a, b = _hand((300, 300), LEFT), _hand((320, 320), LEFT)
    out = assign_hands([a, b], body, 0.6)
    assert out == [a, None]


def test_hidden_wrist_holds_a_hand_a_little_further_away() -> None:
    body = _body(wrist_vis=0.05)  # radius 120 px; a hidden wrist reaches 240 px
    near, far = _hand((100, 480), RIGHT), _hand((300, 600), LEFT)
    assert assign_hands([near, far], body, 0.6) == [None, near]


def test_without_body_labels_decide_and_score_breaks_ties() -> None:
    low, high = _hand((10, 10), LEFT, score=0.6), _hand((400, 10), LEFT, score=0.95)
    right = _hand((200, 10), RIGHT)
    assert assign_hands([low, high, right], None, 0.6) == [high, right]


def test_duplicates_are_dropped() -> None:
    a, b = _hand((100, 100), LEFT, score=0.8), _hand((103, 101), LEFT, score=0.9)
    other = _hand((300, 100), RIGHT)
    kept = dedupe_hands([a, b, other])
    assert kept == [b, other]


def test_world_points_from_pixels_have_hand_size() -> None:
    hand = _hand((100, 100), LEFT, world=False, size=37.0)
    pts = hand.world_points()
    assert pts.shape == (21, 3)
    np.testing.assert_allclose(pts.mean(axis=0), 0, atol=1e-12)
    assert np.linalg.norm(pts[9] - pts[0]) == pytest.approx(HAND_WRIST_TO_MIDDLE_MCP_M)
    with_world = _hand((100, 100), LEFT)
    assert with_world.world is not None
    np.testing.assert_array_equal(with_world.world_points(), with_world.world)


def test_subject_box_covers_body_and_hands_with_margin() -> None:
    body = _body()
    hand = _hand((380, 420), LEFT)
    box = subject_box(body, [hand], 1000, 1000, margin=0.0)
    assert box is not None
    np.testing.assert_allclose(box, [100, 40, 390, 420])
    grown = subject_box(body, [], 1000, 1000, margin=0.1)
    np.testing.assert_allclose(grown, [100 - 20, 40 - 31, 300 + 20, 350 + 31])
    clipped = subject_box(body, [], 250, 250, margin=0.1)
    np.testing.assert_allclose(clipped, [80, 9, 250, 250])
    assert subject_box(None, [], 100, 100) is None


def test_one_hand_found_twice_sits_on_one_side() -> None:
    """Hidden left arm: the pose puts both wrists on the right hand and the tracker finds it from both arms."""
    body = _body(left_wrist=(101.0, 300.0), right_wrist=(100.0, 300.0))
    body.kp2d[15, 2] = 0.05
    twice = [_hand((100, 300), RIGHT), _hand((101, 301), LEFT)]
    twice[1].score = 0.6
    out = assign_hands(dedupe_hands(twice), body, 0.6)
    assert out == [None, twice[0]]


def test_a_visible_wrist_beats_the_label_and_the_label_beats_a_hidden_wrist() -> None:
    """Hands together: the pose sees the left wrist, guesses the hidden right one next to it."""
    body = _body(left_wrist=(204.0, 138.0), right_wrist=(199.0, 135.0))
    body.kp2d[16, 2] = 0.15
    labelled_right = _hand((202, 138), RIGHT)
    assert assign_hands([labelled_right], body, 0.6) == [labelled_right, None]


def test_torso_size_is_the_larger_of_shoulder_width_and_torso_length() -> None:
    """Facing the camera the torso length (250 px) wins; turned sideways (shoulders 10 px apart) it still holds;
    leaning into the camera (torso foreshortened to 60 px) the shoulder width (200 px) does."""
    body = _body()
    assert body.torso_size() == pytest.approx(250.0)
    body.kp2d[11, :2], body.kp2d[12, :2] = (205.0, 100.0), (195.0, 100.0)
    body.kp2d[23, :2], body.kp2d[24, :2] = (205.0, 350.0), (195.0, 350.0)
    assert body.torso_size() == pytest.approx(250.0)
    lean = _body()
    lean.kp2d[23, 1] = lean.kp2d[24, 1] = 160.0
    assert lean.torso_size() == pytest.approx(200.0)
