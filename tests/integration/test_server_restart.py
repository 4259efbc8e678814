"""kill -9 the server mid-job and start it again on the same state folder: nothing finished is lost.

Finished results stay fetchable, the interrupted job reads as failed (interrupted), and resubmitting it skips the
stage that was cached before the kill.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from protocol import messages as m
from protocol.errors import ErrorCode, VidrigError
from tests.support.results import assert_same
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow


def test_kill_and_restart_keeps_results_and_cached_stages(tmp_path: Path, test_clip: Path) -> None:
    state = tmp_path / "state"
    gate = tmp_path / "gate"
    settings = {"salt": "restart", "gate": str(gate)}
    first = ServerProcess(state).start()
    try:
        with first.client() as client:
            done_job = client.submit(test_clip, method="testcount", frames=(2, 7), settings={"salt": "kept"})
            final = client.wait(done_job, 120)
            assert isinstance(final, m.ResultMessage) and final.result is not None
            kept = final.result
            job = client.submit(test_clip, method="testcount", settings=settings)
            deadline = time.monotonic() + 60
            while client.status(job).stage != "gate":  # stage `count` finished and is in the cache
                assert time.monotonic() < deadline, "the job never reached its gate stage"
                time.sleep(0.05)
    finally:
        first.kill()
    assert first.proc is not None and first.proc.returncode == -9
    record = json.loads((state / "jobs" / job / "record.json").read_text())
    assert record["state"] == "running"

    second = ServerProcess(state, port=first.port).start()
    try:
        with second.client() as client:
            assert_same(kept, client.result(done_job))
            assert client.status(done_job).state == "done"
            status = client.status(job)
            assert status.state == "failed"
            assert "stopped while this job was running" in status.message
            with pytest.raises(VidrigError, match="submit it again") as info:
                client.result(job)
            assert info.value.code is ErrorCode.INTERNAL
            assert info.value.details == {"interrupted": True, "stage": "gate"}

            gate.touch()
            again = client.submit(test_clip, method="testcount", settings=settings)
            final = client.wait(again, 120)
            assert isinstance(final, m.ResultMessage) and final.result is not None
            timings = final.result.meta.timings
            assert "count" not in timings and "gate" in timings, timings
            assert final.result.smplx is not None and final.result.smplx.num_frames == 24
        record = json.loads((state / "jobs" / again / "record.json").read_text())
        assert record["state"] == "done" and record["cached_stages"] == ["count"]
    finally:
        assert second.stop() == 0
