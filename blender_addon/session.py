"""Main-thread state of the add-on: the backend link, the timer that drains its events, and a local backend process.

Everything here runs on Blender's main thread. The timer callback spends at most `DRAIN_BUDGET_S` per
call, keeps only the newest progress per job, and is unregistered on every exit path.
"""

from __future__ import annotations

import os
import queue
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import bpy

from . import errors, importer, link, props
from .protocol.errors import VidrigError

DRAIN_INTERVAL_S = 0.1
DRAIN_BUDGET_S = 0.004
# Take states that later progress reports must not undo ("done" waits for the result, which makes it "imported").
FINAL_STATES = frozenset({"done", "imported", "failed", "cancelled"})


@dataclass
class BackendProcess:
    """A backend the add-on started; its output goes to `log_path`."""

    popen: subprocess.Popen
    log_path: Path
    log_file: IO[bytes]

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the process (kill it if it does not exit in time) and close its log."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        self.log_file.close()


@dataclass
class Session:
    """What the add-on holds between operator calls (not saved in the .blend file)."""

    link: link.BackendLink | None = None
    connected: bool = False
    process: BackendProcess | None = None
    welcome_presets: list[dict] = field(default_factory=list)
    longest_drain_s: float = 0.0


SESSION = Session()


def log_path() -> Path:
    """Where a launched backend's output is written (the extension's user folder, else the temp folder)."""
    try:
        folder = Path(bpy.utils.extension_path_user(props.ADDON_ID, create=True))
    except (ValueError, AttributeError):
        folder = Path(tempfile.gettempdir()) / "vidrig"
        folder.mkdir(parents=True, exist_ok=True)
    return folder / "backend.log"


def start_backend(command: str) -> BackendProcess:
    """Launch the local backend with `command`, capturing stdout and stderr to the log file."""
    stop_backend()
    if not command.strip():
        raise ValueError("no launch command is set in the add-on preferences")
    path = log_path()
    log_file = path.open("ab")
    log_file.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {command}\n".encode())
    log_file.flush()
    try:
        popen = subprocess.Popen(
            shlex.split(command, posix=os.name != "nt"),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    except OSError:
        log_file.close()
        raise
    SESSION.process = BackendProcess(popen, path, log_file)
    return SESSION.process


def stop_backend() -> None:
    """Stop the backend the add-on launched, if any."""
    if SESSION.process is not None:
        SESSION.process.stop()
        SESSION.process = None


def backend_running() -> bool:
    """Whether a backend launched by the add-on is still running."""
    return SESSION.process is not None and SESSION.process.popen.poll() is None


def ensure_link(endpoint: str, keys_dir: str, timeout: float) -> link.BackendLink:
    """The running link to `endpoint`, starting a new one (and the drain timer) when needed."""
    current = SESSION.link
    if current is not None and current.alive and current.endpoint == endpoint:
        return current
    disconnect()
    new = link.BackendLink(endpoint, keys_dir or None, timeout)
    new.start()
    SESSION.link = new
    if not bpy.app.timers.is_registered(drain_events):
        bpy.app.timers.register(drain_events, first_interval=DRAIN_INTERVAL_S, persistent=True)
    return new


def disconnect() -> None:
    """Stop the link thread (joined, socket closed) and the drain timer."""
    if SESSION.link is not None:
        SESSION.link.stop()
        SESSION.link = None
    SESSION.connected = False
    if bpy.app.timers.is_registered(drain_events):
        bpy.app.timers.unregister(drain_events)


def _settings() -> props.VidrigSceneSettings | None:
    """The current scene's VidRig settings, when a scene is available."""
    scene = getattr(bpy.context, "scene", None)
    return getattr(scene, "vidrig", None)


def _take_for(settings: props.VidrigSceneSettings, job: str | None, request: str | None) -> props.VidrigTake | None:
    """The take a job id (or a submit's request token, which is the take name) belongs to."""
    for take in settings.takes:
        if (job and take.job == job) or (request and not take.job and take.name == request):
            return take
    return None


def drain_events() -> float | None:
    """Timer callback: apply queued link events to the scene within a small time budget; None ends the timer."""
    started = time.perf_counter()
    current = SESSION.link
    if current is None:
        return None
    settings = _settings()
    latest_progress: dict[str, link.JobProgress] = {}
    stopped = False
    try:
        while time.perf_counter() - started < DRAIN_BUDGET_S:
            try:
                event = current.events.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, link.JobProgress):
                latest_progress[event.job] = event
                continue
            if isinstance(event, link.Stopped):
                stopped = True
                continue
            if settings is not None:
                # Keep order per job: progress queued before this event is applied before it.
                earlier = latest_progress.pop(getattr(event, "job", None) or "", None)
                if earlier is not None:
                    apply_event(settings, earlier)
                apply_event(settings, event)
        if settings is not None:
            for event in latest_progress.values():
                apply_event(settings, event)
        _redraw()
    finally:
        SESSION.longest_drain_s = max(SESSION.longest_drain_s, time.perf_counter() - started)
    if stopped and current.events.empty():
        SESSION.link = None
        SESSION.connected = False
        return None
    return DRAIN_INTERVAL_S


