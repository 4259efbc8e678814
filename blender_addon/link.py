"""The background thread that owns the ZeroMQ client; it talks to Blender's main thread only through queues.

The main thread puts commands on `BackendLink.commands` (never blocking) and drains `BackendLink.events`
from a `bpy.app.timers` callback. No bpy here: this module runs on the worker thread.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import zmq

from .protocol import messages as m
from .protocol.client import Client
from .protocol.errors import ErrorCode, VidrigError
from .protocol.result import Result

POLL_SECONDS = 0.05
HEARTBEAT_SECONDS = 3.0  # silence on a running job after which the link asks for its status
FETCH_AFTER_DONE_SECONDS = 1.0  # wait for a pushed result this long before asking for it


@dataclass
class Connected:
    """The handshake succeeded."""

    welcome: m.Welcome


@dataclass
class LinkError:
    """Something failed; `code` is an E_* code or one of the link's own (BACKEND_DOWN, BACKEND_LOST)."""

    code: str
    message: str
    job: str | None = None
    request: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobAccepted:
    """A submit was queued as `job`; `request` is the token the main thread gave the submit."""

    job: str
    request: str
    position: int


@dataclass
class JobProgress:
    """A progress report for a job."""

    job: str
    state: str
    stage: str
    fraction: float
    message: str
    eta: float | None


@dataclass
class JobResult:
    """A finished job's result, decoded on the worker thread."""

    job: str
    result: Result


@dataclass
class JobCancelled:
    """A job stopped after a cancel."""

    job: str


@dataclass
class Stopped:
    """The worker thread has closed its socket and is about to exit."""


Event = Connected | LinkError | JobAccepted | JobProgress | JobResult | JobCancelled | Stopped

BACKEND_DOWN = "BACKEND_DOWN"
BACKEND_LOST = "BACKEND_LOST"


@dataclass
class SubmitCommand:
    """Ask the worker to submit a job; `request` is echoed in JobAccepted or LinkError."""

    request: str
    video: str
    preset: str | None
    settings: dict[str, Any]
    frames: tuple[int, int] | None
    models_dir: str | None


@dataclass
class CancelCommand:
    """Ask the worker to cancel a job."""

    job: str


@dataclass
class HelloCommand:
    """Ask the worker to (re)do the handshake."""


@dataclass
class StopCommand:
    """Ask the worker to close its socket and exit."""


Command = SubmitCommand | CancelCommand | HelloCommand | StopCommand


