"""Driving the add-on headless: run its timer callback by hand, point it at a backend, make a test clip."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import bpy

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
