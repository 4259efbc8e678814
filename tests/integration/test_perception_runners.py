"""The face-less Holistic graph gives exactly mediapipe Holistic's pose and hand landmarks; Hands in its own
process, working ahead on several images, answers exactly as Hands in this one."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import mediapipe as mp
import numpy as np
import pytest

from backend.perception.hands_worker import idle_worker_pid
from backend.perception.runners import HANDS_SLOTS, HandsRunner, _holistic_without_face
from backend.perception.settings import PerceptionSettings
from backend.perception.views import full_view, view_around
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


@pytest.mark.slow
def test_hands_process_working_ahead_answers_in_order_like_in_process() -> None:
    settings = PerceptionSettings()
    frames = [f.image for f in iter_frames(megamind(), start=0, stop=24)]
    h, w = frames[0].shape[:2]
    # alternate the full frame and a crop, so an answer given for the wrong image would show
    views = [full_view(w, h) if i % 3 else view_around(np.array([w * 0.3, h * 0.1, w * 0.9, h]), 1.0, w, h)
             for i in range(len(frames))]
    local, remote = HandsRunner(replace(settings, hands_process=False)), HandsRunner(settings)
    expected, got = [], []
    try:
        for image, view in zip(frames, views, strict=True):
            local.submit(view.cut(image, settings.hands_max_side), view)
            expected.append(local.collect())
        for i, (image, view) in enumerate(zip(frames, views, strict=True)):
            remote.submit(view.cut(image, settings.hands_max_side), view)
            if remote.outstanding == HANDS_SLOTS:
                got.append(remote.collect())
            if i == 0:
                with pytest.raises(ValueError, match="hands_max_side"):
                    remote.submit(np.zeros((settings.hands_max_side + 1, 8, 3), np.uint8), view)
        while remote.outstanding:
            got.append(remote.collect())
        with pytest.raises(RuntimeError, match="collect before"):
            for image, view in zip(frames, views, strict=False):
                remote.submit(view.cut(image, settings.hands_max_side), view)
    finally:
        local.close()
        remote.close()
    assert len(got) == len(expected) == len(frames)
    assert sum(len(e) for e in expected) >= 5  # hands were found at all
    for e, g in zip(expected, got, strict=True):
        assert [d.side for d in e] == [d.side for d in g]
        for de, dg in zip(e, g, strict=True):
            np.testing.assert_allclose(dg.kp2d, de.kp2d, atol=1e-6)


@pytest.mark.slow
def test_a_hands_worker_kept_for_the_next_job_answers_like_a_fresh_one() -> None:
    settings = PerceptionSettings()
    frames = [f.image for f in iter_frames(megamind(), start=3, stop=9)]  # hands in view from the first frame on
    view = full_view(frames[0].shape[1], frames[0].shape[0])

    def run(runner: HandsRunner) -> list[list[np.ndarray]]:
        """Each frame's detections (kp2d), the runner closed afterwards."""
        out = []
        try:
            for image in frames:
                runner.submit(view.cut(image, settings.hands_max_side), view)
                out.append([d.kp2d for d in runner.collect()])
        finally:
            runner.close()
        return out

    first = HandsRunner(settings)
    pid = first.worker_pid
    answers = [run(first)]
    second = HandsRunner(settings)
    assert second.worker_pid == pid  # the same process, no start-up
    answers.append(run(second))
    other = HandsRunner(replace(settings, min_detection_confidence=0.6))
    assert other.worker_pid != pid  # other settings: another worker
    other.close()
    expected = run(HandsRunner(replace(settings, hands_process=False)))
    assert sum(len(e) for e in expected) >= 3
    for got in answers:  # the second clip does not start from the first clip's tracking state
        for e, g in zip(expected, got, strict=True):
            assert len(e) == len(g)
            for de, dg in zip(e, g, strict=True):
                np.testing.assert_allclose(dg, de, atol=1e-6)


@pytest.mark.slow
def test_a_hands_worker_that_dies_fails_the_job_clearly_and_is_replaced() -> None:
    settings = PerceptionSettings()
    image = next(iter_frames(megamind(), start=5, stop=6)).image
    view = full_view(image.shape[1], image.shape[0])
    runner = HandsRunner(settings)
    dead = runner.worker_pid
    assert dead is not None
    runner.submit(view.cut(image, settings.hands_max_side), view)
    os.kill(dead, signal.SIGKILL)
    with pytest.raises(RuntimeError, match="Hands worker process stopped unexpectedly"):
        runner.collect()
    runner.close()  # no error, and the dead worker is not kept
    assert idle_worker_pid() is None
    fresh = HandsRunner(settings)
    try:
        assert fresh.worker_pid not in (None, dead)
        fresh.submit(view.cut(image, settings.hands_max_side), view)
        assert fresh.collect()  # the new worker finds the hands
    finally:
        fresh.close()
