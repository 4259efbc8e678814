"""The ZeroMQ ROUTER server: validates every message, queues jobs for a worker process, streams progress."""

from __future__ import annotations

import collections
import logging
import multiprocessing as mp
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import zmq

from protocol import messages as m
from protocol.codec import DEFAULT_MAX_MESSAGE_BYTES
from protocol.errors import BadRequest, ErrorCode, NotFound, VidrigError
from protocol.result import Result

from ..cache.stage_cache import DEFAULT_MAX_BYTES, StageCache
from ..jobs.store import FINAL, JobRecord, JobStore
from ..jobs.worker import worker_main
from ..methods import registry
from ..pipeline import DEFAULT_MAX_VIDEO_BYTES, check_video_path, make_spec
from ..presets import load_presets
from .security import secure_socket

log = logging.getLogger("vidrig.server")
HEARTBEAT_S = 0.4
CANCEL_GRACE_S = 0.6
MAX_QUEUED = 64
SERVER_NAME = "vidrig-backend 0.1.0"


@dataclass
class ServerConfig:
    """Where the server listens and keeps its state, and its limits."""

    bind: str = "tcp://127.0.0.1:5557"
    state_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "vidrig")
    keys_dir: Path | None = None
    allowed_roots: list[Path] = field(default_factory=list)
    max_video_bytes: int = DEFAULT_MAX_VIDEO_BYTES
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    cache_max_bytes: int = DEFAULT_MAX_BYTES
    device: str | None = None


class _Worker:
    """A worker process, the pipe to it, and its cancel flag."""

    def __init__(self, cfg: ServerConfig, jobs_root: Path) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.cancel = ctx.Event()
        self.proc = ctx.Process(
            target=worker_main,
            args=(child, self.cancel, str(cfg.state_dir / "cache"), cfg.cache_max_bytes, str(jobs_root), cfg.device),
            # Not daemonic: perception starts its own Hands process, which a daemonic process may not do.
            # close() and _replace_worker() stop the worker explicitly; it exits on its own when the pipe closes.
            daemon=False,
            name="vidrig-worker",
        )
        self.proc.start()
        child.close()
        self.ready = False
        self.device = "starting"
        self.job: str | None = None
        self.cancel_deadline: float | None = None

    def kill(self) -> None:
        """Stop the process now."""
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


