"""Driving the add-on headless: run its timer callback by hand, point it at a backend, make a test clip."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import bpy

from protocol.client import BackendUnavailable, Client

REPO = Path(__file__).resolve().parents[2]
BACKEND_PYTHON = REPO / ".venv" / "bin" / "python"  # the backend's interpreter (has PyAV and torch)


def pump(package: object, until: Callable[[], bool], timeout: float = 10.0) -> list[tuple[str, float]]:
    """Run the add-on's timer callback (Blender's event loop does not run headless) until `until()` holds.

    Returns the (state, fraction) of the newest take seen after each call.
    """
    seen: list[tuple[str, float]] = []
    deadline = time.monotonic() + timeout
    settings = bpy.context.scene.vidrig
    while time.monotonic() < deadline:
        package.session.drain_events()
        if len(settings.takes):
            take = settings.takes[-1]
            seen.append((take.state, take.fraction))
        if until():
            return seen
        time.sleep(0.02)
    last = settings.takes[-1].message if len(settings.takes) else ""
    raise AssertionError(
        f"condition not met within {timeout} s; last states {seen[-3:]}, take message {last!r}, "
        f"error {settings.error!r}"
    )


def point_at(package: object, endpoint: str, timeout: float = 1.0) -> None:
    """Point the add-on at `endpoint` with a short reply timeout."""
    prefs = package.props.preferences()
    prefs.endpoint = endpoint
    prefs.timeout = timeout


def backend_env(presets: Path | None = None) -> dict[str, str]:
    """Environment for the backend's interpreter: the repo importable, the test method loaded, one thread."""
    env = dict(os.environ)
    env.pop("BLENDER_USER_RESOURCES", None)
    env.update(PYTHONPATH=str(REPO), VIDRIG_PLUGINS="tests.support.methods", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    if presets is not None:
        env["VIDRIG_PRESETS"] = str(presets)
    return env


def write_clip(path: Path) -> Path:
    """A 24-frame 64x48 test clip, written by the backend's interpreter (Blender's has no PyAV)."""
    code = (
        "from pathlib import Path; from tests.support.server import write_test_clip; "
        f"write_test_clip(Path({str(path)!r}))"
    )
    subprocess.run([str(BACKEND_PYTHON), "-c", code], cwd=REPO, env=backend_env(), check=True, timeout=120)
    return path


def free_port() -> int:
    """A loopback TCP port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(endpoint: str, proc: subprocess.Popen, log_path: Path, wait: float = 120.0) -> None:
    """Poll hello until the server's worker is up; raise with the server's log if it exits or never answers."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vidrig serve exited with {proc.returncode}:\n{log_path.read_text()}")
        with Client(endpoint, timeout=1.0) as client:
            try:
                if client.hello().device != "starting":
                    return
            except BackendUnavailable:
                continue
        time.sleep(0.2)
    raise RuntimeError(f"vidrig serve did not answer within {wait:.0f} s:\n{log_path.read_text()}")


@contextmanager
def serve(cache: Path, log_path: Path, presets: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """A real `vidrig serve` (backend interpreter) on a free loopback port, ready to take jobs; yields endpoint and
    process, and stops it (SIGTERM, then SIGKILL) on exit."""
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(BACKEND_PYTHON), "-m", "backend.cli", "serve", "--bind", endpoint, "--cache", str(cache)],
            cwd=REPO,
            env=backend_env(presets),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(endpoint, proc, log_path)
        yield endpoint, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
