"""Joint-angle limits of the 21 SMPL-X body joints, as ranges of the local axis-angle components.

Every SMPL-X joint frame is world-aligned at rest (x = the person's left, y = up, z = forward), so the three
axis-angle components of a local rotation are, for moderate angles, the rotations about those axes. Ranges below
are in degrees, generous anatomical ranges (a prior against impossible poses, not a tight model):

- hips: x -140..45 (negative = leg forward, flexion), y -45..45 (axial), z abduction 70 / adduction 30
  (left +z outward, right -z outward);
- knees: x 0..150 (positive = flexion; no backward bending), y -20..20, z -10..10 (hinge-like);
- ankles: x -45..50, y -30..30, z -30..30; feet (toes): x -30..45, y -10..10, z -15..15;
- spine1/2/3: x -30..50 (positive = bend forward), y -35..35 (twist), z -30..30 (side bend);
- neck and head: x -45..50, y -60..60, z -35..35; collars: x -20..20, y -30..30, z -25..25;
- shoulders: x -110..110 (twist), y -110..110, z -120..120 (wide: the collar-shoulder complex);
- elbows: y flexion 0..155 (left flexes about -y, right about +y; no backward bending), x -70..70 (forearm
  twist share), z -15..15 (hinge-like);
- wrists: x -70..70 (pronation share), y -40..40 (radial/ulnar deviation), z -80..80 (flexion/extension).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from protocol.skeleton import JOINT_NAMES


def _sym(x: float, y: float, z: float) -> tuple[tuple[float, float], ...]:
    """Symmetric ranges +-x, +-y, +-z."""
    return ((-x, x), (-y, y), (-z, z))


LIMITS_DEG: dict[str, tuple[tuple[float, float], ...]] = {
    "left_hip": ((-140, 45), (-45, 45), (-30, 70)),
    "right_hip": ((-140, 45), (-45, 45), (-70, 30)),
    "left_knee": ((0, 150), (-20, 20), (-10, 10)),
    "right_knee": ((0, 150), (-20, 20), (-10, 10)),
    "left_ankle": ((-45, 50), (-30, 30), (-30, 30)),
    "right_ankle": ((-45, 50), (-30, 30), (-30, 30)),
    "left_foot": ((-30, 45), (-10, 10), (-15, 15)),
    "right_foot": ((-30, 45), (-10, 10), (-15, 15)),
    "spine1": ((-30, 50), (-35, 35), (-30, 30)),
    "spine2": ((-30, 50), (-35, 35), (-30, 30)),
    "spine3": ((-30, 50), (-35, 35), (-30, 30)),
    "neck": ((-45, 50), (-60, 60), (-35, 35)),
    "head": ((-45, 50), (-60, 60), (-35, 35)),
    "left_collar": _sym(20, 30, 25),
    "right_collar": _sym(20, 30, 25),
    "left_shoulder": _sym(110, 110, 120),
    "right_shoulder": _sym(110, 110, 120),
    "left_elbow": ((-70, 70), (-155, 0), (-15, 15)),
    "right_elbow": ((-70, 70), (0, 155), (-15, 15)),
    "left_wrist": _sym(70, 40, 80),
    "right_wrist": _sym(70, 40, 80),
}


def limit_table(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Lower and upper bounds (21,3) in radians for body_pose (joints 1..21 in SMPL-X order)."""
    lo = torch.empty(21, 3, dtype=torch.float64)
    hi = torch.empty(21, 3, dtype=torch.float64)
    for i, name in enumerate(JOINT_NAMES[1:22]):
        for axis, (a, b) in enumerate(LIMITS_DEG[name]):
            lo[i, axis], hi[i, axis] = math.radians(a), math.radians(b)
    return lo.to(device=device, dtype=dtype), hi.to(device=device, dtype=dtype)


def limit_excess(body_pose: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """How far (radians) each body_pose (...,J,3) component lies beyond its range (0 inside): one clamp and one
    difference, whose squares the solve sums with its pose prior's."""
    return body_pose - body_pose.clamp(lo, hi)
