"""The decode-ahead thread used by detect(): order kept, errors passed on, producer closed on early exit."""

from __future__ import annotations

import threading
from collections.abc import Generator

import numpy as np
import pytest

from backend.perception.detect import _prefetch
from backend.video import Frame
from protocol.errors import DecodeError


def _frames(n: int, fail_at: int | None = None, closed: list[bool] | None = None) -> Generator[Frame, None, None]:
    try:
        for i in range(n):
            if i == fail_at:
                raise DecodeError(f"broken at {i}")
            yield Frame(index=i, time=i / 10, image=np.zeros((2, 2, 3), np.uint8))
    finally:
        if closed is not None:
            closed.append(True)


def test_order_is_kept() -> None:
    assert [f.index for f in _prefetch(_frames(50), 3)] == list(range(50))


def test_errors_arrive_after_the_good_frames() -> None:
    seen = []
    with pytest.raises(DecodeError, match="broken at 7"):
        for f in _prefetch(_frames(20, fail_at=7), 2):
            seen.append(f.index)
    assert seen == list(range(7))


def test_stopping_early_closes_the_producer() -> None:
    closed: list[bool] = []
    it = _prefetch(_frames(1000, closed=closed), 2)
    assert next(it).index == 0
    it.close()
    assert closed == [True]
    assert not [t for t in threading.enumerate() if t.name == "vidrig-decode"]
