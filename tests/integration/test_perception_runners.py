"""The hand tracker's region and landmark graph follow a hand exactly as mediapipe Hands does; the tracker in
its own process, working ahead on several images, answers exactly as in this one."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import numpy as np
import pytest

from backend.perception.hand_tracker import HandTracker, PalmDetector, region_from_landmarks
from backend.perception.hands_worker import idle_worker_pid
from backend.perception.runners import HANDS_SLOTS, HandsRunner
from backend.perception.settings import PerceptionSettings
from backend.perception.views import full_view, view_around
from backend.video import iter_frames
from tests.integration.clips import megamind


@pytest.mark.slow
def test_the_tracker_follows_a_hand_exactly_as_mediapipe_hands() -> None:
    """The next frame's region from a hand's landmarks is the one mediapipe Hands' own graph computes, and the
    tracker's landmarks in that region are Hands' landmarks of the next frame."""
    from mediapipe.python.solution_base import SolutionBase

    hands = SolutionBase(binary_graph_path="mediapipe/modules/hand_landmark/hand_landmark_tracking_cpu.binarypb",
                         side_inputs={"num_hands": 1, "model_complexity": 1, "use_prev_landmarks": True},
                         outputs=["multi_hand_landmarks", "hand_rects_from_landmarks"])
    tracker = HandTracker(0.5)
    frames = [f.image for f in iter_frames(megamind(), start=8, stop=40)]  # the glass hand, in view throughout
    h, w = frames[0].shape[:2]
    region = None
    try:
        for i, image in enumerate(frames):
            theirs = hands.process({"image": image})
            expected = np.array([(p.x, p.y) for p in theirs.multi_hand_landmarks[0].landmark])
            if region is not None:  # the tracker looks where Hands' last region says, afresh
                tracker.new_clip()
                ours = tracker.process(image, (0, 0, w, h), palms=region[None])
                assert len(ours) == 1
                np.testing.assert_allclose(ours[0][0][:, :2], expected, atol=1e-4, err_msg=f"frame {i}")
            r = theirs.hand_rects_from_landmarks[0]
            region = np.array([r.x_center, r.y_center, r.width, r.height, r.rotation])
            mine = region_from_landmarks(expected * (w, h), (w, h))
            np.testing.assert_allclose([mine.x_center, mine.y_center, mine.width, mine.height, mine.rotation],
                                       region, atol=1e-5, err_msg=f"frame {i}")
    finally:
        hands.close()
        tracker.close()


@pytest.mark.slow
def test_hands_process_working_ahead_answers_in_order_like_in_process() -> None:
    settings = PerceptionSettings()
    frames = [f.image for f in iter_frames(megamind(), start=0, stop=24)]
    h, w = frames[0].shape[:2]
    # alternate the full frame and a crop, so an answer given for the wrong image would show
    views = [full_view(w, h) if i % 3 else view_around(np.array([w * 0.3, h * 0.1, w * 0.9, h]), 1.0, w, h)
             for i in range(len(frames))]
    local, remote = HandsRunner(replace(settings, hands_process=False)), HandsRunner(settings)
    detector = PalmDetector(settings.min_detection_confidence)
    cuts = [view.cut(image, settings.hands_max_side) for image, view in zip(frames, views, strict=True)]
    palms = [detector(cut) for cut in cuts]
    detector.close()
    expected, got = [], []
    try:
        for cut, view, found in zip(cuts, views, palms, strict=True):
            local.submit(cut, view, palms=found)
            expected.append(local.collect())
        for i, (cut, view, found) in enumerate(zip(cuts, views, palms, strict=True)):
            remote.submit(cut, view, palms=found)
            if remote.outstanding == HANDS_SLOTS:
                got.append(remote.collect())
            if i == 0:
                with pytest.raises(ValueError, match="hands_max_side"):
                    remote.submit(np.zeros((settings.hands_max_side + 1, 8, 3), np.uint8), view)
        while remote.outstanding:
            got.append(remote.collect())
        with pytest.raises(RuntimeError, match="collect before"):
            for cut, view in zip(cuts, views, strict=True):
                remote.submit(cut, view)
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
    detector = PalmDetector(settings.min_detection_confidence)
    palms = [detector(image) for image in frames]
    detector.close()

    def run(runner: HandsRunner) -> list[list[np.ndarray]]:
        """Each frame's detections (kp2d), the runner closed afterwards."""
        out = []
        try:
            for image, found in zip(frames, palms, strict=True):
                runner.submit(view.cut(image, settings.hands_max_side), view, palms=found)
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
    other = HandsRunner(replace(settings, min_tracking_confidence=0.6))
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
    detector = PalmDetector(settings.min_detection_confidence)
    palms = detector(image)
    detector.close()
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
        fresh.submit(view.cut(image, settings.hands_max_side), view, palms=palms)
        assert fresh.collect()  # the new worker finds the hands
    finally:
        fresh.close()