class Server:
    """One ROUTER socket, one job queue, one worker per compute device (one here: the CPU or first GPU)."""

    def __init__(self, cfg: ServerConfig) -> None:
        self.cfg = cfg
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        registry.load_plugins()
        self.store = JobStore(cfg.state_dir / "jobs")
        self.cache = StageCache(cfg.state_dir / "cache", cfg.cache_max_bytes)
        for record in self.store.recover():
            log.warning("job %s was interrupted by a restart; marked failed", record.id)
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, cfg.max_message_bytes * 2)
        self.sock.setsockopt(zmq.SNDHWM, 10000)
        self.auth = secure_socket(self.ctx, self.sock, cfg.bind, cfg.keys_dir)
        try:
            self.sock.bind(cfg.bind)
        except zmq.ZMQError as exc:
            if self.auth is not None:
                self.auth.stop()
            raise BadRequest(f"cannot listen on {cfg.bind}: {exc.strerror} (is another backend running?)") from exc
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.queue: collections.deque[str] = collections.deque()
        self.records: dict[str, JobRecord] = {}
        self.owners: dict[str, bytes] = {}
        self.cancel_requests: dict[str, list[tuple[bytes, str]]] = {}
        self.worker = _Worker(cfg, self.store.root)
        self._last_beat = 0.0
        self._stop = threading.Event()

    # ---- loop ---------------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to end (thread-safe)."""
        self._stop.set()

    def serve_forever(self) -> None:
        """Run until stop(); no handler blocks on job work."""
        log.info("VidRig backend listening on %s", self.endpoint)
        try:
            while not self._stop.is_set():
                poller = zmq.Poller()
                poller.register(self.sock, zmq.POLLIN)
                poller.register(self.worker.conn.fileno(), zmq.POLLIN)
                poller.register(self.worker.proc.sentinel, zmq.POLLIN)
                events = dict(poller.poll(100))
                if self.sock in events:
                    for _ in range(100):
                        try:
                            frames = self.sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._on_frames(frames)
                self._drain_worker()
                self._check_worker_alive()
                self._check_cancel_deadline()
                self._dispatch()
                self._heartbeat()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the worker and release sockets."""
        try:
            if self.worker.proc.is_alive():
                self.worker.conn.send(None)
                self.worker.proc.join(timeout=2)
        except (OSError, BrokenPipeError):
            pass
        self.worker.kill()
        if self.auth is not None:
            self.auth.stop()
        self.sock.close(0)
        self.ctx.term()

    # ---- messages -----------------------------------------------------------------------------------------------

    def _send(self, ident: bytes, msg: m.Message) -> None:
        """Send to one client; a client that went away is not an error."""
        try:
            self.sock.send_multipart([ident, *msg.to_frames()], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.debug("dropping %s to a departed client: %s", msg.TYPE, exc)

    def _on_frames(self, frames: list[bytes]) -> None:
        """Parse and handle one client message; any fault becomes an error reply, never a crash."""
        ident, body = frames[0], frames[1:]
        rid = ""
        try:
            msg = m.parse(body, m.CLIENT_MESSAGES, self.cfg.max_message_bytes)
            rid = msg.id
            handler = getattr(self, f"_on_{msg.TYPE}")
            handler(ident, msg)
        except VidrigError as exc:
            self._send(ident, m.error_from(exc, re=rid or _peek_id(body)))
        except Exception as exc:
            log.exception("handler failed")
            self._send(ident, m.error_from(exc, re=rid))

    def _on_hello(self, ident: bytes, msg: m.Hello) -> None:
        if m.codec.PROTOCOL_VERSION not in msg.versions:
            raise VidrigError(
                f"client speaks protocol versions {msg.versions}, this backend speaks {m.codec.PROTOCOL_VERSION}; "
                "update the add-on or the backend so they match",
                code=ErrorCode.VERSION,
                details={"supported": [m.codec.PROTOCOL_VERSION]},
            )
        from ..models.loader import available_body_models

        presets, _ = load_presets()
        self._send(
            ident,
            m.Welcome(
                re=msg.id,
                server=SERVER_NAME,
                methods=[
                    {"name": e.name, "produces": sorted(e.produces), "description": e.description}
                    for e in registry.available()
                ],
                presets=[
                    {"name": p.name, "method": p.method, "description": p.description, "settings": p.settings}
                    for p in presets.values()
                ],
                body_models=available_body_models(None),
                device=self.worker.device,
                max_message_bytes=self.cfg.max_message_bytes,
            ),
        )

    def _on_ping(self, ident: bytes, msg: m.Ping) -> None:
        self._send(ident, m.Pong(re=msg.id))

    def _on_submit(self, ident: bytes, msg: m.Submit) -> None:
        if len(self.queue) >= MAX_QUEUED:
            raise VidrigError(f"the backend already has {len(self.queue)} jobs queued", code=ErrorCode.BUSY)
        path = check_video_path(msg.video, allowed_roots=self.cfg.allowed_roots, max_bytes=self.cfg.max_video_bytes)
        spec = make_spec(
            str(path),
            preset=msg.preset,
            method=msg.method,
            overrides=msg.settings,
            frames=msg.frames,
            body_model=msg.body_model,
            models_dir=msg.models_dir,
        )
        self._enqueue(ident, msg.id, JobRecord(id=m.new_id(), spec=spec))

    def _on_refine(self, ident: bytes, msg: m.Refine) -> None:
        parent = self._record(msg.job)
        if parent.state != "done":
            raise BadRequest(f"job {msg.job} is {parent.state}; only a finished job can be refined")
        spec = make_spec(
            parent.spec.video,
            preset=parent.spec.preset,
            method=parent.spec.method,
            overrides={**_flat(parent.spec.settings), **msg.settings},
            frames=parent.spec.frames,
            body_model=parent.spec.body_model,
            models_dir=parent.spec.models_dir,
        )
        record = JobRecord(id=m.new_id(), spec=spec)
        folder = self.store.job_dir(record.id)
        folder.mkdir(parents=True, exist_ok=True)
        pins = folder / "pins.npz"
        np.savez(pins, pin_frames=msg.arrays["pin_frames"], pin_poses=msg.arrays["pin_poses"])
        spec.pins, spec.parent = str(pins), parent.id
        self._enqueue(ident, msg.id, record)

    def _enqueue(self, ident: bytes, rid: str, record: JobRecord) -> None:
        self.store.save(record)
        self.records[record.id] = record
        self.owners[record.id] = ident
        self.queue.append(record.id)
        self._send(ident, m.Accepted(re=rid, job=record.id, position=len(self.queue) - 1))
        self._dispatch()

    def _record(self, job_id: str) -> JobRecord:
        if job_id in self.records:
            return self.records[job_id]
        record = self.store.load(job_id)
        self.records[job_id] = record
        return record

    def _progress_of(self, record: JobRecord, re: str = "") -> m.Progress:
        return m.Progress(
            re=re,
            job=record.id,
            state=record.state,
            stage=record.stage,
            fraction=record.fraction,
            message=record.message,
            eta=record.eta,
        )

    def _on_status(self, ident: bytes, msg: m.StatusRequest) -> None:
        self._send(ident, self._progress_of(self._record(msg.job), msg.id))

    def _on_result(self, ident: bytes, msg: m.FetchResult) -> None:
        record = self._record(msg.job)
        if record.state == "done":
            self._send(ident, m.ResultMessage(re=msg.id, job=record.id, result=self._load_result(record.id)))
        elif record.state == "failed" and record.error:
            self._send(ident, m.Error(re=msg.id, job=record.id, **record.error))
        elif record.state == "cancelled":
            self._send(
                ident,
                m.Error(re=msg.id, job=record.id, code=ErrorCode.CANCELLED.value, message="the job was cancelled"),
            )
        else:
            raise BadRequest(f"job {record.id} is still {record.state}; its result is not ready")

    def _load_result(self, job_id: str) -> Result:
        path = self.store.result_path(job_id)
        if not path.is_file():
            raise NotFound(f"the result file of job {job_id} is missing from {path}")
        return Result.load_npz(path)

    def _on_cancel(self, ident: bytes, msg: m.Cancel) -> None:
        record = self._record(msg.job)
        if record.state in FINAL:
            raise BadRequest(f"job {record.id} already ended ({record.state})")
        if record.state == "queued":
            self.queue.remove(record.id)
            self._finish(record, "cancelled", extra=[(ident, msg.id)])
            return
        self.cancel_requests.setdefault(record.id, []).append((ident, msg.id))
        if self.worker.cancel_deadline is None:
            self.worker.cancel.set()
            self.worker.cancel_deadline = time.monotonic() + CANCEL_GRACE_S

    # ---- jobs ---------------------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Hand the next queued job to the worker when it is idle."""
        w = self.worker
        if not w.ready or w.job is not None or not self.queue:
            return
        job_id = self.queue.popleft()
        record = self.records[job_id]
        record.state, record.started, record.stage, record.message = "running", time.time(), "starting", ""
        self.store.save(record)
        w.cancel.clear()
        w.job = job_id
        w.conn.send((job_id, asdict(record.spec)))
        self._notify(record)

    def _drain_worker(self) -> None:
        """Apply every event the worker has sent."""
        w = self.worker
        try:
            while w.conn.poll():
                self._on_worker_event(w.conn.recv())
        except (EOFError, OSError):
            pass

    def _on_worker_event(self, event: tuple) -> None:
        kind = event[0]
        if kind == "ready":
            self.worker.ready, self.worker.device = True, event[1]
            return
        job_id = event[1]
        record = self.records.get(job_id)
        if record is None:
            return
        if kind == "progress":
            stage = record.stage
            _, _, record.stage, record.fraction, record.message, record.eta = event
            if record.stage != stage:  # persist stage changes, so a restart can say where a job stopped
                self.store.save(record)
            return
        self.worker.job = None
        self.worker.cancel_deadline = None
        if kind == "done":
            record.cached_stages, record.timings = event[2], event[3]
            self._finish(record, "done")
        elif kind == "cancelled":
            self._finish(record, "cancelled")
        elif kind == "failed":
            record.error = {"code": event[2], "message": event[3], "details": _jsonable(event[4])}
            self._finish(record, "failed")

    def _finish(self, record: JobRecord, state: str, extra: list[tuple[bytes, str]] | None = None) -> None:
        """Record the final state and tell the owner (and anyone who asked to cancel) exactly once."""
        record.state, record.finished = state, time.time()
        if state == "done":
            record.fraction, record.eta = 1.0, 0.0
        elif state == "failed" and record.error is not None:
            record.message = record.error["message"]  # `status` of a failed job tells why
        elif state == "cancelled":
            record.message = "cancelled"
        self.store.save(record)
        owner = self.owners.pop(record.id, None)
        waiting = self.cancel_requests.pop(record.id, []) + (extra or [])
        if state == "done":
            if owner is not None:
                self._send(owner, m.ResultMessage(job=record.id, result=self._load_result(record.id)))
        elif state == "cancelled":
            for ident in {owner, *(i for i, _ in waiting)} - {None}:
                rids = [r for i, r in waiting if i == ident]
                self._send(ident, m.CancelledMessage(job=record.id, re=rids[0] if rids else ""))
            return
        else:
            assert record.error is not None
            if owner is not None:
                self._send(owner, m.Error(job=record.id, **record.error))
        for ident, rid in waiting:
            self._send(
                ident,
                m.Error(
                    re=rid,
                    job=record.id,
                    code=ErrorCode.BAD_REQUEST.value,
                    message=f"job {record.id} ended ({state}) before it could be cancelled",
                ),
            )

    def _notify(self, record: JobRecord) -> None:
        owner = self.owners.get(record.id)
        if owner is not None:
            self._send(owner, self._progress_of(record))

    def _heartbeat(self) -> None:
        """Progress to the running job's owner at least every HEARTBEAT_S, even when the method is quiet."""
        now = time.monotonic()
        if now - self._last_beat < HEARTBEAT_S:
            return
        self._last_beat = now
        if self.worker.job is not None:
            self._notify(self.records[self.worker.job])

    def _check_cancel_deadline(self) -> None:
        """A job that ignores its cancel flag past the grace period is stopped by killing the worker."""
        w = self.worker
        if w.cancel_deadline is None or time.monotonic() < w.cancel_deadline:
            return
        job_id = w.job
        log.warning("job %s did not stop within %.1f s; restarting the worker", job_id, CANCEL_GRACE_S)
        self._replace_worker()
        if job_id is not None:
            self._finish(self.records[job_id], "cancelled")

    def _check_worker_alive(self) -> None:
        """A worker that died (crash, out of memory) fails its job with a clear error and is replaced."""
        w = self.worker
        if w.proc.is_alive():
            return
        self._drain_worker()
        job_id = w.job
        code = w.proc.exitcode
        self._replace_worker()
        if job_id is not None:
            record = self.records[job_id]
            record.error = {
                "code": ErrorCode.INTERNAL.value,
                "message": f"the backend worker died (exit code {code}) during stage '{record.stage}'; "
                "submit the job again to resume from its cached stages",
                "details": {"exit_code": code, "stage": record.stage},
            }
            self._finish(record, "failed")

    def _replace_worker(self) -> None:
        self.worker.kill()
        self.worker = _Worker(self.cfg, self.store.root)


def _peek_id(body: list[bytes]) -> str:
    """Best-effort request id from a message that failed validation, so the error can be matched."""
    import json

    try:
        header = json.loads(bytes(body[0])) if body else {}
        rid = header.get("id", "") if isinstance(header, dict) else ""
        return rid if isinstance(rid, str) and len(rid) <= 128 else ""
    except (ValueError, UnicodeDecodeError, RecursionError):
        return ""


def _flat(settings: dict[str, dict]) -> dict[str, object]:
    """Nested section settings to dotted keys."""
    return {f"{section}.{k}": v for section, values in settings.items() for k, v in values.items()}


def _jsonable(value: object) -> dict:
    """Details as a JSON-able dict (worker exceptions may carry anything)."""
    import json

    try:
        json.dumps(value)
        return value if isinstance(value, dict) else {"value": value}
    except (TypeError, ValueError):
        return {"repr": repr(value)}
