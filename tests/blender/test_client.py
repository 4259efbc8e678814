"""The add-on's backend link in real Blender against a scripted ROUTER: connect, submit, progress, import, cancel,
plain-words errors, and an unregister that leaves no thread, socket or timer behind."""

from __future__ import annotations

import threading
import time

import addon_utils
import bpy
import pytest
import synthetic
from driving import point_at, pump
from fake_backend import FakeBackend


@pytest.fixture
def backend():
    """A fake backend serving the synthetic result."""
    server = FakeBackend(synthetic.make_result(frames=4))
    yield server
    server.stop()


def _video(tmp_path) -> str:
    """A video path that exists (the fake backend never reads it)."""
    path = tmp_path / "walk.mp4"
    path.write_bytes(b"\x00" * 16)
    return str(path)


def test_connect_lists_presets(clean, backend):
    """Connect fills the preset menu from the welcome and shows the server in the status line."""
    point_at(clean, backend.endpoint)
    assert bpy.ops.vidrig.connect() == {"FINISHED"}
    pump(clean, lambda: clean.session.SESSION.connected)
    settings = bpy.context.scene.vidrig
    assert settings.status.startswith("connected to fake")
    settings.preset = "fast"
    assert settings.preset == "fast"


def test_reconstruct_reports_progress_and_imports(clean, backend, tmp_path):
    """Reconstruct submits the video, preset, overrides and frame range; progress moves; the result is imported."""
    point_at(clean, backend.endpoint)
    settings = bpy.context.scene.vidrig
    bpy.ops.vidrig.connect()
    pump(clean, lambda: clean.session.SESSION.connected)
    settings.video = _video(tmp_path)
    settings.preset = "fast"
    item = settings.overrides.add()
    item.key, item.value = "smooth", "0.5"
    settings.use_frame_range, settings.frame_first, settings.frame_last = True, 3, 40
    assert bpy.ops.vidrig.reconstruct() == {"FINISHED"}
    seen = pump(clean, lambda: settings.takes[-1].state == "imported")
    take = settings.takes[-1]
    assert take.name == "walk_fast_01" and take.job == "job0001"
    assert take.armature is not None and take.armature.type == "ARMATURE"
    sub = backend.submits[0]
    assert (sub.preset, sub.settings, sub.frames) == ("fast", {"smooth": 0.5}, [3, 41])
    assert {state for state, _ in seen} >= {"imported"}
    assert all(0.0 <= fraction <= 1.0 for _, fraction in seen)


def test_cancel_stops_a_running_job(clean, backend, tmp_path):
    """Cancel during a job: the backend confirms and the take shows cancelled."""
    point_at(clean, backend.endpoint)
    settings = bpy.context.scene.vidrig
    settings.video = _video(tmp_path)
    item = settings.overrides.add()
    item.key, item.value = "hold", "true"
    bpy.ops.vidrig.reconstruct()
    pump(clean, lambda: settings.takes[-1].state == "running")
    take = settings.takes[-1]
    assert (take.stage, round(take.fraction, 2), round(take.eta)) == ("fit", 0.5, 12)
    assert clean.ui.progress_text(take) == "fit 50% (ETA 0:12)"
    assert bpy.ops.vidrig.cancel() == {"FINISHED"}
    pump(clean, lambda: settings.takes[-1].state == "cancelled")


def test_backend_killed_during_job_gives_clear_error(clean, backend, tmp_path):
    """A backend that dies mid-job fails the take with a plain sentence, not a traceback."""
    point_at(clean, backend.endpoint, timeout=1.0)
    settings = bpy.context.scene.vidrig
    settings.video = _video(tmp_path)
    item = settings.overrides.add()
    item.key, item.value = "hold", "true"
    bpy.ops.vidrig.reconstruct()
    pump(clean, lambda: settings.takes[-1].state == "running")
    backend.stop()
    pump(clean, lambda: settings.takes[-1].state == "failed", timeout=15.0)
    assert settings.error.startswith("The backend stopped answering during the job")
    assert "Traceback" not in settings.error


