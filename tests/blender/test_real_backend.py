"""The add-on against a real `vidrig serve` subprocess (run by the main .venv, with the test-only `testcount` method):
connect, submit, progress, the result reaching Blender, cancel, and the backend killed mid-job.

Needs the repository's .venv (the backend's interpreter), made by scripts/setup.sh.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import bpy
import pytest
from driving import point_at, pump, serve, write_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-frame test clip, written by the backend's interpreter (it has PyAV)."""
    return write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """A `vidrig serve` on a free port with a `counting` preset; yields endpoint, process and log path."""
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "counting.toml").write_text(
        'method = "testcount"\ndescription = "test preset"\n[settings]\ndelay = 0.001\n'
    )
    log_path = tmp_path / "server.log"
    with serve(tmp_path / "cache", log_path, presets) as (endpoint, proc):
        yield endpoint, proc, log_path


def _submit(package: object, clip: Path, **overrides: object) -> None:
    """Connect (the preset menu comes from the welcome), fill the panel for the counting preset with setting
    overrides and press Reconstruct."""
    settings = bpy.context.scene.vidrig
    bpy.ops.vidrig.connect()
    pump(package, lambda: package.session.SESSION.connected, timeout=30)
    settings.video = str(clip)
    settings.preset = "counting"
    settings.overrides.clear()
    for key, value in overrides.items():
        item = settings.overrides.add()
        item.key, item.value = key, json.dumps(value)
    assert bpy.ops.vidrig.reconstruct() == {"FINISHED"}


def test_job_runs_and_its_result_reaches_blender(clean, server, clip, tmp_path):
    """Connect lists the preset; the job shows its stage and progress while it waits at a gate; once the gate
    opens its result is delivered to the importer."""
    endpoint, _, _ = server
    point_at(clean, endpoint, timeout=5.0)
    settings = bpy.context.scene.vidrig
    gate = tmp_path / "gate"
    _submit(clean, clip, gate=str(gate))
    # the stage opens with "starting"; its own message follows within the 20 Hz progress limit
    pump(clean, lambda: settings.takes[-1].state == "running" and settings.takes[-1].stage == "gate"
         and settings.takes[-1].message.startswith("waiting for"), timeout=120)
    take = settings.takes[-1]
    assert take.job and 0.0 < take.fraction < 1.0
    gate.write_text("open")
    pump(clean, lambda: settings.takes[-1].state in ("imported", "failed"), timeout=120)
    # The test method returns a body motion without rest data: the add-on says so in plain words.
    if take.state == "failed":
        assert "no rest data" in take.message
    else:
        assert take.armature is not None


def test_cancel_a_real_job(clean, server, clip):
    """Cancel while the backend is counting frames slowly: the take ends cancelled."""
    endpoint, _, _ = server
    point_at(clean, endpoint, timeout=5.0)
    settings = bpy.context.scene.vidrig
    _submit(clean, clip, delay=0.5)
    pump(clean, lambda: settings.takes[-1].state == "running" and settings.takes[-1].fraction > 0, timeout=120)
    assert bpy.ops.vidrig.cancel() == {"FINISHED"}
    pump(clean, lambda: settings.takes[-1].state == "cancelled", timeout=60)


def test_backend_killed_mid_job(clean, server, clip):
    """SIGKILL the backend during a job: the take fails with a plain sentence."""
    endpoint, proc, _ = server
    point_at(clean, endpoint, timeout=2.0)
    settings = bpy.context.scene.vidrig
    _submit(clean, clip, delay=0.5)
    pump(clean, lambda: settings.takes[-1].state == "running" and settings.takes[-1].fraction > 0, timeout=120)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    pump(clean, lambda: settings.takes[-1].state == "failed", timeout=30)
    assert settings.error.startswith("The backend stopped answering during the job")
