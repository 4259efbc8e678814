"""A scripted stand-in for `vidrig serve` (a ROUTER speaking the real protocol) for add-on client tests."""

from __future__ import annotations

import threading
import time

import zmq

from protocol import messages as m
from protocol.result import Result


class FakeBackend:
    """Answers hello/submit/status/cancel/result on a loopback port from a thread.

    A submit whose settings hold {"hold": true} keeps running (progress every 0.1 s) until cancelled;
    a video whose name contains "empty" fails with E_NO_PERSON; any other job reports progress and
    then pushes `result`.
    """

    def __init__(self, result: Result, version: int = m.codec.PROTOCOL_VERSION) -> None:
        self.result = result
        self.version = version
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        port = self._sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self._stop = threading.Event()
        self._held: dict[str, bytes] = {}  # job -> client identity
        self.submits: list[m.Submit] = []
        self._thread = threading.Thread(target=self._run, name="fake-backend", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering (as if the backend was killed) and close the socket."""
        self._stop.set()
        self._thread.join(5)

    def _send(self, ident: bytes, msg: m.Message) -> None:
        """Send one message to one client."""
        self._sock.send_multipart([ident, *msg.to_frames()])

    def _run(self) -> None:
        """Serve until stopped."""
        counter = 0
        try:
            while not self._stop.is_set():
                if self._sock.poll(100):
                    ident, *frames = self._sock.recv_multipart()
                    counter = self._answer(ident, m.parse(frames, m.CLIENT_MESSAGES), counter)
                for job, ident in self._held.items():
                    self._send(ident, m.Progress(job=job, state="running", stage="fit", fraction=0.5, eta=12.0))
        finally:
            self._sock.close(0)
            self._ctx.term()

    def _answer(self, ident: bytes, req: m.Message, counter: int) -> int:
        """Reply to one request; returns the job counter."""
        if isinstance(req, m.Hello):
            presets = [{"name": "fast", "method": "fit", "description": "quick fit"}]
            self._send(ident, m.Welcome(re=req.id, version=self.version, server="fake", presets=presets, device="cpu"))
        elif isinstance(req, m.Submit):
            self.submits.append(req)
            counter += 1
            job = f"job{counter:04d}"
            if "empty" in req.video:
                self._send(ident, m.Accepted(re=req.id, job=job))
                self._send(ident, m.Error(code="E_NO_PERSON", message=f"no person in {req.video}", job=job))
                return counter
            self._send(ident, m.Accepted(re=req.id, job=job))
            if req.settings.get("hold"):
                self._held[job] = ident
                return counter
            for fraction in (0.0, 0.5, 1.0):
                stage = "perception" if fraction < 1 else "fit"
                self._send(ident, m.Progress(job=job, state="running", stage=stage, fraction=fraction, eta=1.0))
                time.sleep(0.02)
            self._send(ident, m.Progress(job=job, state="done", stage="fit", fraction=1.0))
            self._send(ident, m.ResultMessage(job=job, result=self.result))
        elif isinstance(req, m.Cancel):
            if self._held.pop(req.job, None) is not None:
                self._send(ident, m.CancelledMessage(re=req.id, job=req.job))
        elif isinstance(req, m.StatusRequest):
            state = "running" if req.job in self._held else "done"
            self._send(ident, m.Progress(re=req.id, job=req.job, state=state, stage="fit", fraction=0.5))
        elif isinstance(req, m.FetchResult):
            self._send(ident, m.ResultMessage(re=req.id, job=req.job, result=self.result))
        return counter