def test_backend_not_running(clean, tmp_path):
    """Nothing listening: the panel says the backend is not running."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    point_at(clean, f"tcp://127.0.0.1:{port}", timeout=0.5)
    bpy.ops.vidrig.connect()
    settings = bpy.context.scene.vidrig
    pump(clean, lambda: bool(settings.error))
    assert settings.error.startswith("The VidRig backend is not running or not reachable")
    assert not clean.session.SESSION.connected


def test_error_codes_become_sentences(clean, backend, tmp_path):
    """An E_NO_PERSON error from the backend fails the take with its sentence; every code has one."""
    point_at(clean, backend.endpoint)
    settings = bpy.context.scene.vidrig
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"\x00")
    settings.video = str(path)
    bpy.ops.vidrig.reconstruct()
    pump(clean, lambda: settings.takes[-1].state == "failed")
    assert settings.error.startswith("No person was found in the video.")
    codes = [c.value for c in clean.protocol.errors.ErrorCode]
    assert all(c in clean.errors.SENTENCES for c in codes)


def test_missing_video_is_reported_before_submitting(clean, tmp_path):
    """A video path that does not exist never reaches the backend."""
    settings = bpy.context.scene.vidrig
    settings.video = str(tmp_path / "nope.mp4")
    with pytest.raises(RuntimeError):
        bpy.ops.vidrig.reconstruct()
    assert settings.error.startswith("The video file does not exist.")
    assert len(settings.takes) == 0 and clean.session.SESSION.link is None


def test_unregister_leaves_no_thread_socket_or_timer(clean, backend, addon):
    """Disabling the add-on joins the link thread, closes its socket and removes the timer."""
    point_at(clean, backend.endpoint)
    bpy.ops.vidrig.connect()
    pump(clean, lambda: clean.session.SESSION.connected)
    live = clean.session.SESSION.link
    drain = clean.session.drain_events
    assert live.alive and bpy.app.timers.is_registered(drain)
    addon_utils.disable(addon)
    assert not live.alive and live.socket_closed
    assert not bpy.app.timers.is_registered(drain)
    assert not [t for t in threading.enumerate() if t.name == "vidrig-backend-link"]
    addon_utils.enable(addon, default_set=True)


def test_drain_ends_its_timer_when_the_link_stops(clean, backend):
    """After the link thread stops, the timer callback returns None (Blender then drops the timer)."""
    point_at(clean, backend.endpoint)
    bpy.ops.vidrig.connect()
    pump(clean, lambda: clean.session.SESSION.connected)
    live = clean.session.SESSION.link
    live.stop()
    # Each call drains within a small time budget, so on a loaded machine the Stopped event may need a few ticks.
    ticks = [clean.session.drain_events() for _ in range(20)]
    assert None in ticks, ticks
    assert all(t is None for t in ticks[ticks.index(None):])  # once ended, it stays ended
    assert clean.session.SESSION.link is None


def test_launched_backend_logs_and_stops(clean):
    """Start Backend runs the launch command with its output captured to the log; Stop Backend ends it."""
    import sys

    prefs = clean.props.preferences()
    prefs.launch_command = f"{sys.executable} -u -c \"print('backend says hello'); import time; time.sleep(60)\""
    prefs.endpoint = "tcp://127.0.0.1:9"  # nothing there: the connect that follows fails quietly in the background
    prefs.timeout = 0.5
    assert bpy.ops.vidrig.start_backend() == {"FINISHED"}
    proc = clean.session.SESSION.process
    assert clean.session.backend_running()
    deadline = time.monotonic() + 10
    while "backend says hello" not in proc.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "backend says hello" in proc.log_path.read_text()
    assert bpy.ops.vidrig.stop_backend() == {"FINISHED"}
    assert proc.popen.poll() is not None and not clean.session.backend_running()


def test_version_mismatch_is_explained(clean):
    """A backend announcing another protocol version is refused with a plain sentence."""
    server = FakeBackend(synthetic.make_result(frames=2), version=99)
    try:
        point_at(clean, server.endpoint)
        bpy.ops.vidrig.connect()
        settings = bpy.context.scene.vidrig
        pump(clean, lambda: bool(settings.error))
        assert settings.error.startswith("The add-on and the backend are different VidRig versions")
        assert not clean.session.SESSION.connected
    finally:
        server.stop()


def test_stop_does_not_wait_for_a_pending_request(clean):
    """Disconnecting while a hello waits (30 s reply timeout) on a silent endpoint ends the thread at once."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    point_at(clean, f"tcp://127.0.0.1:{port}", timeout=30.0)
    bpy.ops.vidrig.connect()
    live = clean.session.SESSION.link
    assert live.stop(timeout=3.0)
    assert live.socket_closed


def test_drain_keeps_event_order_per_job(clean):
    """Progress queued before a job's end is applied before it, and never turns an ended take back to running."""
    settings = bpy.context.scene.vidrig
    take = settings.takes.add()
    take.name, take.job, take.state = "t", "job1", "running"
    events = clean.link.BackendLink("tcp://127.0.0.1:9")  # never started: only its queue is used
    clean.session.SESSION.link = events
    try:
        events.events.put(clean.link.JobProgress("job1", "running", "count", 0.2, "frame 1", None))
        events.events.put(clean.link.JobCancelled("job1"))
        events.events.put(clean.link.JobProgress("job1", "running", "count", 0.3, "frame 2", None))
        clean.session.drain_events()
        assert take.state == "cancelled" and take.message == "cancelled"
    finally:
        clean.session.SESSION.link = None
