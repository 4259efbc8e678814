"""The worker's warm-up readies what its first job would otherwise wait for: the hand-tracker process that job
takes over, and the optimiser and mediapipe loaded. A piece that fails is reported and leaves the rest warmed."""

from __future__ import annotations

import logging

import pytest

from backend.jobs.warmup import warm_up
from backend.perception.hands_worker import idle_worker_pid
from backend.perception.runners import HandsRunner
from backend.perception.settings import PerceptionSettings


def test_the_first_job_takes_over_the_hand_worker_the_warm_up_started() -> None:
    seconds = warm_up("cpu")
    assert set(seconds) == {"hands worker", "optimiser", "mediapipe"}
    waiting = idle_worker_pid()
    assert waiting is not None
    runner = HandsRunner(PerceptionSettings())
    try:
        assert runner.worker_pid == waiting
    finally:
        runner.close()


def test_a_piece_that_fails_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="vidrig.worker"):
        seconds = warm_up("no-such-device")
    assert set(seconds) == {"hands worker", "mediapipe"}
    assert "warm-up of the optimiser failed" in caplog.text
