"""The multipart wire format: a UTF-8 JSON header frame followed by raw little-endian C-order array frames."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from .errors import BadRequest, TooLarge, VersionMismatch

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({PROTOCOL_VERSION})
MAX_HEADER_BYTES = 256 * 1024
MAX_ARRAYS = 512
MAX_NDIM = 6
DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024 * 1024

DTYPES: dict[str, np.dtype] = {
    name: np.dtype(name).newbyteorder("<")
    for name in (
        "bool",
        "uint8",
        "int8",
        "uint16",
        "int16",
        "uint32",
        "int32",
        "uint64",
        "int64",
        "float16",
        "float32",
        "float64",
    )
}


def encode(header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None) -> list[bytes]:
    """Frames for one message: the header gains `v` and an `arrays` table describing each following frame."""
    header = dict(header)
    header["v"] = header.get("v", PROTOCOL_VERSION)
    table = []
    frames: list[bytes] = []
    for name, value in (arrays or {}).items():
        arr = np.asarray(value)
        dtype_name = arr.dtype.name
        if dtype_name not in DTYPES:
            raise BadRequest(f"array {name!r} has unsupported dtype {arr.dtype}")
        arr = arr.astype(DTYPES[dtype_name], order="C", copy=False)  # keeps 0-d shapes (ascontiguousarray does not)
        table.append({"name": name, "dtype": dtype_name, "shape": list(arr.shape)})
        frames.append(arr.tobytes())
    header["arrays"] = table
    return [json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8"), *frames]


def decode(
    frames: list[bytes], max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Validate and split a multipart message into (header, arrays); raises a VidrigError naming the fault."""
    if not frames:
        raise BadRequest("empty message")
    total = sum(len(f) for f in frames)
    if total > max_bytes:
        raise TooLarge(f"message of {total} bytes exceeds the limit of {max_bytes} bytes")
    raw = bytes(frames[0])
    if len(raw) > MAX_HEADER_BYTES:
        raise TooLarge(f"header of {len(raw)} bytes exceeds the limit of {MAX_HEADER_BYTES} bytes")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BadRequest(f"header frame is not UTF-8 JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise BadRequest("header must be a JSON object")
    version = header.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BadRequest("header field 'v' (protocol version, an integer) is missing or not an integer")
    if version not in SUPPORTED_VERSIONS:
        raise VersionMismatch(
            f"protocol version {version} is not supported (this side speaks {sorted(SUPPORTED_VERSIONS)})",
            details={"supported": sorted(SUPPORTED_VERSIONS)},
        )
    table = header.get("arrays", [])
    if not isinstance(table, list) or len(table) > MAX_ARRAYS:
        raise BadRequest(f"header field 'arrays' must be a list of at most {MAX_ARRAYS} entries")
    if len(table) != len(frames) - 1:
        raise BadRequest(f"header describes {len(table)} arrays but {len(frames) - 1} array frames followed")
    arrays: dict[str, np.ndarray] = {}
    for spec, buf in zip(table, frames[1:], strict=True):
        name, arr = _decode_array(spec, buf)
        if name in arrays:
            raise BadRequest(f"array {name!r} appears twice")
        arrays[name] = arr
    return header, arrays


def _decode_array(spec: Any, buf: bytes) -> tuple[str, np.ndarray]:
    """One array frame checked against its {name, dtype, shape} description."""
    if not isinstance(spec, dict):
        raise BadRequest("each 'arrays' entry must be an object with name, dtype and shape")
    name, dtype_name, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
    if not isinstance(name, str) or not name or len(name) > 128:
        raise BadRequest("array name must be a non-empty string of at most 128 characters")
    if dtype_name not in DTYPES:
        raise BadRequest(f"array {name!r}: dtype {dtype_name!r} is not one of {sorted(DTYPES)}")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise BadRequest(f"array {name!r}: shape must be a list of at most {MAX_NDIM} non-negative integers")
    dtype = DTYPES[dtype_name]
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(buf):
        raise BadRequest(f"array {name!r}: {len(buf)} bytes do not match shape {shape} of {dtype_name}")
    arr = np.frombuffer(buf, dtype=dtype).reshape(shape)
    if dtype_name == "bool" and arr.size and arr.view(np.uint8).max() > 1:
        raise BadRequest(f"array {name!r}: bool values must be 0 or 1")
    return name, arr.astype(dtype.newbyteorder("="), copy=False)
