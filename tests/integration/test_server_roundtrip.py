"""Every message type through a real `vidrig serve` subprocess: handshake, jobs, status, refine, cancel, errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from protocol import messages as m
from protocol.client import Client
from protocol.errors import ErrorCode, VidrigError
from protocol.result import Result
from tests.conftest import CLIP_FRAMES, SMALL_MAX_MESSAGE_BYTES
from tests.support.results import assert_same
from tests.support.server import REPO, ServerProcess, server_env

pytestmark = pytest.mark.slow


def _finals_and_progress(client: Client, job: str, timeout: float = 60.0) -> tuple[m.Message, list[m.Progress]]:
    """Read until the job's final message; returns it and the progress messages seen on the way."""
    progress: list[m.Progress] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.recv(1.0)
        if isinstance(msg, m.Progress) and msg.job == job:
            progress.append(msg)
        elif isinstance(msg, m.ResultMessage | m.CancelledMessage | m.Error) and msg.job == job:
            return msg, progress
    raise AssertionError(f"job {job} did not end within {timeout} s")


def _check_count_result(result: Result, start: int, stop: int) -> None:
    """The test method returns one frame per decoded source frame, transl = running index."""
    assert result.meta.method == "testcount"
    assert result.meta.frame_indices == list(range(start, stop))
    assert result.smplx is not None and result.smplx.num_frames == stop - start
    np.testing.assert_array_equal(result.smplx.transl[:, 0], np.arange(stop - start, dtype=np.float32))


def test_hello_describes_the_server(server: ServerProcess) -> None:
    with server.client() as client:
        welcome = client.hello()
    assert welcome.version == 1 and welcome.server.startswith("vidrig")
    assert {"name": "testcount", "produces": ["body"], "description": "test-only: counts frames"} in welcome.methods
    counting = [p for p in welcome.presets if p["name"] == "counting"]
    assert counting == [
        {"name": "counting", "method": "testcount", "description": "test preset", "settings": {"delay": 0.001}}
    ]
    assert welcome.max_message_bytes == SMALL_MAX_MESSAGE_BYTES
    assert welcome.device == "cpu" and welcome.body_models


def test_a_job_from_submit_to_refine(server: ServerProcess, test_clip: Path) -> None:
    """submit -> accepted, progress..., result; status, result again, refine, ping: each reply in its place."""
    with server.client() as client:
        assert client.ping() < 5
        sid = client.send(m.Submit(video=str(test_clip), preset="counting", frames=[3, 9], settings={"salt": "rt"}))
        accepted = client.recv(10)
        assert isinstance(accepted, m.Accepted) and accepted.re == sid and accepted.job
        job = accepted.job
        final, progress = _finals_and_progress(client, job)
        assert isinstance(final, m.ResultMessage) and final.re == "" and final.result is not None
        assert progress and progress[0].state == "running" and all(p.re == "" for p in progress)
        assert all(0.0 <= p.fraction <= 1.0 for p in progress)
        _check_count_result(final.result, 3, 9)
        assert final.result.meta.preset == "counting"
        assert final.result.meta.settings["method"]["delay"] == 0.001

        status = client.status(job)
        assert (status.state, status.fraction, status.job) == ("done", 1.0, job)
        assert_same(final.result, client.result(job))

        pins = {"pin_frames": np.array([4], np.int64), "pin_poses": np.zeros((1, 55, 3), np.float32)}
        rid = client.send(m.Refine(job=job, settings={"salt": "refined"}, arrays=pins))
        refined = client.recv(10)
        assert isinstance(refined, m.Accepted) and refined.re == rid and refined.job != job
        final, _ = _finals_and_progress(client, refined.job)
        assert isinstance(final, m.ResultMessage) and final.result is not None
        _check_count_result(final.result, 3, 9)
        assert final.result.meta.settings["method"]["salt"] == "refined"

        with pytest.raises(VidrigError, match="already ended") as info:
            client.request(m.Cancel(job=job))
        assert info.value.code is ErrorCode.BAD_REQUEST


def test_cancel_a_running_job(server: ServerProcess, test_clip: Path, tmp_path: Path) -> None:
    """A job waiting on a gate is cancelled: one `cancelled` reply carrying the cancel's id; status says so."""
    with server.client() as client:
        job = client.submit(
            test_clip, method="testcount", settings={"gate": str(tmp_path / "never"), "salt": "cancel-running"}
        )
        deadline = time.monotonic() + 60
        while client.status(job).stage != "gate":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        beats = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2.0:  # the server sends progress at least every 0.4 s while working
            msg = client.recv(0.2)
            beats += isinstance(msg, m.Progress) and msg.job == job and msg.state == "running"
        assert beats >= 3
        rid = client.cancel(job)
        final, _ = _finals_and_progress(client, job)
        assert isinstance(final, m.CancelledMessage) and final.re == rid
        assert client.status(job).state == "cancelled"
        with pytest.raises(VidrigError, match="cancelled") as info:
            client.result(job)
        assert info.value.code is ErrorCode.CANCELLED
        assert client.recv(0.5) is None, "nothing may follow a job's final message"


