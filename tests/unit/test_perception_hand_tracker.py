"""The hand tracker's rule for keeping a hand found away from the body's wrists, on synthetic hands."""

from __future__ import annotations

import numpy as np

from backend.perception.hand_tracker import HandTracker, _Hand


def _hand(wrist: tuple[float, float], size: float) -> _Hand:
    """A hand pointing up from `wrist`, `size` px from the wrist to the middle knuckle."""
    px = np.zeros((21, 3))
    px[:, 0] = wrist[0]
    px[:, 1] = wrist[1] - np.linspace(0.0, 2.0 * size, 21)
    px[9, :2] = (wrist[0], wrist[1] - size)
    return _Hand(px=px, world=None, label="Left", score=0.9)


# a body's wrists at (100, 300) and (300, 300), both visible; a hand may lie 30 px from one; 80 px is outsized
WRISTS = (np.array([[100.0, 300.0], [300.0, 300.0]]), np.array([0.9, 0.9]), 30.0, 80.0)


def test_a_hand_at_a_wrist_is_kept() -> None:
    found: list[_Hand] = []
    HandTracker._add(found, _hand((110.0, 305.0), 20.0), WRISTS)
    assert len(found) == 1


def test_a_hand_of_body_size_away_from_the_wrists_is_someone_elses() -> None:
    found: list[_Hand] = []
    HandTracker._add(found, _hand((600.0, 100.0), 60.0), WRISTS)
    assert found == []


def test_a_hand_too_big_for_the_body_is_kept_wherever_it_lies() -> None:
    """The body it would be held to was made out of a hand: detect.py drops that body instead."""
    found: list[_Hand] = []
    HandTracker._add(found, _hand((600.0, 100.0), 90.0), WRISTS)
    assert len(found) == 1
    HandTracker._add(found, _hand((600.0, 100.0), 90.0), None)  # the same hand again stays one hand
    assert len(found) == 1
