"""Fuzz the running server with malformed multipart messages from a raw DEALER: every one gets an error, none kills it.

Over 1,000 messages in all (random bytes, bad JSON, wrong versions, broken array tables, lengths that do not
match, huge declared shapes, messages over the server's size limit, unknown types, wrong field types).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import codec
from protocol import messages as m
from tests.conftest import SMALL_MAX_MESSAGE_BYTES
from tests.support.server import ServerProcess

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
ALLOWED = {"E_BAD_REQUEST", "E_TOO_LARGE", "E_VERSION"}
COUNTS: dict[str, int] = {}


@pytest.fixture(scope="module")
def dealer(server: ServerProcess) -> Iterator[zmq.Socket]:
    """A raw DEALER socket on the session server (no protocol client in between)."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(server.endpoint)
    yield sock
    sock.close(0)
    ctx.term()


def _exchange(sock: zmq.Socket, frames: list[bytes], category: str) -> m.Error:
    """Send one message and read the single error it must cause."""
    COUNTS[category] = COUNTS.get(category, 0) + 1
    sock.send_multipart(frames)
    assert sock.poll(10_000), f"no reply to a {category} message: {[f[:80] for f in frames]}"
    reply = m.parse(sock.recv_multipart(), m.SERVER_MESSAGES)
    assert isinstance(reply, m.Error), f"{category}: expected an error, got {reply.TYPE}"
    assert reply.code in ALLOWED, f"{category}: {reply.code} {reply.message}"
    assert reply.message
    assert not sock.poll(0), "one message, one reply"
    return reply


def _header(**fields: object) -> bytes:
    return json.dumps(fields, allow_nan=True).encode()


ids = st.text("0123456789abcdef", min_size=1, max_size=32)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(st.lists(st.binary(max_size=300), min_size=1, max_size=5))
def test_random_bytes(dealer: zmq.Socket, frames: list[bytes]) -> None:
    reply = _exchange(dealer, frames, "random bytes")
    assert reply.code == "E_BAD_REQUEST"


@FUZZ
@given(ids, st.text(max_size=200), st.integers(0, 2))
def test_bad_json(dealer: zmq.Socket, rid: str, noise: str, how: int) -> None:
    """Truncated JSON, JSON with noise appended, or a JSON value that is not an object."""
    good = _header(v=1, type="ping", id=rid)
    raw = [good[: len(good) // 2], good + noise.encode() + b"}", json.dumps([rid, noise]).encode()][how]
    reply = _exchange(dealer, [raw], "bad json")
    assert reply.code == "E_BAD_REQUEST"


@FUZZ
@given(ids, st.one_of(st.integers().filter(lambda v: v != 1), st.booleans(), st.text(max_size=4), st.none()))
def test_wrong_version(dealer: zmq.Socket, rid: str, version: object) -> None:
    reply = _exchange(dealer, [_header(v=version, type="hello", id=rid)], "wrong version")
    expected = "E_VERSION" if isinstance(version, int) and not isinstance(version, bool) else "E_BAD_REQUEST"
    assert reply.code == expected and reply.re == rid
    if expected == "E_VERSION":
        assert reply.details == {"supported": [1]}


@FUZZ
@given(
    ids,
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.one_of(st.text(max_size=10), st.integers(), st.none()),
                "dtype": st.one_of(st.sampled_from([*codec.DTYPES, "complex64", "<f4", "object", ""]), st.integers()),
                "shape": st.one_of(st.lists(st.integers(-3, 5), max_size=8), st.integers(), st.text(max_size=3)),
            },
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.binary(max_size=64), max_size=5),
)
def test_wrong_array_tables(dealer: zmq.Socket, rid: str, table: list[dict], buffers: list[bytes]) -> None:
    """Array descriptions with missing or ill-typed entries, counts that differ from the frames that follow."""
    header = _header(v=1, type="refine", id=rid, job="ab", arrays=table)
    reply = _exchange(dealer, [header, *buffers], "wrong array table")
    assert reply.code == "E_BAD_REQUEST" and reply.re == rid


@FUZZ
@given(ids, st.sampled_from(sorted(codec.DTYPES)), st.lists(st.integers(0, 6), min_size=1, max_size=4), st.integers())
def test_lengths_that_do_not_match(dealer: zmq.Socket, rid: str, dtype: str, shape: list[int], delta: int) -> None:
    expected = codec.DTYPES[dtype].itemsize
    for d in shape:
        expected *= d
    size = min(max(0, expected + delta), expected + 4096)
    if size == expected:
        size += 1
    header = _header(v=1, type="refine", id=rid, job="ab", arrays=[{"name": "a", "dtype": dtype, "shape": shape}])
    reply = _exchange(dealer, [header, b"\x01" * size], "length mismatch")
    assert reply.code == "E_BAD_REQUEST" and "do not match" in reply.message


@FUZZ
@given(ids, st.lists(st.integers(2**20, 2**62), min_size=1, max_size=codec.MAX_NDIM), st.binary(max_size=64))
def test_huge_declared_shapes(dealer: zmq.Socket, rid: str, shape: list[int], buf: bytes) -> None:
    """A shape promising terabytes with a few bytes behind it is refused without allocating anything."""
    header = _header(v=1, type="refine", id=rid, job="ab", arrays=[{"name": "p", "dtype": "float64", "shape": shape}])
    reply = _exchange(dealer, [header, buf], "huge shape")
    assert reply.code == "E_BAD_REQUEST" and reply.re == rid


