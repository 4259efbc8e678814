"""A small blocking ZeroMQ client for the VidRig backend (pure Python + numpy + pyzmq, usable inside Blender)."""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any, TypeVar

import zmq

from . import messages as m
from .errors import BadRequest, ErrorCode, VidrigError
from .keys import load_keypair, load_public_key
from .result import Result

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"
T = TypeVar("T", bound=m.Message)


class BackendUnavailable(VidrigError):
    """No answer from the backend in time: it is not running, unreachable, or refused our keys."""

    code = ErrorCode.INTERNAL


class Client:
    """Owns one DEALER socket; not thread-safe: use it from the one thread that created it."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENDPOINT,
        *,
        keys_dir: str | Path | None = None,
        timeout: float = 5.0,
        name: str = "vidrig-client",
        max_message_bytes: int = m.codec.DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.name = name
        self.max_message_bytes = max_message_bytes
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.LINGER, 0)
        # A DEALER with no live connection (server down, keys refused) blocks in send; bound the wait.
        self._sock.setsockopt(zmq.SNDTIMEO, max(int(timeout * 1000), 1))
        if keys_dir is not None:
            public, secret = load_keypair(Path(keys_dir) / "client.key_secret")
            self._sock.curve_publickey = public
            self._sock.curve_secretkey = secret
            self._sock.curve_serverkey = load_public_key(Path(keys_dir) / "server.key")
        self._sock.connect(endpoint)
        self._pending: collections.deque[m.Message] = collections.deque()

    def close(self) -> None:
        """Close the socket at once, dropping unsent messages."""
        self._sock.close(0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, msg: m.Message) -> str:
        """Send a request, giving it a fresh id when it has none; returns the id."""
        if not msg.id:
            msg.id = m.new_id()
        try:
            self._sock.send_multipart(msg.to_frames(), copy=False)
        except zmq.Again as exc:
            raise BackendUnavailable(
                f"could not reach the VidRig backend at {self.endpoint} within {self.timeout:.1f} s: "
                "is it running (vidrig serve), and do its keys match?"
            ) from exc
        return msg.id

    def recv(self, timeout: float | None = None) -> m.Message | None:
        """The next message from the server (buffered ones first), or None after `timeout` seconds."""
        if self._pending:
            return self._pending.popleft()
        return self._recv_socket(self.timeout if timeout is None else timeout)

    def _recv_socket(self, timeout: float) -> m.Message | None:
        """Read one message from the socket within `timeout` seconds."""
        if not self._sock.poll(int(timeout * 1000)):
            return None
        frames = self._sock.recv_multipart()
        return m.parse(frames, m.SERVER_MESSAGES, self.max_message_bytes)

    def request(self, msg: m.Message, timeout: float | None = None) -> m.Message:
        """Send and wait for the reply to this request; other messages stay buffered for `recv`."""
        rid = self.send(msg)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            reply = self._recv_socket(max(left, 0.0)) if left > 0 else None
            if reply is None:
                raise BackendUnavailable(
                    f"no answer from the VidRig backend at {self.endpoint} within {timeout or self.timeout:.1f} s: "
                    "is it running (vidrig serve), and do its keys match?"
                )
            if reply.re == rid:
                if isinstance(reply, m.Error):
                    raise VidrigError(reply.message, code=ErrorCode(reply.code), details=reply.details)
                return reply
            self._pending.append(reply)

    def hello(self) -> m.Welcome:
        """Handshake: the server's methods, presets, body models and device."""
        reply = self.request(m.Hello(client=self.name))
        return _expect(reply, m.Welcome)

    def ping(self) -> float:
        """Round-trip time in seconds."""
        t0 = time.perf_counter()
        _expect(self.request(m.Ping()), m.Pong)
        return time.perf_counter() - t0

    def submit(
        self,
        video: str | Path,
        *,
        preset: str | None = None,
        method: str | None = None,
        settings: dict[str, Any] | None = None,
        frames: tuple[int, int] | None = None,
        body_model: str | None = None,
        models_dir: str | None = None,
    ) -> str:
        """Queue a job; returns its id."""
        msg = m.Submit(
            video=str(video),
            preset=preset,
            method=method,
            settings=dict(settings or {}),
            frames=list(frames) if frames else None,
            body_model=body_model,
            models_dir=models_dir,
        )
        return _expect(self.request(msg), m.Accepted).job

    def status(self, job: str) -> m.Progress:
        """Current state of a job."""
        return _expect(self.request(m.StatusRequest(job=job)), m.Progress)

    def cancel(self, job: str) -> str:
        """Ask the server to stop a job; returns the request id (the `cancelled` reply carries it in `re`)."""
        return self.send(m.Cancel(job=job))

    def result(self, job: str, timeout: float | None = None) -> Result:
        """Fetch a finished job's result."""
        reply = _expect(self.request(m.FetchResult(job=job), timeout), m.ResultMessage)
        assert reply.result is not None
        return reply.result

    def wait(self, job: str, timeout: float = 600.0) -> m.Message:
        """Block until the job ends; returns its final ResultMessage, CancelledMessage or Error.

        Messages about other jobs stay buffered for later `recv` / `wait` calls, in their order.
        """
        deadline = time.monotonic() + timeout
        others: list[m.Message] = []
        try:
            while time.monotonic() < deadline:
                msg = self.recv(min(1.0, deadline - time.monotonic()))
                if msg is None:
                    continue
                if getattr(msg, "job", None) != job:
                    others.append(msg)
                elif isinstance(msg, m.ResultMessage | m.CancelledMessage | m.Error):
                    return msg
            raise BackendUnavailable(f"job {job} did not finish within {timeout:.0f} s")
        finally:
            self._pending.extendleft(reversed(others))


def _expect(reply: m.Message, cls: type[T]) -> T:
    """The reply as `cls`, or a BadRequest naming what came instead."""
    if not isinstance(reply, cls):
        raise BadRequest(f"expected a {cls.TYPE!r} reply, got {reply.TYPE!r}")
    return reply
