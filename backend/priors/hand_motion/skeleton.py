"""The prior's canonical right hand: rest joints in SMPL-X hand order, per-joint anatomical axes and limits.

The prior works on local joint rotations (axis-angle in the joint frames of SMPL-X / MANO, flat hand at zero,
world-aligned rest frames, T-pose: the right hand's fingers point along -X, the palm faces -Y, the thumb +Z).
This skeleton only serves the prior's forward-kinematics loss and the synthetic motion generator; fitting
uses the job's real hand model. Left hands are handled by mirroring (see `mirror_hand_pose`).

Proportions are an adult hand (wrist to middle MCP 92 mm) chosen inside the Hand-BMC ranges
(`shared/data/hand_bmc` beside the checkout, MIT, (c) 2021 Hao Meng): every normalised bone length and every angle
between neighbouring wrist-to-MCP bones lies within the tables' min/max (checked by the unit tests).

Each joint gets an orthonormal anatomical triple (flexion axis, abduction axis, bone direction). A local
rotation's axis-angle vector decomposes exactly into (flex, abd, twist) = its components along that triple;
`LIMITS_DEG` bounds those components (typical active ranges of motion, Hume et al. 1990 and the AAOS
tables, rounded outward).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from backend.geometry.rotations import axis_angle_to_matrix

# SMPL-X hand joint order (15, wrist excluded): index, middle, pinky, ring, thumb; 3 joints each.
FINGERS: tuple[str, ...] = ("index", "middle", "pinky", "ring", "thumb")
HAND_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)  # 16 = wrist + 15

# Hand-local directions of the right hand in the world at rest: along the fingers, towards the thumb, dorsal.
_U = np.array([-1.0, 0.0, 0.0])
_V = np.array([0.0, 0.0, 1.0])
_N = np.array([0.0, 1.0, 0.0])

# Per finger: wrist->MCP length (m), its angle towards the thumb (deg), palmar drop (m), phalanx lengths
# (proximal, middle, distal-to-tip) and the finger's own angle towards the thumb (deg).
_FINGER_GEOMETRY: dict[str, tuple[float, float, float, tuple[float, float, float], float]] = {
    "index": (0.094, 15.0, 0.000, (0.041, 0.026, 0.024), 4.0),
    "middle": (0.092, 0.0, 0.001, (0.045, 0.029, 0.025), 0.0),
    "ring": (0.087, -13.0, -0.001, (0.042, 0.028, 0.025), -4.0),
    "pinky": (0.080, -29.0, -0.004, (0.033, 0.021, 0.022), -10.0),
}
_THUMB_ROOT = (0.046, 48.0, -0.014)  # wrist->CMC length, angle towards the thumb side, palmar drop
_THUMB_BONES = (0.039, 0.033, 0.029)  # CMC->MCP, MCP->IP, IP->tip
_THUMB_DIR_DEG = 40.0  # the thumb's direction from the fingers' axis towards the thumb side
_THUMB_PALMAR = 0.3  # palmar component of the thumb's direction
_THUMB_FLEX_MIX = (0.55, 0.83)  # thumb flexion moves the tip towards -V (ulnar) and -N (palmar) in this mix


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _in_plane(angle_deg: float) -> np.ndarray:
    a = math.radians(angle_deg)
    return math.cos(a) * _U + math.sin(a) * _V


def _build() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rest joints (16,3), fingertips (5,3) in FINGERS order, and axes (15,3,3) rows = flex, abd, bone."""
    joints = np.zeros((16, 3))
    tips = np.zeros((5, 3))
    axes = np.zeros((15, 3, 3))
    for f, name in enumerate(FINGERS):
        base = 1 + 3 * f
        if name == "thumb":
            root_len, root_deg, drop = _THUMB_ROOT
            bones = _THUMB_BONES
            d = _unit(_in_plane(_THUMB_DIR_DEG) - _THUMB_PALMAR * _N)
            motion = -_THUMB_FLEX_MIX[0] * _V - _THUMB_FLEX_MIX[1] * _N
        else:
            root_len, root_deg, drop, bones, own_deg = _FINGER_GEOMETRY[name]
            d = _in_plane(own_deg)
            motion = -_N
        motion = _unit(motion - (motion @ d) * d)
        flex = np.cross(d, motion)
        abd = np.cross(d, flex)
        p = root_len * _in_plane(root_deg) + drop * _N
        for k in range(3):
            joints[base + k] = p
            axes[base - 1 + k] = np.stack([flex, abd, d])
            p = p + bones[k] * d
        tips[f] = p
    return joints, tips, axes


REST_JOINTS, REST_TIPS, JOINT_AXES = _build()

# (flex, abd, twist) limits in degrees per finger joint (1 = proximal, 2 = middle, 3 = distal).
_FINGER_LIMITS = ((-25.0, 90.0, -22.0, 22.0, -12.0, 12.0), (-5.0, 110.0, -6.0, 6.0, -8.0, 8.0),
                  (-10.0, 90.0, -6.0, 6.0, -8.0, 8.0))
