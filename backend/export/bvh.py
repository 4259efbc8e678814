"""BVH export of the SMPL-X skeleton: offsets from the result's rest joints, ZXY Euler channels per joint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from protocol.errors import BadRequest
from protocol.result import Result
from protocol.skeleton import JOINT_NAMES


def write_bvh(result: Result, path: Path) -> Path:
    """Write the body motion as BVH (centimetres, Y up); rest frames are world-aligned so rotations map 1:1."""
    if result.smplx is None or result.rest is None:
        raise BadRequest("BVH export needs a body result with rest joints")
    joints = np.asarray(result.rest.joints, np.float64)
    parents = [int(p) for p in result.rest.parents]
    children: dict[int, list[int]] = {i: [] for i in range(len(parents))}
    for i, p in enumerate(parents):
        if p >= 0:
            children[p].append(i)
    scale = 100.0
    lines = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        pad = "  " * depth
        offset = joints[j] - (joints[parents[j]] if parents[j] >= 0 else 0.0)
        kind = "ROOT" if parents[j] < 0 else "JOINT"
        lines.append(f"{pad}{kind} {JOINT_NAMES[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}  OFFSET {' '.join(f'{v * scale:.4f}' for v in offset)}")
        channels = "6 Xposition Yposition Zposition" if parents[j] < 0 else "3"
        lines.append(f"{pad}  CHANNELS {channels} Zrotation Xrotation Yrotation")
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            lines.append(f"{pad}  End Site")
            lines.append(f"{pad}  {{")
            lines.append(f"{pad}    OFFSET 0.0 {0.02 * scale:.4f} 0.0")
            lines.append(f"{pad}  }}")
        lines.append(f"{pad}}}")

    order = []

    def walk(j: int) -> None:
        order.append(j)
        for c in children[j]:
            walk(c)

    emit(0, 0)
    walk(0)
    poses = result.smplx.poses().reshape(-1, 55, 3).astype(np.float64)
    t = poses.shape[0]
    euler = Rotation.from_rotvec(poses.reshape(-1, 3)).as_euler("ZXY", degrees=True).reshape(t, 55, 3)
    root = (np.asarray(result.smplx.transl, np.float64) + joints[0]) * scale
    lines += ["MOTION", f"Frames: {t}", f"Frame Time: {1.0 / max(result.meta.fps, 1e-6):.6f}"]
    for f in range(t):
        values = list(root[f]) + [v for j in order for v in euler[f, j]]
        lines.append(" ".join(f"{v:.4f}" for v in values))
    path.write_text("\n".join(lines) + "\n")
    return path