@settings(FUZZ, max_examples=60)
@given(ids, st.integers(1, 3), st.integers(1, SMALL_MAX_MESSAGE_BYTES))
def test_messages_over_the_size_limit(dealer: zmq.Socket, rid: str, parts: int, extra: int) -> None:
    """Total size over --max-message-bytes (each frame under the transport's per-frame cap) -> E_TOO_LARGE."""
    total = SMALL_MAX_MESSAGE_BYTES + extra
    sizes = [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
    header = _header(
        v=1,
        type="ping",
        id=rid,
        arrays=[{"name": f"a{i}", "dtype": "uint8", "shape": [s]} for i, s in enumerate(sizes)],
    )
    reply = _exchange(dealer, [header, *(b"\0" * s for s in sizes)], "too large")
    assert reply.code == "E_TOO_LARGE" and reply.re == rid


@FUZZ
@given(ids, st.one_of(st.text(max_size=20), st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2)))
def test_unknown_types(dealer: zmq.Socket, rid: str, kind: object) -> None:
    if isinstance(kind, str) and kind in m.CLIENT_MESSAGES:
        kind = f"{kind}!"
    reply = _exchange(dealer, [_header(v=1, type=kind, id=rid)], "unknown type")
    assert reply.code == "E_BAD_REQUEST" and "unknown message type" in reply.message and reply.re == rid


# For each client message: one field and JSON values of a type that field does not take.
WRONG_FIELD = {
    ("hello", "client"): st.one_of(st.integers(), st.lists(st.text(max_size=3)), st.booleans(), st.none()),
    ("hello", "versions"): st.one_of(st.text(max_size=3), st.lists(st.text(max_size=3), min_size=1), st.integers()),
    ("submit", "video"): st.one_of(st.integers(), st.floats(), st.dictionaries(st.text(max_size=3), st.integers())),
    ("submit", "settings"): st.one_of(st.lists(st.integers()), st.text(max_size=5), st.integers()),
    ("submit", "frames"): st.one_of(st.text(max_size=5), st.lists(st.floats(), min_size=1), st.integers()),
    ("submit", "preset"): st.one_of(st.integers(), st.lists(st.text(max_size=3)), st.booleans()),
    ("status", "job"): st.one_of(st.integers(), st.none(), st.lists(st.text(max_size=3)), st.booleans()),
    ("cancel", "job"): st.one_of(st.floats(), st.dictionaries(st.text(max_size=3), st.text(max_size=3))),
    ("result", "job"): st.one_of(st.integers(), st.none()),
    ("refine", "settings"): st.one_of(st.text(max_size=5), st.integers(), st.none()),
    ("ping", "re"): st.one_of(st.integers(), st.booleans(), st.lists(st.integers())),
}


@settings(FUZZ, max_examples=200)
@given(ids, st.sampled_from(sorted(WRONG_FIELD)).flatmap(lambda k: st.tuples(st.just(k), WRONG_FIELD[k])))
def test_wrong_field_types(dealer: zmq.Socket, rid: str, case: tuple[tuple[str, str], object]) -> None:
    (kind, name), value = case
    reply = _exchange(dealer, [_header(v=1, type=kind, id=rid, **{name: value})], "wrong field type")
    assert reply.code == "E_BAD_REQUEST" and f"'{name}'" in reply.message and reply.re == rid


@FUZZ
@given(ids, st.sampled_from(sorted(m.CLIENT_MESSAGES)), st.dictionaries(st.text(max_size=6), json_values, max_size=4))
def test_random_headers_without_required_fields(dealer: zmq.Socket, rid: str, kind: str, extra: dict) -> None:
    """Known types with random extra keys but no required fields (no job, no video, no arrays) are refused."""
    if kind in {"hello", "ping"}:
        kind = "status"
    fields = {k: v for k, v in extra.items() if k not in {"v", "type", "id", "arrays", "job", "video"}}
    reply = _exchange(dealer, [_header(**fields, v=1, type=kind, id=rid)], "missing fields")
    assert reply.code == "E_BAD_REQUEST"


def test_the_server_still_serves_after_the_fuzzing(
    dealer: zmq.Socket, server: ServerProcess, test_clip: Path, request: pytest.FixtureRequest
) -> None:
    """Runs after the fuzz tests above (file order): the fuzzed connection and a fresh client both get service."""
    fuzz_tests = {n for n, v in globals().items() if n.startswith("test_") and hasattr(v, "hypothesis")}
    selected = {item.name for item in request.session.items if item.module is request.module}
    if fuzz_tests <= selected:  # the whole module ran (not a -k selection): the count must have been reached
        total = sum(COUNTS.values())
        assert total >= 1000, f"only {total} fuzz messages were sent: {COUNTS}"
    dealer.send_multipart(codec.encode({"type": "ping", "id": "after"}))
    assert dealer.poll(10_000)
    pong = m.parse(dealer.recv_multipart(), m.SERVER_MESSAGES)
    assert isinstance(pong, m.Pong) and pong.re == "after"
    with server.client() as client:
        assert client.hello().server
        job = client.submit(test_clip, method="testcount", frames=(0, 4), settings={"salt": "fuzz"})
        final = client.wait(job, 120)
        assert isinstance(final, m.ResultMessage) and final.result is not None
        assert final.result.meta.frame_indices == [0, 1, 2, 3]
    assert server.proc is not None and server.proc.poll() is None
