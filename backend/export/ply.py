"""Binary little-endian PLY of the scene point cloud with per-point colour."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from protocol.errors import BadRequest
from protocol.result import Result


def write_ply(result: Result, path: Path) -> Path:
    """Write `result.scene` as PLY (x, y, z float32; red, green, blue uint8)."""
    if result.scene is None:
        raise BadRequest("this result has no scene points to export as PLY")
    pts = np.asarray(result.scene.points, np.float32)
    cols = np.asarray(result.scene.colors, np.uint8)
    rec = np.empty(len(pts), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    rec["x"], rec["y"], rec["z"] = pts.T
    rec["r"], rec["g"], rec["b"] = cols.T
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment VidRig scene points (Y up, metres up to scale)\n"
        f"element vertex {len(pts)}\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n"
    )
    path.write_bytes(header.encode("ascii") + rec.tobytes())
    return path
