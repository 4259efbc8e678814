"""detect() on real clips: the Observations contract, small-person crop search, NoPerson, progress, cancel."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import av
import numpy as np
import pytest

from backend.perception import Observations, PerceptionSettings, detect
from backend.perception.hands_worker import idle_worker_pid
from backend.video import probe
from protocol.errors import BadRequest, Cancelled, NoPerson
from tests.integration.clips import megamind, vtest

IN_PROCESS = PerceptionSettings(hands_process=False)


def _no_process_but_the_kept_hands_worker() -> bool:
    """A finished, failed or cancelled job leaves no child process running except the one Hands worker kept for
    the next job."""
    return {p.pid for p in multiprocessing.active_children()} <= {idle_worker_pid()}


@pytest.mark.slow
def test_observations_contract_on_megamind() -> None:
    info = probe(megamind())
    obs = detect(megamind(), 40, 55, settings=IN_PROCESS)
    assert isinstance(obs, Observations) and len(obs) == 15
    assert (obs.width, obs.height) == (720, 528) and obs.fps == pytest.approx(info.fps)
    np.testing.assert_array_equal(obs.frame_indices, np.arange(40, 55))
    np.testing.assert_allclose(obs.times, np.arange(40, 55) / info.fps, atol=1e-6)
    assert obs.body_valid.all()
    # body: the box lies in the frame and holds the visible landmarks that do; world landmarks hip-centred
    kp = obs.body_kp2d
    inside = (kp[..., 0] >= 0) & (kp[..., 0] <= 720) & (kp[..., 1] >= 0) & (kp[..., 1] <= 528)
    seen = (kp[..., 2] > 0.8) & inside
    assert seen[:, [0, 11, 12]].all()  # nose and shoulders of the close-up
    assert (obs.bbox[:, :2] >= 0).all() and (obs.bbox[:, 2] <= 720).all() and (obs.bbox[:, 3] <= 528).all()
    for t in range(len(obs)):
        x0, y0, x1, y1 = obs.bbox[t]
        pts = kp[t, seen[t], :2]
        assert (pts[:, 0] >= x0 - 1).all() and (pts[:, 0] <= x1 + 1).all()
        assert (pts[:, 1] >= y0 - 1).all() and (pts[:, 1] <= y1 + 1).all()
    hips = obs.body_kp3d[:, [23, 24], :3].mean(axis=1)
    assert np.abs(hips).max() < 0.05
    assert 0.2 < np.linalg.norm(obs.body_kp3d[:, 11, :3] - obs.body_kp3d[:, 12, :3], axis=1).mean() < 0.6
    # hands: missing ones are masked with confidence 0; found ones are hand-sized in metres
    assert (obs.hand_kp2d[~obs.hand_valid][..., 2] == 0).all()
    assert (obs.hand_kp2d[obs.hand_valid][..., 2] > 0).all()
    found = obs.hand_kp3d[obs.hand_valid]
    length = np.linalg.norm(found[:, 9] - found[:, 0], axis=-1)
    assert ((length > 0.05) & (length < 0.15)).all()


@pytest.mark.slow
def test_small_pedestrians_need_the_crop_search() -> None:
    """On vtest.avi the people are ~100 px tall in a 768x576 frame: the full frame alone finds nobody."""
    with pytest.raises(NoPerson, match=r"vtest\.avi"):
        detect(vtest(), 0, 12, settings=PerceptionSettings(crop_search=False, hands_detector=False))
    obs = detect(vtest(), 0, 12, settings=PerceptionSettings(hands_detector=False))
    assert obs.body_valid.sum() >= 6
    heights = obs.bbox[obs.body_valid, 3] - obs.bbox[obs.body_valid, 1]
    assert (heights < 576 / 3).all()
    # the same person throughout: the box centre moves little from frame to frame
    centres = (obs.bbox[obs.body_valid, :2] + obs.bbox[obs.body_valid, 2:]) / 2
    assert np.linalg.norm(np.diff(centres, axis=0), axis=1).max() < 40


@pytest.mark.slow
def test_hands_in_a_second_process_match_in_process() -> None:
    parallel = detect(megamind(), 40, 50, settings=PerceptionSettings(hands_process=True))
    serial = detect(megamind(), 40, 50, settings=IN_PROCESS)
    for key, value in serial.to_arrays().items():
        np.testing.assert_allclose(parallel.to_arrays()[key], value, atol=1e-4, err_msg=key)
    assert _no_process_but_the_kept_hands_worker()


@pytest.mark.slow
def test_no_person_in_a_clip_of_walls(tmp_path: Path) -> None:
    path = tmp_path / "walls.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(6):
            image = np.full((240, 320, 3), 40 * i, np.uint8)
            image[:, 160:] = (200, 120, 60)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(NoPerson) as exc:
        detect(path, settings=IN_PROCESS)
    assert "walls.mp4" in exc.value.message
    assert _no_process_but_the_kept_hands_worker()


@pytest.mark.slow
def test_progress_and_cancel() -> None:
    reports: list[tuple[float, str]] = []
    no_hands = PerceptionSettings(hands_detector=False)
    detect(megamind(), 40, 46, settings=no_hands, progress=lambda f, m: reports.append((f, m)))
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(isinstance(m, str) and m for _, m in reports)

    calls = 0

    def cancel_on_third() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Cancelled("cancelled by the test")

    with pytest.raises(Cancelled):
        detect(megamind(), 40, 60, settings=PerceptionSettings(hands_process=True), check_cancelled=cancel_on_third)
    assert calls == 3
    assert _no_process_but_the_kept_hands_worker()


def test_empty_frame_range_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="270 frames"):
        detect(megamind(), 300, 310)
    with pytest.raises(BadRequest):
        detect(megamind(), 10, 10)
