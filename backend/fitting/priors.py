"""Pose priors that need no learned model: a relaxed hand, which the solve pulls unseen hands towards."""

from __future__ import annotations

import torch
from torch import Tensor

# Flexion (radians) of the finger joints 1, 2, 3 in a relaxed hand; fingers curl towards the palm, which faces
# down (-y) at rest, so left fingers (pointing +x) turn about -z and right ones (pointing -x) about +z.
RELAXED_FLEXION = (0.25, 0.35, 0.2)
RELAXED_THUMB = (0.1, 0.15, 0.1)


def relaxed_hand_pose(side: str, dtype: torch.dtype = torch.float32) -> Tensor:
    """(15,3) axis-angle of a relaxed, slightly curled hand in SMPL-X finger order (index, middle, pinky, ring,
    thumb)."""
    sign = -1.0 if side == "left" else 1.0
    pose = torch.zeros(15, 3, dtype=dtype)
    for finger in range(5):
        flex = RELAXED_THUMB if finger == 4 else RELAXED_FLEXION
        for k in range(3):
            pose[3 * finger + k, 2] = sign * flex[k]
    return pose

