"""Decode the real opencv-doc clips end to end: counts, timestamps and display-order frames."""

from __future__ import annotations

import numpy as np
import pytest

from backend.video import iter_frames, probe
from tests.integration.clips import megamind, vtest


@pytest.mark.slow
def test_megamind_decodes_with_monotonic_times() -> None:
    """Megamind.avi stores packed B-frames whose decoded frames carry shuffled pts; times must still rise."""
    path = megamind()
    info = probe(path)
    assert (info.width, info.height, info.n_frames) == (720, 528, 270)
    assert info.fps == pytest.approx(23.976, abs=1e-3)
    assert not info.variable_frame_rate
    times = []
    count = 0
    for f in iter_frames(path, max_side=180):
        assert f.index == count
        assert max(f.image.shape[:2]) <= 180
        times.append(f.time)
        count += 1
    assert count == info.n_frames
    np.testing.assert_allclose(times, np.arange(count) / info.fps, atol=1e-6)


@pytest.mark.slow
def test_vtest_range_near_the_end() -> None:
    path = vtest()
    info = probe(path)
    assert (info.width, info.height, info.n_frames, info.fps) == (768, 576, 795, 10.0)
    frames = list(iter_frames(path, start=790))
    assert [f.index for f in frames] == list(range(790, 795))
    assert frames[0].time == pytest.approx(79.0)
    assert frames[0].image.shape == (576, 768, 3)
