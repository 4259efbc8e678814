"""Every typed message survives to_frames -> parse, and parse refuses wrong types, missing fields and bad arrays."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from protocol import codec
from protocol import messages as m
from protocol.errors import BadRequest, ErrorCode, NotFound, VidrigError
from tests.support.results import assert_same, full_result

PINS = {
    "pin_frames": np.array([3, 9], np.int64),
    "pin_poses": np.linspace(-1, 1, 2 * 55 * 3).reshape(2, 55, 3),
}
SAMPLES: dict[str, list[m.Message]] = {
    "client": [
        m.Hello(id="h1", client="blender 4.2", versions=[1, 7]),
        m.Submit(
            id="s1",
            video="/videos/clip.mp4",
            preset="quality",
            method="fit",
            settings={"camera": {"fov_deg": 60.0}, "iterations": 5},
            frames=[10, 250],
            body_model="smplx",
            models_dir="/models",
        ),
        m.Submit(id="s2", video="/v.mp4", method="hmp"),
        m.StatusRequest(id="st", job="ab"),
        m.Cancel(id="c", job="cd"),
        m.Refine(id="rf", job="ef", settings={"method.weight": 2.0}, arrays=dict(PINS)),
        m.FetchResult(id="fr", job="01"),
        m.Ping(id="p"),
    ],
    "server": [
        m.Welcome(
            re="h1",
            server="vidrig 0.1",
            methods=[{"name": "fit", "produces": ["body"]}],
            presets=[{"name": "quality", "method": "fit", "description": "slow", "settings": {}}],
            body_models=["default", "smplx"],
            device="cuda:0 (H100)",
            max_message_bytes=1024,
        ),
        m.Accepted(re="s1", job="j1", position=3),
        m.Progress(re="st", job="j1", state="running", stage="camera", fraction=0.25, message="keyframes", eta=12.5),
        m.Progress(job="j1", state="queued"),
        m.Partial(
            job="j1",
            frame_start=40,
            arrays={"poses": np.ones((3, 165), np.float32), "trans": np.zeros((3, 3), np.float32)},
        ),
        m.ResultMessage(re="fr", job="j1", result=full_result(t=3)),
        m.Error(re="x", code="E_NOT_FOUND", message="no job", details={"job": "zz"}, job="zz"),
        m.CancelledMessage(re="c", job="j1"),
        m.Pong(re="p"),
    ],
}


def _all(kind: str) -> list[m.Message]:
    return SAMPLES[kind]


def test_samples_cover_every_message_class() -> None:
    """Adding a message type without a round-trip sample fails here."""
    classes = {type(s) for s in _all("client")} | {type(s) for s in _all("server")}
    declared = set(m.CLIENT_MESSAGES.values()) | set(m.SERVER_MESSAGES.values())
    subclasses = {c for c in vars(m).values() if isinstance(c, type) and issubclass(c, m.Message) and c.TYPE}
    assert classes == declared == subclasses


@pytest.mark.parametrize(
    ("registry", "msg"),
    [(m.CLIENT_MESSAGES, s) for s in _all("client")] + [(m.SERVER_MESSAGES, s) for s in _all("server")],
    ids=lambda v: getattr(v, "TYPE", "registry"),
)
def test_round_trip(registry: dict[str, type[m.Message]], msg: m.Message) -> None:
    frames = msg.to_frames()
    header = json.loads(frames[0])
    assert header["v"] == codec.PROTOCOL_VERSION and header["type"] == msg.TYPE
    back = m.parse(frames, registry)
    assert_same(msg, back, msg.TYPE)


def test_defaults_are_filled_for_absent_fields() -> None:
    back = m.parse([b'{"v":1,"type":"submit","video":"/a.mp4"}'], m.CLIENT_MESSAGES)
    assert isinstance(back, m.Submit)
    assert back.settings == {} and back.frames is None and back.preset is None and back.id == ""


def _with(msg: m.Message, **changes: object) -> list[bytes]:
    header = {**msg.header(), **changes}
    return codec.encode(header, msg.payload())


WRONG_TYPES = [
    (m.Hello(), "client", 5),
    (m.Hello(), "versions", [1, "2"]),
    (m.Hello(), "versions", [True]),
    (m.Submit(video="/a"), "video", 1),
    (m.Submit(video="/a"), "settings", []),
    (m.Submit(video="/a"), "frames", [0.5, 2]),
    (m.Submit(video="/a"), "frames", "0:5"),
    (m.Submit(video="/a"), "preset", {"name": "x"}),
    (m.Submit(video="/a"), "id", 7),
    (m.Submit(video="/a"), "id", None),
    (m.StatusRequest(job="a"), "job", ["a"]),
    (m.Cancel(job="a"), "job", None),
    (m.FetchResult(job="a"), "re", False),
    (m.Ping(), "id", "x" * 5000),
]


@pytest.mark.parametrize(("msg", "name", "value"), WRONG_TYPES, ids=lambda v: repr(v)[:20])
def test_wrong_field_types_name_the_field(msg: m.Message, name: str, value: object) -> None:
    with pytest.raises(BadRequest, match=repr(name)):
        m.parse(_with(msg, **{name: value}), m.CLIENT_MESSAGES)


SERVER_WRONG_TYPES = [
    (m.Progress(job="j"), "fraction", "half"),
    (m.Progress(job="j"), "fraction", float("inf")),
    (m.Progress(job="j"), "eta", 10**400),
    (m.Progress(job="j"), "eta", True),
    (m.Accepted(job="j"), "position", 1.5),
    (m.Welcome(), "body_models", "default"),
    (m.Welcome(), "methods", ["fit"]),
    (m.Error(), "details", "none"),
]


@pytest.mark.parametrize(("msg", "name", "value"), SERVER_WRONG_TYPES, ids=lambda v: repr(v)[:20])
def test_server_messages_are_checked_too(msg: m.Message, name: str, value: object) -> None:
    raw = json.dumps({**msg.header(), name: value, "v": 1}, allow_nan=True).encode()  # lets Infinity through
    with pytest.raises(BadRequest, match=repr(name)):
        m.parse([raw], m.SERVER_MESSAGES)


SEMANTICS = [
    (m.Submit(video=""), "video"),
    (m.Submit(video="/a", frames=[5, 5]), "frames"),
    (m.Submit(video="/a", frames=[-1, 5]), "frames"),
    (m.Submit(video="/a", frames=[1, 2, 3]), "frames"),
    (m.StatusRequest(job=""), "job"),
    (m.Cancel(), "job"),
    (m.FetchResult(), "job"),
    (m.Refine(arrays=dict(PINS)), "job"),
    (m.Refine(job="a", arrays={"pin_frames": PINS["pin_frames"], "pin_poses": np.zeros((2, 55, 2))}), "pin_poses"),
    (m.Refine(job="a", arrays={"pin_frames": np.zeros(2), "pin_poses": PINS["pin_poses"]}), "pin_frames"),
    (m.Refine(job="a", arrays={"pin_frames": PINS["pin_frames"], "pin_poses": np.full((2, 55, 3), np.nan)}), "finite"),
    (m.Refine(job="a", arrays={"pin_frames": PINS["pin_frames"]}), "pin_poses"),
    (m.Ping(id="i" * 129), "128"),
]


@pytest.mark.parametrize(("msg", "match"), SEMANTICS, ids=lambda v: getattr(v, "TYPE", v))
def test_semantic_rules(msg: m.Message, match: str) -> None:
    with pytest.raises(BadRequest, match=match):
        m.parse(msg.to_frames(), m.CLIENT_MESSAGES)


def test_unknown_types_and_direction() -> None:
    with pytest.raises(BadRequest, match="unknown message type 'frobnicate'"):
        m.parse(codec.encode({"type": "frobnicate"}), m.CLIENT_MESSAGES)
    with pytest.raises(BadRequest, match="unknown message type None"):
        m.parse(codec.encode({}), m.CLIENT_MESSAGES)
    with pytest.raises(BadRequest, match="unknown message type 'welcome'"):
        m.parse(m.Welcome().to_frames(), m.CLIENT_MESSAGES)
    with pytest.raises(BadRequest, match="unknown message type 'hello'"):
        m.parse(m.Hello().to_frames(), m.SERVER_MESSAGES)


def test_arrays_on_a_message_without_arrays_are_refused() -> None:
    frames = codec.encode({"type": "ping", "id": "p"}, {"junk": np.zeros(3)})
    with pytest.raises(BadRequest, match="carries no arrays"):
        m.parse(frames, m.CLIENT_MESSAGES)


def test_result_without_info_is_refused() -> None:
    header = {"type": "result", "job": "j"}
    with pytest.raises(BadRequest, match="info"):
        m.parse(codec.encode(header), m.SERVER_MESSAGES)


def test_parse_enforces_the_size_limit() -> None:
    frames = m.Refine(job="a", arrays=dict(PINS)).to_frames()
    with pytest.raises(VidrigError) as info:
        m.parse(frames, m.CLIENT_MESSAGES, max_bytes=1000)
    assert info.value.code is ErrorCode.TOO_LARGE


def test_error_from_keeps_codes_and_hides_nothing_internal() -> None:
    err = m.error_from(NotFound("no job 'x'", details={"job": "x"}), re="r", job="x")
    assert (err.code, err.message, err.details, err.re, err.job) == (
        "E_NOT_FOUND",
        "no job 'x'",
        {"job": "x"},
        "r",
        "x",
    )
    internal = m.error_from(KeyError("boom"))
    assert internal.code == "E_INTERNAL" and "KeyError" in internal.message
    assert dataclasses.asdict(m.parse(err.to_frames(), m.SERVER_MESSAGES)) == dataclasses.asdict(err)


def test_new_ids_are_unique_hex() -> None:
    ids = {m.new_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
