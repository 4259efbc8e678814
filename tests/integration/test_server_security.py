"""Bind policy and CurveZMQ: no keys, no network bind; with keys only the authorised client gets service."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from protocol import messages as m
from protocol.client import BackendUnavailable, Client
from tests.support.server import REPO, ServerProcess, free_port, server_env

pytestmark = pytest.mark.slow


def _vidrig(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=REPO,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_network_bind_without_keys_is_refused(tmp_path: Path) -> None:
    out = _vidrig("serve", "--bind", f"tcp://0.0.0.0:{free_port()}", "--cache", str(tmp_path / "state"))
    assert out.returncode != 0
    assert "refusing to bind" in out.stderr and "vidrig keys" in out.stderr and "--keys" in out.stderr


def test_curve_keys_admit_the_right_client_only(tmp_path: Path, test_clip: Path) -> None:
    good, other = tmp_path / "keys", tmp_path / "other"
    for folder in (good, other):
        made = _vidrig("keys", str(folder))
        assert made.returncode == 0, made.stderr
        assert (folder / "client.key_secret").is_file() and (folder / "authorized_clients" / "client.key").is_file()
    mixed = tmp_path / "mixed"  # the right server key, but a client key the server never authorised
    mixed.mkdir()
    shutil.copy(good / "server.key", mixed / "server.key")
    shutil.copy(other / "client.key_secret", mixed / "client.key_secret")

    server = ServerProcess(tmp_path / "state", bind_host="0.0.0.0", args=["--keys", str(good)])
    server.start(keys_dir=good)
    try:
        with Client(server.endpoint, keys_dir=good, timeout=30) as right:
            assert right.hello().server
            for keys in (other, mixed, None):
                with Client(server.endpoint, keys_dir=keys, timeout=1.5) as wrong:
                    with pytest.raises(BackendUnavailable, match="keys match"):
                        wrong.hello()
                    with pytest.raises(BackendUnavailable):
                        wrong.submit(test_clip, method="testcount")
                assert right.ping() < 5, "the server keeps serving the right client"
            job = right.submit(test_clip, method="testcount", frames=(0, 3), settings={"salt": "curve"})
            final = right.wait(job, 120)
            assert isinstance(final, m.ResultMessage) and final.result is not None
            assert final.result.meta.frame_indices == [0, 1, 2]
        jobs = list((tmp_path / "state" / "jobs").glob("*/record.json"))
        assert len(jobs) == 1, "no job from an unauthorised client was ever accepted"
    finally:
        assert server.stop() == 0


def test_a_busy_port_is_reported_in_plain_words(server: ServerProcess, tmp_path: Path) -> None:
    out = _vidrig("serve", "--bind", server.endpoint, "--cache", str(tmp_path / "state"))
    assert out.returncode != 0
    assert f"cannot listen on {server.endpoint}" in out.stderr and "Traceback" not in out.stderr
