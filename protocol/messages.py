"""Typed protocol messages, their validation, and conversion to and from wire frames."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from . import codec
from .errors import BadRequest, ErrorCode
from .result import Result

_JSON = (str, int, float, bool, type(None), list, dict)


@dataclass
class Message:
    """Base of every message: `id` names a request; replies carry the request's id in `re`."""

    TYPE: ClassVar[str] = ""
    ARRAYS: ClassVar[tuple[str, ...]] = ()  # names of required array frames
    id: str = ""
    re: str = ""

    def header(self) -> dict[str, Any]:
        """JSON-able header fields of this message (arrays go separately)."""
        out: dict[str, Any] = {"type": self.TYPE}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "arrays" or isinstance(value, Result):
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def payload(self) -> dict[str, np.ndarray]:
        """Array frames of this message."""
        return dict(getattr(self, "arrays", {}) or {})

    def to_frames(self) -> list[bytes]:
        """Encode for sending."""
        return codec.encode(self.header(), self.payload())


def new_id() -> str:
    """A fresh random message or job id."""
    return uuid.uuid4().hex


# ---- client -> server -------------------------------------------------------------------------------------------


@dataclass
class Hello(Message):
    """Opens a session: the client's name and the protocol versions it speaks."""

    TYPE: ClassVar[str] = "hello"
    client: str = ""
    versions: list[int] = field(default_factory=lambda: [codec.PROTOCOL_VERSION])


@dataclass
class Submit(Message):
    """Start a job on a video with a preset or method and setting overrides."""

    TYPE: ClassVar[str] = "submit"
    video: str = ""
    preset: str | None = None
    method: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    frames: list[int] | None = None  # [start, stop) source frame indices
    body_model: str | None = None  # "default" | "smplx"; None lets the server choose
    models_dir: str | None = None


@dataclass
class StatusRequest(Message):
    """Ask where a job stands; answered with a `progress` message."""

    TYPE: ClassVar[str] = "status"
    job: str = ""


@dataclass
class Cancel(Message):
    """Stop a queued or running job."""

    TYPE: ClassVar[str] = "cancel"
    job: str = ""


@dataclass
class Refine(Message):
    """Re-solve a finished job around poses the animator pinned: arrays `pin_frames` (P,) and `pin_poses` (P,55,3)."""

    TYPE: ClassVar[str] = "refine"
    ARRAYS: ClassVar[tuple[str, ...]] = ("pin_frames", "pin_poses")
    job: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class FetchResult(Message):
    """Ask for a finished job's result again."""

    TYPE: ClassVar[str] = "result"
    job: str = ""


@dataclass
class Ping(Message):
    """Liveness check."""

    TYPE: ClassVar[str] = "ping"


# ---- server -> client -------------------------------------------------------------------------------------------


@dataclass
class Welcome(Message):
    """Answer to hello: what this server offers."""

    TYPE: ClassVar[str] = "welcome"
    version: int = codec.PROTOCOL_VERSION
    server: str = ""
    methods: list[dict[str, Any]] = field(default_factory=list)  # {name, produces}
    presets: list[dict[str, Any]] = field(default_factory=list)  # {name, method, description, settings}
    body_models: list[str] = field(default_factory=list)
    device: str = "cpu"
    max_message_bytes: int = codec.DEFAULT_MAX_MESSAGE_BYTES


@dataclass
class Accepted(Message):
    """A job was queued."""

    TYPE: ClassVar[str] = "accepted"
    job: str = ""
    position: int = 0  # jobs ahead of it in the queue


@dataclass
class Progress(Message):
    """Where a job stands: state, stage, fraction done, a message and an ETA in seconds."""

    TYPE: ClassVar[str] = "progress"
    job: str = ""
    state: str = "running"  # queued | running | done | failed | cancelled
    stage: str = ""
    fraction: float = 0.0
    message: str = ""
    eta: float | None = None


@dataclass
class Partial(Message):
    """Frames solved so far by an online method: arrays `poses` (n,165) and `trans` (n,3) from `frame_start`."""

    TYPE: ClassVar[str] = "partial"
    ARRAYS: ClassVar[tuple[str, ...]] = ("poses", "trans")
    job: str = ""
    frame_start: int = 0
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ResultMessage(Message):
    """A finished job's Result, its arrays named as in the result file."""

    TYPE: ClassVar[str] = "result"
    job: str = ""
    result: Result | None = None

    def header(self) -> dict[str, Any]:
        """Header with the result's JSON info beside the job id."""
        out = super().header()
        out.pop("result", None)
        out["info"] = self.result.to_arrays()[1] if self.result is not None else {}
        return out

    def payload(self) -> dict[str, np.ndarray]:
        """The result's arrays."""
        return self.result.to_arrays()[0] if self.result is not None else {}

    def to_frames(self) -> list[bytes]:
        """Encode, flattening the Result once for both the header's info and the array frames."""
        if self.result is None:
            return super().to_frames()
        arrays, info = self.result.to_arrays()
        return codec.encode({**Message.header(self), "info": info}, arrays)


@dataclass
class Error(Message):
    """A failure with a code from ErrorCode, a plain-words message and details."""

    TYPE: ClassVar[str] = "error"
    code: str = ErrorCode.INTERNAL.value
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    job: str | None = None