class BackendLink:
    """One worker thread with one DEALER socket to the backend, fed by `commands`, reporting on `events`."""

    def __init__(self, endpoint: str, keys_dir: str | None = None, timeout: float = 3.0) -> None:
        self.endpoint = endpoint
        self.keys_dir = keys_dir or None
        self.timeout = timeout
        self.commands: queue.Queue[Command] = queue.Queue()
        self.events: queue.Queue[Event] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="vidrig-backend-link", daemon=True)
        self._active: dict[str, float] = {}  # job -> time of the last message about it
        self._done_at: dict[str, float] = {}  # job -> when it reported done without a result yet
        self._status_asked: dict[str, float] = {}
        self._requests: dict[str, tuple[Command, float]] = {}  # request id -> (hello/submit, answer deadline)
        self.socket_closed = False

    def start(self) -> None:
        """Start the worker thread (it connects and says hello)."""
        self._thread.start()
        self.commands.put(HelloCommand())

    @property
    def alive(self) -> bool:
        """Whether the worker thread is running."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> bool:
        """Ask the worker to exit and join it; returns True when the thread is gone."""
        if self._thread.is_alive():
            self.commands.put(StopCommand())
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # ---- worker thread ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        """Thread body: own the client, send commands, forward server messages as events; never blocks longer
        than one poll interval, so `stop` returns promptly."""
        try:
            client = Client(self.endpoint, keys_dir=self.keys_dir, timeout=self.timeout, name="vidrig-blender")
        except (VidrigError, zmq.ZMQError, OSError, ValueError) as exc:
            self.events.put(LinkError(BACKEND_DOWN, f"cannot open a connection to {self.endpoint}: {exc}"))
            self.events.put(Stopped())
            return
        try:
            while True:
                if not self._run_commands(client):
                    return
                msg = self._receive(client)
                if msg is not None:
                    self._dispatch(msg)
                self._watch_requests()
                self._watch_jobs(client)
        except Exception as exc:  # the thread's last resort: report instead of dying silently
            self.events.put(LinkError(ErrorCode.INTERNAL.value, f"the add-on's connection thread failed: {exc!r}"))
        finally:
            client.close()
            self.socket_closed = True
            self.events.put(Stopped())

    def _receive(self, client: Client) -> m.Message | None:
        """One server message within the poll interval; malformed ones become error events."""
        try:
            return client.recv(POLL_SECONDS)
        except VidrigError as exc:
            self.events.put(LinkError(exc.code.value, exc.message, details=exc.details))
            return None

    def _run_commands(self, client: Client) -> bool:
        """Send queued commands (replies are matched later by request id); False when told to stop."""
        while True:
            try:
                cmd = self.commands.get_nowait()
            except queue.Empty:
                return True
            if isinstance(cmd, StopCommand):
                return False
            if isinstance(cmd, HelloCommand):
                rid = client.send(m.Hello(client=client.name))
            elif isinstance(cmd, SubmitCommand):
                rid = client.send(
                    m.Submit(
                        video=cmd.video,
                        preset=cmd.preset,
                        settings=cmd.settings,
                        frames=list(cmd.frames) if cmd.frames else None,
                        models_dir=cmd.models_dir,
                    )
                )
            else:
                client.send(m.Cancel(job=cmd.job))
                continue
            self._requests[rid] = (cmd, time.monotonic() + self.timeout)

    def _watch_requests(self) -> None:
        """Requests without an answer in time mean the backend is not running (or refused our keys)."""
        now = time.monotonic()
        for rid, (cmd, deadline) in list(self._requests.items()):
            if now > deadline:
                del self._requests[rid]
                request = cmd.request if isinstance(cmd, SubmitCommand) else None
                self.events.put(
                    LinkError(
                        BACKEND_DOWN,
                        f"no answer from {self.endpoint} within {self.timeout:.1f} s",
                        request=request,
                    )
                )

    def _answer(self, cmd: Command, msg: m.Message) -> None:
        """Handle the reply to a hello or submit this link sent."""
        request = cmd.request if isinstance(cmd, SubmitCommand) else None
        if isinstance(msg, m.Error):
            self.events.put(LinkError(msg.code, msg.message, request=request, details=msg.details))
        elif isinstance(cmd, HelloCommand) and isinstance(msg, m.Welcome):
            if msg.version != m.codec.PROTOCOL_VERSION:
                self.events.put(
                    LinkError(
                        ErrorCode.VERSION.value,
                        f"backend speaks protocol {msg.version}, this add-on {m.codec.PROTOCOL_VERSION}",
                    )
                )
            else:
                self.events.put(Connected(msg))
        elif isinstance(cmd, SubmitCommand) and isinstance(msg, m.Accepted):
            self._active[msg.job] = time.monotonic()
            self.events.put(JobAccepted(msg.job, cmd.request, msg.position))
        else:
            self.events.put(
                LinkError(ErrorCode.BAD_REQUEST.value, f"unexpected {msg.TYPE!r} reply to {type(cmd).__name__}")
            )

    def _dispatch(self, msg: m.Message) -> None:
        """Route one server message: a reply to our hello/submit, or news about a job."""
        pending = self._requests.pop(msg.re, None) if msg.re else None
        if pending is not None:
            self._answer(pending[0], msg)
            return
        job = getattr(msg, "job", None) or ""
        if job in self._active:
            self._active[job] = time.monotonic()
            self._status_asked.pop(job, None)
        if isinstance(msg, m.Progress):
            self.events.put(JobProgress(job, msg.state, msg.stage, float(msg.fraction), msg.message, msg.eta))
            if msg.state == "done" and job in self._active:
                self._done_at.setdefault(job, time.monotonic())
            elif msg.state in ("failed", "cancelled"):
                self._finish(job)
        elif isinstance(msg, m.ResultMessage) and msg.result is not None:
            self._finish(job)
            self.events.put(JobResult(job, msg.result))
        elif isinstance(msg, m.CancelledMessage):
            self._finish(job)
            self.events.put(JobCancelled(job))
        elif isinstance(msg, m.Error):
            if msg.job:
                self._finish(msg.job)
            self.events.put(LinkError(msg.code, msg.message, job=msg.job, details=msg.details))

    def _finish(self, job: str) -> None:
        """Forget a job that ended."""
        self._active.pop(job, None)
        self._done_at.pop(job, None)
        self._status_asked.pop(job, None)

    def _watch_jobs(self, client: Client) -> None:
        """Fetch results the server reported done but did not push; detect a backend that went silent."""
        now = time.monotonic()
        for job, when in list(self._done_at.items()):
            if now - when > FETCH_AFTER_DONE_SECONDS:
                self._done_at.pop(job)
                client.send(m.FetchResult(job=job))
        for job, last in list(self._active.items()):
            asked = self._status_asked.get(job)
            if asked is None and now - last > HEARTBEAT_SECONDS:
                self._status_asked[job] = now
                client.send(m.StatusRequest(job=job))
            elif asked is not None and now - asked > self.timeout:
                self._finish(job)
                self.events.put(
                    LinkError(
                        BACKEND_LOST,
                        f"the backend at {self.endpoint} stopped answering while job {job[:8]} was running",
                        job=job,
                    )
                )