def test_cancel_a_queued_job(server: ServerProcess, test_clip: Path, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    with server.client() as client:
        first = client.submit(test_clip, method="testcount", settings={"gate": str(gate), "salt": "q1"})
        second = client.submit(test_clip, method="testcount", settings={"salt": "q2"})
        assert client.status(second).state == "queued"
        rid = client.cancel(second)
        final, _ = _finals_and_progress(client, second)
        assert isinstance(final, m.CancelledMessage) and final.re == rid
        gate.touch()
        final, _ = _finals_and_progress(client, first)
        assert isinstance(final, m.ResultMessage)


@pytest.mark.parametrize(
    ("submit", "code", "match"),
    [
        ({"method": "testcount"}, ErrorCode.NOT_FOUND, "video file not found"),
        ({"method": "no-such"}, ErrorCode.UNKNOWN_PRESET, "unknown method 'no-such'"),
        ({"preset": "no-such"}, ErrorCode.UNKNOWN_PRESET, "unknown preset 'no-such'"),
        ({"method": "testcount", "settings": {"dleay": 1}}, ErrorCode.BAD_REQUEST, "'dleay'"),
        ({"method": "testcount", "settings": {"delay": "x"}}, ErrorCode.BAD_REQUEST, "'delay'"),
        ({"preset": "counting", "method": "other"}, ErrorCode.BAD_REQUEST, "uses method 'testcount'"),
    ],
)
def test_submit_errors(server: ServerProcess, test_clip: Path, submit: dict, code: ErrorCode, match: str) -> None:
    video = str(test_clip.with_name("missing.mp4")) if code is ErrorCode.NOT_FOUND else str(test_clip)
    with server.client() as client:
        with pytest.raises(VidrigError, match=match) as info:
            client.submit(video, **submit)
        assert info.value.code is code
        assert client.ping() < 5


def test_request_errors(server: ServerProcess, test_clip: Path) -> None:
    with server.client() as client:
        for request, code, match in [
            (m.StatusRequest(job="abcdef"), ErrorCode.NOT_FOUND, "no job 'abcdef'"),
            (m.FetchResult(job="../../etc"), ErrorCode.NOT_FOUND, "no job"),
            (m.Cancel(job="0" * 65), ErrorCode.NOT_FOUND, "no job"),
            (m.Submit(video="relative/clip.mp4", method="testcount"), ErrorCode.BAD_REQUEST, "absolute"),
            (m.Submit(video=str(test_clip.parent), method="testcount"), ErrorCode.BAD_REQUEST, "regular file"),
            (m.Hello(versions=[2, 3]), ErrorCode.VERSION, r"\[2, 3\]"),
        ]:
            with pytest.raises(VidrigError, match=match) as info:
                client.request(request)
            assert info.value.code is code, request
        assert client.hello().server


CHILD = """
import json, sys
from protocol.client import Client
with Client(sys.argv[1], timeout=30) as c:
    welcome = c.hello()
    job = c.submit(sys.argv[2], method="testcount", frames=(0, 5), settings={"salt": "child"})
    final = c.wait(job, 120)
    print(json.dumps({"device": welcome.device, "job": job, "type": final.TYPE,
                      "frames": final.result.meta.frame_indices, "status": c.status(job).state}))
"""


def test_a_client_in_another_process(server: ServerProcess, test_clip: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, server.endpoint, str(test_clip)],
        cwd=REPO,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    report = json.loads(out.stdout)
    assert report["type"] == "result" and report["frames"] == [0, 1, 2, 3, 4] and report["status"] == "done"
    with server.client() as client:
        assert client.status(report["job"]).state == "done"


def test_worker_death_fails_the_job_and_the_server_recovers(server: ServerProcess, test_clip: Path) -> None:
    with server.client() as client:
        job = client.submit(test_clip, method="testcount", settings={"exit_code": 3, "salt": "die"})
        final, _ = _finals_and_progress(client, job)
        assert isinstance(final, m.Error) and final.code == "E_INTERNAL"
        assert "worker died (exit code 3)" in final.message and final.details["exit_code"] == 3
        assert client.status(job).state == "failed"
        job = client.submit(test_clip, method="testcount", frames=(0, CLIP_FRAMES), settings={"salt": "after"})
        final, _ = _finals_and_progress(client, job)
        assert isinstance(final, m.ResultMessage) and final.result is not None
        _check_count_result(final.result, 0, CLIP_FRAMES)


def test_a_job_ignoring_cancel_is_stopped_by_killing_the_worker(server: ServerProcess, test_clip: Path) -> None:
    with server.client() as client:
        job = client.submit(
            test_clip, method="testcount", settings={"ignore_cancel": True, "delay": 1.0, "salt": "stubborn"}
        )
        deadline = time.monotonic() + 60
        while client.status(job).stage != "count":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        rid = client.cancel(job)
        final, _ = _finals_and_progress(client, job)
        assert isinstance(final, m.CancelledMessage) and final.re == rid
        job = client.submit(test_clip, method="testcount", frames=(0, 2), settings={"salt": "after-kill"})
        final, _ = _finals_and_progress(client, job)
        assert isinstance(final, m.ResultMessage)


def test_waiting_on_one_job_keeps_the_other_jobs_messages(server: ServerProcess, test_clip: Path) -> None:
    """Client.wait(second) must not swallow the first job's result, which arrives while it waits."""
    with server.client() as client:
        first = client.submit(test_clip, method="testcount", frames=(0, 3), settings={"salt": "w1"})
        second = client.submit(test_clip, method="testcount", frames=(0, 4), settings={"salt": "w2"})
        final = client.wait(second, 120)
        assert isinstance(final, m.ResultMessage) and final.result is not None
        assert final.result.meta.frame_indices == [0, 1, 2, 3]
        final = client.wait(first, 5)
        assert isinstance(final, m.ResultMessage) and final.result is not None
        assert final.result.meta.frame_indices == [0, 1, 2]
