"""Window choice for small subjects: pixel mapping, crops, search tiles and the tracker's steadiness."""

from __future__ import annotations

import numpy as np
import pytest

from backend.perception.views import SubjectTracker, View, full_view, search_tiles, tiles_nearest_first, view_around


def test_to_pixels_maps_normalised_window_coordinates() -> None:
    v = View(100, 50, 300, 150)
    pts = v.to_pixels(np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.25]]))
    np.testing.assert_allclose(pts, [[100, 50], [300, 150], [200, 75]])


def test_cut_crops_and_only_shrinks() -> None:
    frame = np.arange(480 * 640 * 3, dtype=np.uint32).reshape(480, 640, 3).astype(np.uint8)
    v = View(10, 20, 110, 70)
    np.testing.assert_array_equal(v.cut(frame, 1000), frame[20:70, 10:110])
    small = full_view(640, 480).cut(frame, 320)
    assert small.shape == (240, 320, 3)


def test_view_around_keeps_aspect_and_stays_inside() -> None:
    box = np.array([10.0, 10.0, 60.0, 110.0])  # 50 x 100 near the top-left corner
    v = view_around(box, 2.0, 1280, 720)
    assert v.x0 == 0 and v.y0 == 0
    assert v.height == 200 and v.width == pytest.approx(200 * 1280 / 720, abs=1)
    centre = view_around(np.array([600.0, 300.0, 650.0, 400.0]), 2.0, 1280, 720)
    assert (centre.x0 + centre.x1) / 2 == pytest.approx(625, abs=1)
    assert (centre.y0 + centre.y1) / 2 == pytest.approx(350, abs=1)


def test_view_around_large_subject_is_full_frame() -> None:
    v = view_around(np.array([200.0, 50.0, 600.0, 700.0]), 2.0, 1280, 720)
    assert v.is_full(1280, 720)


def test_search_tiles_cover_the_frame_at_each_zoom() -> None:
    w, h = 768, 576
    tiles = search_tiles(w, h, (2.0, 3.0))
    assert len(tiles) == 9 + 25
    for group, zoom in ((tiles[:9], 2.0), (tiles[9:], 3.0)):
        covered = np.zeros((h, w), bool)
        for t in group:
            assert t.width == round(w / zoom) and t.height == round(h / zoom)
            assert t.x0 >= 0 and t.x1 <= w and t.y0 >= 0 and t.y1 <= h
            covered[t.y0 : t.y1, t.x0 : t.x1] = True
        assert covered.all()


def test_tracker_follows_with_a_steady_crop() -> None:
    tr = SubjectTracker(1280, 720, 30.0, crop_scale=2.0, use_crops=True)
    assert tr.next_view().is_full(1280, 720)
    tr.update(np.array([600.0, 300.0, 650.0, 400.0]))
    first = tr.next_view()
    assert not first.is_full(1280, 720)
    tr.update(np.array([605.0, 302.0, 655.0, 402.0]))  # a small step keeps the crop
    assert tr.next_view() == first
    tr.update(np.array([760.0, 300.0, 810.0, 400.0]))  # past the crop's inner margin: a new crop
    moved = tr.next_view()
    assert moved != first and moved.x0 > first.x0


def test_tracker_when_lost_widens_then_gives_up_to_full_frame() -> None:
    tr = SubjectTracker(1280, 720, 10.0, crop_scale=2.0, use_crops=True)
    tr.update(np.array([600.0, 300.0, 650.0, 400.0]))
    tight = tr.next_view()
    tr.update(None)
    wide = tr.next_view()
    assert wide.width > tight.width and not tr.tracking
    for _ in range(10):
        tr.update(None)
    assert tr.next_view().is_full(1280, 720)


def test_tracker_reacquires_only_nearby_at_first() -> None:
    tr = SubjectTracker(1280, 720, 10.0, crop_scale=2.0, use_crops=True)
    box = np.array([100.0, 300.0, 150.0, 400.0])
    tr.update(box)
    tr.update(None)
    far = box + np.array([800.0, 0, 800.0, 0])
    assert tr.accepts(box + 20)
    assert not tr.accepts(far)
    for _ in range(100):
        tr.update(None)
    assert tr.accepts(far)


def test_tracker_without_crops_always_looks_at_the_whole_frame() -> None:
    tr = SubjectTracker(640, 480, 25.0, crop_scale=2.0, use_crops=False)
    tr.update(np.array([10.0, 10.0, 20.0, 30.0]))
    assert tr.next_view().is_full(640, 480)


def test_tracker_keeps_the_whole_frame_for_hands_only() -> None:
    tr = SubjectTracker(1280, 720, 30.0, crop_scale=2.0, use_crops=True)
    tr.update(np.array([600.0, 300.0, 650.0, 340.0]), from_body=False)
    assert tr.tracking
    assert tr.next_view().is_full(1280, 720)


def test_search_tries_tiles_near_the_last_box_first() -> None:
    tiles = search_tiles(768, 576, (2.0,))
    assert tiles_nearest_first(tiles, None) == tiles
    ordered = tiles_nearest_first(tiles, np.array([700.0, 500.0, 740.0, 570.0]))
    assert ordered[0] == View(384, 288, 768, 576)
    assert sorted(ordered, key=lambda t: (t.y0, t.x0)) == sorted(tiles, key=lambda t: (t.y0, t.x0))


def test_a_body_around_the_last_hands_is_the_same_subject() -> None:
    tr = SubjectTracker(480, 360, 30.0, crop_scale=2.0, use_crops=True)
    tr.update(np.array([164.0, 281.0, 217.0, 320.0]), from_body=False)  # only a hand was seen
    assert tr.accepts(np.array([60.0, 100.0, 430.0, 360.0]))
    assert not tr.accepts(np.array([400.0, 10.0, 470.0, 60.0]))
