"""The wire codec: every dtype byte-exact (empty, non-contiguous, big-endian inputs); malformed frames refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from protocol import codec
from protocol.errors import BadRequest, TooLarge, VersionMismatch

SHAPES = [(), (0,), (3, 0, 2), (7,), (4, 5), (2, 3, 4)]


def _sample(dtype_name: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Deterministic values spanning the dtype's range (bools 0/1)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype_name)
    if dtype.kind == "b":
        return rng.random(shape) > 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return (rng.standard_normal(shape) * 1e3).astype(dtype)


def _native(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))


@pytest.mark.parametrize("dtype_name", sorted(codec.DTYPES))
@pytest.mark.parametrize("shape", SHAPES)
def test_every_dtype_and_shape_round_trips_byte_exact(dtype_name: str, shape: tuple[int, ...]) -> None:
    arr = _sample(dtype_name, shape)
    frames = codec.encode({"type": "x"}, {"a": arr})
    assert frames[1] == arr.astype(np.dtype(dtype_name).newbyteorder("<")).tobytes(order="C")
    header, arrays = codec.decode(frames)
    assert header["arrays"] == [{"name": "a", "dtype": dtype_name, "shape": list(shape)}]
    out = arrays["a"]
    assert out.dtype == np.dtype(dtype_name) and out.shape == shape
    assert out.tobytes() == arr.tobytes()


@pytest.mark.parametrize("dtype_name", sorted(codec.DTYPES))
def test_non_contiguous_and_big_endian_inputs(dtype_name: str) -> None:
    base = _sample(dtype_name, (6, 8), seed=1)
    views = {
        "strided": base[::2, 1::3],
        "transposed": base.T,
        "fortran": np.asfortranarray(base),
        "negative_step": base[::-1, ::-2],
        "big_endian": base.astype(base.dtype.newbyteorder(">")),
    }
    header, arrays = codec.decode(codec.encode({}, views))
    assert [a["name"] for a in header["arrays"]] == list(views)
    for name, view in views.items():
        out = arrays[name]
        assert out.shape == view.shape and out.dtype == np.dtype(dtype_name), name
        assert out.tobytes() == _native(view).tobytes(), name
        np.testing.assert_array_equal(out, view)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    hnp.arrays(
        dtype=st.sampled_from(sorted(codec.DTYPES)).map(np.dtype),
        shape=hnp.array_shapes(min_dims=0, max_dims=codec.MAX_NDIM, min_side=0, max_side=4),
    )
)
def test_random_arrays_round_trip_byte_exact(arr: np.ndarray) -> None:
    """NaN payloads, signed zeros and infinities included: compared as bytes, not values."""
    _, arrays = codec.decode(codec.encode({"type": "t"}, {"x": arr}))
    assert arrays["x"].dtype == arr.dtype and arrays["x"].shape == arr.shape
    assert arrays["x"].tobytes() == np.ascontiguousarray(arr).tobytes()


def test_header_is_compact_utf8_json_with_version_and_table() -> None:
    frames = codec.encode({"type": "ping", "id": "é"}, {"p": np.zeros((2, 3), np.float32)})
    assert frames[0] == (
        b'{"type":"ping","id":"\\u00e9","v":1,"arrays":[{"name":"p","dtype":"float32","shape":[2,3]}]}'
    )
    assert codec.decode([frames[0].replace(b"\\u00e9", "é".encode()), frames[1]])[0]["id"] == "é"

    assert len(frames) == 2 and len(frames[1]) == 24


def test_encode_refuses_unsupported_dtypes_and_nan_in_header() -> None:
    for bad in (np.zeros(2, np.complex64), np.array(["a"]), np.array([object()]), np.zeros(2, "datetime64[s]")):
        with pytest.raises(BadRequest, match="unsupported dtype"):
            codec.encode({}, {"bad": bad})
    with pytest.raises(ValueError):
        codec.encode({"x": float("nan")})


def _frames(header: object, *arrays: bytes) -> list[bytes]:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return [raw, *arrays]


GOOD_SPEC = {"name": "a", "dtype": "float32", "shape": [2]}
MALFORMED = [
    ([], BadRequest, "empty"),
    ([b"\xff\xfe"], BadRequest, "UTF-8 JSON"),
    ([b"{not json"], BadRequest, "UTF-8 JSON"),
    ([b"[1, 2]"], BadRequest, "JSON object"),
    (_frames({"type": "ping"}), BadRequest, "'v'"),
    (_frames({"v": True}), BadRequest, "'v'"),
    (_frames({"v": "1"}), BadRequest, "'v'"),
    (_frames({"v": 2}), VersionMismatch, "version 2"),
    (_frames({"v": 0}), VersionMismatch, "version 0"),
    (_frames({"v": 1, "arrays": {}}), BadRequest, "'arrays'"),
    (_frames({"v": 1, "arrays": [GOOD_SPEC] * (codec.MAX_ARRAYS + 1)}), BadRequest, "'arrays'"),
    (_frames({"v": 1, "arrays": [GOOD_SPEC]}), BadRequest, "1 arrays but 0"),
    (_frames({"v": 1}, b"\0" * 8), BadRequest, "0 arrays but 1"),
    (_frames({"v": 1, "arrays": ["a"]}, b""), BadRequest, "object"),
    (_frames({"v": 1, "arrays": [{"name": "", "dtype": "uint8", "shape": [0]}]}, b""), BadRequest, "name"),
    (_frames({"v": 1, "arrays": [{"name": 3, "dtype": "uint8", "shape": [0]}]}, b""), BadRequest, "name"),
    (_frames({"v": 1, "arrays": [{"name": "a" * 129, "dtype": "uint8", "shape": [0]}]}, b""), BadRequest, "name"),
    (_frames({"v": 1, "arrays": [{"name": "a", "dtype": "object", "shape": [1]}]}, b"\0" * 8), BadRequest, "dtype"),
    (_frames({"v": 1, "arrays": [{"name": "a", "dtype": "<f4", "shape": [1]}]}, b"\0" * 4), BadRequest, "dtype"),
    (_frames({"v": 1, "arrays": [{"name": "a", "dtype": "uint8", "shape": [-1]}]}, b""), BadRequest, "shape"),
    (_frames({"v": 1, "arrays": [{"name": "a", "dtype": "uint8", "shape": [True]}]}, b"\0"), BadRequest, "shape"),
    (_frames({"v": 1, "arrays": [{"name": "a", "dtype": "uint8", "shape": [1.0]}]}, b"\0"), BadRequest, "shape"),
    (_frames({"v": 1, "arrays": [{"name": "a", "dtype": "uint8", "shape": 1}]}, b"\0"), BadRequest, "shape"),
    (_frames({"v": 1, "arrays": [{"name": "a", "dtype": "uint8", "shape": [1] * 7}]}, b"\0"), BadRequest, "shape"),
    (_frames({"v": 1, "arrays": [GOOD_SPEC]}, b"\0" * 7), BadRequest, "7 bytes"),
    (_frames({"v": 1, "arrays": [GOOD_SPEC]}, b"\0" * 9), BadRequest, "9 bytes"),
    (
        _frames({"v": 1, "arrays": [{"name": "a", "dtype": "float64", "shape": [2**40, 2**40]}]}, b"\0" * 8),
        BadRequest,
        "do not match",
    ),
    (_frames({"v": 1, "arrays": [GOOD_SPEC, GOOD_SPEC]}, b"\0" * 8, b"\0" * 8), BadRequest, "twice"),
    (
        _frames({"v": 1, "arrays": [{"name": "m", "dtype": "bool", "shape": [3]}]}, b"\x00\x01\x02"),
        BadRequest,
        "0 or 1",
    ),
    ([b" " * (codec.MAX_HEADER_BYTES + 1)], TooLarge, "header"),
]


@pytest.mark.parametrize(("frames", "error", "match"), MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_messages_are_refused_with_the_right_error(
    frames: list[bytes], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        codec.decode(frames)


def test_total_size_limit_counts_every_frame() -> None:
    frames = codec.encode({"type": "x"}, {"a": np.zeros(100, np.uint8), "b": np.zeros(100, np.uint8)})
    codec.decode(frames, max_bytes=sum(map(len, frames)))
    with pytest.raises(TooLarge, match="exceeds the limit"):
        codec.decode(frames, max_bytes=sum(map(len, frames)) - 1)


def test_version_error_lists_supported_versions() -> None:
    with pytest.raises(VersionMismatch) as info:
        codec.decode(_frames({"v": 9}))
    assert info.value.details == {"supported": [codec.PROTOCOL_VERSION]}