def apply_event(settings: props.VidrigSceneSettings, event: link.Event) -> None:
    """Update the panel's state (takes, status, error) for one event; import results."""
    if isinstance(event, link.Connected):
        SESSION.connected = True
        SESSION.welcome_presets = list(event.welcome.presets)
        props.set_presets(SESSION.welcome_presets)
        settings.status = f"connected to {event.welcome.server or 'backend'} ({event.welcome.device})"
        settings.error = ""
    elif isinstance(event, link.JobAccepted):
        take = _take_for(settings, None, event.request)
        if take is not None:
            take.job = event.job
            take.state = "queued"
            take.message = f"{event.position} job(s) ahead" if event.position else "queued"
    elif isinstance(event, link.JobProgress):
        take = _take_for(settings, event.job, None)
        if take is not None and take.state not in FINAL_STATES:
            take.state = event.state
            take.stage = event.stage
            take.fraction = min(max(event.fraction, 0.0), 1.0)
            take.eta = -1.0 if event.eta is None else float(event.eta)
            take.message = event.message
    elif isinstance(event, link.JobResult):
        take = _take_for(settings, event.job, None)
        name = take.name if take is not None else event.job[:8]
        video = bpy.path.abspath(take.video) if take is not None else ""
        try:
            with bpy.context.temp_override(**_window_context()):
                imported = importer.import_result(event.result, name, video)
        except (VidrigError, ValueError, RuntimeError) as exc:
            sentence = f"The result of take {name!r} could not be imported: {getattr(exc, 'message', exc)}"
            settings.error = sentence
            if take is not None:
                take.state = "failed"
                take.message = sentence
            return
        if take is not None:
            take.state = "imported"
            take.fraction = 1.0
            take.eta = -1.0
            take.message = f"frames {imported.frame_start}-{imported.frame_end}"
            if imported.armature:
                take.armature = bpy.data.objects[imported.armature]
    elif isinstance(event, link.JobCancelled):
        take = _take_for(settings, event.job, None)
        if take is not None:
            take.state = "cancelled"
            take.message = "cancelled"
    elif isinstance(event, link.LinkError):
        sentence = errors.explain(event.code, event.message)
        take = _take_for(settings, event.job, event.request)
        if take is not None:
            take.state = "cancelled" if event.code == "E_CANCELLED" else "failed"
            take.message = sentence
        if event.code in (link.BACKEND_DOWN, "E_VERSION", "E_AUTH"):
            SESSION.connected = False
            settings.status = "not connected"
        settings.error = sentence


def job_running(settings: props.VidrigSceneSettings) -> props.VidrigTake | None:
    """The newest take whose job has not ended."""
    for take in reversed(settings.takes):
        if take.state in ("submitting", "queued", "running", "done"):
            return take
    return None


def _window_context() -> dict[str, object]:
    """A window (and 3D viewport, when shown) for operators run from a timer, which has none; empty headless."""
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None or not wm.windows:
        return {}
    window = wm.windows[0]
    out: dict[str, object] = {"window": window, "screen": window.screen}
    area = next((a for a in window.screen.areas if a.type == "VIEW_3D"), None)
    if area is not None:
        region = next((r for r in area.regions if r.type == "WINDOW"), None)
        out.update(area=area, region=region)
    return out


def _redraw() -> None:
    """Ask 3D viewport sidebars to redraw so the progress bar moves."""
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def shutdown() -> None:
    """Leave nothing running: link thread joined, socket closed, timer removed, launched backend stopped."""
    disconnect()
    stop_backend()


def at_exit() -> None:
    """When Python shuts down (Blender quitting): stop the link thread and a launched backend, touching no bpy."""
    if SESSION.link is not None:
        SESSION.link.stop()
    if SESSION.process is not None:
        SESSION.process.stop()