@dataclass
class CancelledMessage(Message):
    """A job stopped because it was cancelled."""

    TYPE: ClassVar[str] = "cancelled"
    job: str = ""


@dataclass
class Pong(Message):
    """Answer to ping."""

    TYPE: ClassVar[str] = "pong"


CLIENT_MESSAGES: dict[str, type[Message]] = {
    m.TYPE: m for m in (Hello, Submit, StatusRequest, Cancel, Refine, FetchResult, Ping)
}
SERVER_MESSAGES: dict[str, type[Message]] = {
    m.TYPE: m for m in (Welcome, Accepted, Progress, Partial, ResultMessage, Error, CancelledMessage, Pong)
}
STATES = frozenset({"queued", "running", "done", "failed", "cancelled"})


def parse(
    frames: list[bytes], registry: dict[str, type[Message]], max_bytes: int = codec.DEFAULT_MAX_MESSAGE_BYTES
) -> Message:
    """Decode frames into the message class named by `type`, validating every field; raises VidrigError."""
    header, arrays = codec.decode(frames, max_bytes)
    kind = header.get("type")
    cls = registry.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise BadRequest(f"unknown message type {kind!r}; expected one of {sorted(registry)}")
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name == "arrays":
            values["arrays"] = arrays
            continue
        if f.name == "result":
            continue
        if f.name not in header:
            continue
        values[f.name] = _check_field(cls, f.name, f.type, header[f.name])
    missing = [name for name in cls.ARRAYS if name not in arrays]
    if missing:
        raise BadRequest(f"{cls.TYPE}: missing array frames {missing}")
    if cls is ResultMessage:
        info = header.get("info")
        if not isinstance(info, dict):
            raise BadRequest("result: header field 'info' must be an object")
        values["result"] = Result.from_arrays(arrays, info)
    elif arrays and "arrays" not in {f.name for f in fields(cls)}:
        raise BadRequest(f"{cls.TYPE} carries no arrays but {len(arrays)} were sent")
    msg = cls(**values)
    _check_semantics(msg)
    return msg


def _check_field(cls: type[Message], name: str, annotation: Any, value: Any) -> Any:
    """Type-check one header field against the dataclass annotation (written as a string)."""
    text = str(annotation)
    optional = "None" in text
    if value is None:
        if optional:
            return None
        raise BadRequest(f"{cls.TYPE}: field {name!r} must not be null")
    base = text.replace(" | None", "").strip()
    ok = {
        "str": isinstance(value, str) and len(value) <= 4096,
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": _finite_number(value),
        "list[int]": isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value),
        "dict[str, Any]": isinstance(value, dict),
        "list[dict[str, Any]]": isinstance(value, list) and all(isinstance(v, dict) for v in value),
        "list[str]": isinstance(value, list) and all(isinstance(v, str) for v in value),
    }.get(base)
    if ok is None:
        raise BadRequest(f"{cls.TYPE}: field {name!r} has no wire form")
    if not ok:
        raise BadRequest(f"{cls.TYPE}: field {name!r} must be {base}, got {type(value).__name__}")
    return value


def _finite_number(value: Any) -> bool:
    """A JSON number (not a bool) that fits a finite float; huge integers would overflow `math.isfinite`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _check_semantics(msg: Message) -> None:
    """Rules beyond types: ids present where a job is named, frame ranges ordered, states known."""
    if len(msg.id) > 128 or len(msg.re) > 128:
        raise BadRequest("message ids are at most 128 characters")
    job = getattr(msg, "job", None)
    if isinstance(msg, StatusRequest | Cancel | Refine | FetchResult) and not job:
        raise BadRequest(f"{msg.TYPE}: field 'job' is required")
    if isinstance(msg, Submit):
        if not msg.video:
            raise BadRequest("submit: field 'video' (a path on the backend machine) is required")
        if msg.frames is not None and (len(msg.frames) != 2 or not 0 <= msg.frames[0] < msg.frames[1]):
            raise BadRequest("submit: 'frames' must be [start, stop) with 0 <= start < stop")
    if isinstance(msg, Refine):
        frames, poses = msg.arrays["pin_frames"], msg.arrays["pin_poses"]
        if frames.ndim != 1 or poses.shape != (frames.shape[0], 55, 3) or frames.dtype.kind not in "iu":
            raise BadRequest("refine: pin_frames must be (P,) integers and pin_poses (P,55,3)")
        if poses.dtype.kind != "f" or not np.isfinite(poses).all():
            raise BadRequest("refine: pin_poses must be finite floats")
    if isinstance(msg, Progress) and msg.state not in STATES:
        raise BadRequest(f"progress: unknown state {msg.state!r}")


def error_from(exc: Exception, *, re: str = "", job: str | None = None) -> Error:
    """An Error message for an exception; VidrigErrors keep their code, anything else is E_INTERNAL."""
    code = getattr(exc, "code", ErrorCode.INTERNAL)
    message = getattr(exc, "message", None) or f"internal error: {type(exc).__name__}: {exc}"
    details = getattr(exc, "details", {}) or {}
    return Error(re=re, job=job, code=ErrorCode(code).value, message=message, details=details)
