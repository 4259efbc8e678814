"""The camera stage overlapped with perception: same stage contract, ordered progress, errors and abandonment."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backend.cache.stage_cache import StageCache
from backend.camera.solve import solve_camera
from backend.methods.base import CAMERA_NICENESS, JobContext
from backend.pipeline import job_settings, make_spec
from backend.video import decode, fanout
from backend.video.decode import iter_frame_sizes
from protocol.errors import Cancelled, DecodeError
from tests.integration.clips import megamind

pytestmark = pytest.mark.slow


def _context(video: Path, tmp_path: Path, frames: list[int] | None, events: list[str]) -> JobContext:
    spec = make_spec(str(video), preset="preview-fast", frames=frames)
    return JobContext(spec, job_settings(spec), StageCache(tmp_path / "cache"),
                      sink=lambda stage, frac, msg, eta: events.append(stage))


def test_camera_solved_beside_perception_is_cached_and_reported_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes: list[tuple] = []

    def counted(*args: Any) -> Any:
        decodes.append(args)
        return iter_frame_sizes(*args)

    monkeypatch.setattr(decode, "iter_frame_sizes", counted)
    monkeypatch.setattr(fanout, "iter_frame_sizes", counted)
    events: list[str] = []
    ctx = _context(megamind(), tmp_path, [0, 30], events)
    ctx.start_camera()
    obs = ctx.observations()
    cam = ctx.camera()
    ctx.close()
    assert len(decodes) == 1  # one decode fed both stages
    assert cam.R_w2c.shape == (len(obs), 3, 3)
    alone = solve_camera(megamind(), 0, 30, settings=ctx.settings.section("camera"))
    np.testing.assert_array_equal(alone.R_w2c, cam.R_w2c)  # the same frames as the camera's own decode
    assert {"perception", "camera"} <= set(ctx.timings)
    # progress reads as one stage after the other, even though the camera ran during perception
    stages = [s for i, s in enumerate(events) if i == 0 or s != events[i - 1]]
    assert stages == ["perception", "camera"], stages
    again = _context(megamind(), tmp_path, [0, 30], [])
    again.start_camera()
    assert again.camera().R_w2c.shape == cam.R_w2c.shape
    assert again.cached_stages == ["camera"]


def test_an_abandoned_background_camera_stops_and_errors_reach_the_job(tmp_path: Path) -> None:
    ctx = _context(megamind(), tmp_path / "a", None, [])
    ctx.start_camera()
    ctx.close()  # the job ended (e.g. perception found nobody): the whole-clip solve stops at its next check
    assert isinstance(ctx._camera_job.exception(), Cancelled)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 100)
    bad = _context(broken, tmp_path / "b", None, [])
    bad.start_camera()
    with pytest.raises(DecodeError):
        bad.camera()
    bad.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are a Linux feature")
def test_the_background_camera_yields_the_cpu_to_perception(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The camera thread runs at a lower priority than the job's thread, which keeps its own."""
    seen: list[int] = []
    solve = JobContext._camera

    def camera(self: JobContext, progress: Any, check: Any, frames: Any = None) -> Any:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return solve(self, progress, check, frames)

    monkeypatch.setattr(JobContext, "_camera", camera)
    ctx = _context(megamind(), tmp_path, [0, 5], [])
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    ctx.start_camera()
    ctx.camera()
    ctx.close()
    assert seen == [min(mine + CAMERA_NICENESS, 19)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