_THUMB_LIMITS = ((-25.0, 60.0, -25.0, 50.0, -35.0, 35.0), (-10.0, 65.0, -12.0, 12.0, -12.0, 12.0),
                 (-15.0, 85.0, -6.0, 6.0, -8.0, 8.0))
LIMITS_DEG: np.ndarray = np.array(
    [lim for name in FINGERS for lim in (_THUMB_LIMITS if name == "thumb" else _FINGER_LIMITS)]
).reshape(15, 3, 2)  # (joint, [flex, abd, twist], [min, max])

# mediapipe hand landmark k -> (kind, index): kind 0 = joint of the 16, kind 1 = fingertip of FINGERS.
_MP_FINGER_ORDER = ("thumb", "index", "middle", "ring", "pinky")
MEDIAPIPE_FROM_HAND: tuple[tuple[int, int], ...] = ((0, 0), *(
    item for name in _MP_FINGER_ORDER
    for item in ((0, 1 + 3 * FINGERS.index(name)), (0, 2 + 3 * FINGERS.index(name)),
                 (0, 3 + 3 * FINGERS.index(name)), (1, FINGERS.index(name)))
))


def mirror_hand_pose(pose: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """Left <-> right hand pose (..., 3) axis-angle under the X mirror of SMPL-X: (x, y, z) -> (x, -y, -z)."""
    sign = np.array([1.0, -1.0, -1.0], np.float32)
    if isinstance(pose, Tensor):
        return pose * torch.as_tensor(sign, dtype=pose.dtype, device=pose.device)
    return pose * sign.astype(pose.dtype)


def to_anatomical(pose: Tensor) -> Tensor:
    """Right-hand local axis-angle (..., 15, 3) -> (flex, abd, twist) components (..., 15, 3) in radians."""
    axes = torch.as_tensor(JOINT_AXES, dtype=pose.dtype, device=pose.device)
    return torch.einsum("jab,...jb->...ja", axes, pose)


def from_anatomical(angles: Tensor) -> Tensor:
    """(flex, abd, twist) radians (..., 15, 3) -> right-hand local axis-angle (..., 15, 3)."""
    axes = torch.as_tensor(JOINT_AXES, dtype=angles.dtype, device=angles.device)
    return torch.einsum("jab,...ja->...jb", axes, angles)


def limit_violation(pose: Tensor) -> Tensor:
    """How far (radians, >= 0) each anatomical component of a right-hand pose (..., 15, 3) is outside its limits."""
    ang = to_anatomical(pose)
    lim = torch.as_tensor(np.radians(LIMITS_DEG), dtype=pose.dtype, device=pose.device)
    return torch.relu(lim[..., 0] - ang) + torch.relu(ang - lim[..., 1])


def clamp_to_limits(angles: np.ndarray) -> np.ndarray:
    """Clip (flex, abd, twist) radians (..., 15, 3) into the anatomical box."""
    lim = np.radians(LIMITS_DEG)
    return np.clip(angles, lim[..., 0], lim[..., 1])


def hand_fk(rot_mats: Tensor, scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """Forward kinematics of the canonical right hand: local rotations (..., 15, 3, 3), wrist at the origin.

    Returns the 16 joints (..., 16, 3) and the 21 mediapipe landmarks (..., 21, 3), in metres times `scale`.
    """
    dtype, device = rot_mats.dtype, rot_mats.device
    rest = torch.as_tensor(REST_JOINTS * scale, dtype=dtype, device=device)
    tips = torch.as_tensor(REST_TIPS * scale, dtype=dtype, device=device)
    lead = rot_mats.shape[:-3]
    glob: list[Tensor] = [torch.eye(3, dtype=dtype, device=device).expand(*lead, 3, 3)]
    pos: list[Tensor] = [torch.zeros(*lead, 3, dtype=dtype, device=device)]
    for j in range(1, 16):
        p = HAND_PARENTS[j]
        glob.append(glob[p] @ rot_mats[..., j - 1, :, :])
        pos.append(pos[p] + glob[p] @ (rest[j] - rest[p]))
    joints = torch.stack(pos, dim=-2)
    tip_pos = [pos[3 + 3 * f] + glob[3 + 3 * f] @ (tips[f] - rest[3 + 3 * f]) for f in range(5)]
    tip_t = torch.stack(tip_pos, dim=-2)
    landmarks = torch.stack([joints[..., i, :] if kind == 0 else tip_t[..., i, :] for kind, i in MEDIAPIPE_FROM_HAND],
                            dim=-2)
    return joints, landmarks


def hand_fk_aa(pose: Tensor, scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """`hand_fk` from axis-angle (..., 15, 3)."""
    return hand_fk(axis_angle_to_matrix(pose), scale)
