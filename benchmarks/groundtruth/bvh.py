"""A small BVH reader and forward kinematics (numpy + scipy), for the CMU takes in shared/data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from protocol.errors import DecodeError

_ROT_AXES = {"Xrotation": "X", "Yrotation": "Y", "Zrotation": "Z"}
_POS_AXES = {"Xposition": 0, "Yposition": 1, "Zposition": 2}


@dataclass
class BvhSkeleton:
    """The hierarchy of a BVH file: joint names, parents (-1 = root), offsets and channel layout."""

    names: list[str]
    parents: list[int]
    offsets: np.ndarray  # (J,3) in file units
    channels: list[list[str]]  # per joint, channel names in file order
    channel_start: list[int]  # per joint, first column of its channels in a motion row

    def index(self, name: str) -> int:
        """Index of a joint by name; DecodeError names the missing joint."""
        try:
            return self.names.index(name)
        except ValueError as exc:
            raise DecodeError(f"BVH has no joint named {name!r}") from exc


@dataclass
class BvhMotion:
    """A parsed BVH file: skeleton, per-frame channel values and the frame time in seconds."""

    skeleton: BvhSkeleton
    values: np.ndarray  # (T, C) channel values as written (degrees, file units)
    frame_time: float

    @property
    def fps(self) -> float:
        """Frames per second from the frame time."""
        return 1.0 / self.frame_time

    @property
    def num_frames(self) -> int:
        """Number of frames T."""
        return int(self.values.shape[0])


def parse_bvh(path: str | Path) -> BvhMotion:
    """Read a BVH file (hierarchy + motion); DecodeError with the path when it is malformed."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise DecodeError(f"cannot read BVH file {p}: {exc}") from exc
    tokens = text.split()
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    starts: list[int] = []
    stack: list[int] = []
    column = 0
    i = 0
    pending_end = False
    try:
        if tokens[0] != "HIERARCHY":
            raise DecodeError(f"{p} does not start with HIERARCHY")
        i = 1
        while tokens[i] != "MOTION":
            tok = tokens[i]
            if tok in ("ROOT", "JOINT"):
                names.append(tokens[i + 1])
                parents.append(stack[-1] if stack else -1)
                offsets.append([0.0, 0.0, 0.0])
                channels.append([])
                starts.append(column)
                i += 2
            elif tok == "End":
                pending_end = True
                i += 2
            elif tok == "{":
                stack.append(-2 if pending_end else len(names) - 1)
                pending_end = False
                i += 1
            elif tok == "}":
                stack.pop()
                i += 1
            elif tok == "OFFSET":
                vals = [float(t) for t in tokens[i + 1:i + 4]]
                if stack and stack[-1] != -2:
                    offsets[stack[-1]] = vals
                i += 4
            elif tok == "CHANNELS":
                count = int(tokens[i + 1])
                chans = tokens[i + 2:i + 2 + count]
                channels[stack[-1]] = chans
                column += count
                i += 2 + count
            else:
                raise DecodeError(f"{p}: unexpected token {tok!r} in the hierarchy")
        # parents recorded while inside End Site blocks never happen (End Sites add no joint)
        if tokens[i + 1] != "Frames:" or tokens[i + 3:i + 5] != ["Frame", "Time:"]:
            raise DecodeError(f"{p}: MOTION header is not 'Frames: N Frame Time: dt'")
        frames = int(tokens[i + 2])
        frame_time = float(tokens[i + 5])
        data = np.array(tokens[i + 6:], dtype=np.float64)
    except (IndexError, ValueError) as exc:
        raise DecodeError(f"{p}: malformed BVH ({exc})") from exc
    if data.size != frames * column:
        raise DecodeError(f"{p}: expected {frames} frames x {column} channels, found {data.size} numbers")
    skeleton = BvhSkeleton(names, parents, np.array(offsets), channels, starts)
    return BvhMotion(skeleton, data.reshape(frames, column), frame_time)


def local_transforms(motion: BvhMotion) -> tuple[np.ndarray, np.ndarray]:
    """Per frame and joint, the local rotation matrices (T,J,3,3) and translations (T,J,3).

    A joint's translation is its offset plus any position channels; rotation channels compose in the
    order they are listed (intrinsic, so 'Z Y X' gives Rz @ Ry @ Rx).
    """
    sk = motion.skeleton
    frames, joints = motion.num_frames, len(sk.names)
    rots = np.tile(np.eye(3), (frames, joints, 1, 1))
    trans = np.tile(sk.offsets[None], (frames, 1, 1))
    for j, chans in enumerate(sk.channels):
        axes = ""
        cols: list[int] = []
        for k, ch in enumerate(chans):
            col = sk.channel_start[j] + k
            if ch in _ROT_AXES:
                axes += _ROT_AXES[ch]
                cols.append(col)
            elif ch in _POS_AXES:
                trans[:, j, _POS_AXES[ch]] += motion.values[:, col]
            else:
                raise DecodeError(f"unknown BVH channel {ch!r} on joint {sk.names[j]}")
        if axes:
            rots[:, j] = Rotation.from_euler(axes, motion.values[:, cols], degrees=True).as_matrix()
    return rots, trans


def forward_kinematics(motion: BvhMotion) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (T,J,3,3) and positions (T,J,3) of every joint, in file units and axes."""
    rots, trans = local_transforms(motion)
    glob_r = np.empty_like(rots)
    glob_p = np.empty_like(trans)
    for j, parent in enumerate(motion.skeleton.parents):
        if parent < 0:
            glob_r[:, j] = rots[:, j]
            glob_p[:, j] = trans[:, j]
        else:
            glob_r[:, j] = glob_r[:, parent] @ rots[:, j]
            glob_p[:, j] = glob_p[:, parent] + np.einsum("tij,tj->ti", glob_r[:, parent], trans[:, j])
    return glob_r, glob_p
