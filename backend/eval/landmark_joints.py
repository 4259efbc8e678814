"""Map mediapipe's per-frame 3D landmarks (body 33, hand 21) onto the SMPL-X joints both skeletons define.

The raw-mediapipe baseline of `vidrig bench` is scored on these joints only, and every other row is scored
on the same subset so that the columns compare like with like.

Body (mediapipe Pose index -> SMPL-X joint; mediapipe's left/right are the person's own sides):
    23/24 hips -> left_hip/right_hip, 25/26 knees -> left_knee/right_knee, 27/28 ankles -> left_ankle/right_ankle,
    11/12 shoulders -> left_shoulder/right_shoulder, 13/14 elbows -> left_elbow/right_elbow,
    15/16 wrists -> left_wrist/right_wrist, and pelvis = the mid-point of the two hips.
Hands (mediapipe Hand index -> SMPL-X joint, per side):
    0 wrist -> <side>_wrist; index 5/6/7 (MCP/PIP/DIP) -> index1/2/3; middle 9/10/11 -> middle1/2/3;
    ring 13/14/15 -> ring1/2/3; pinky 17/18/19 -> pinky1/2/3; thumb 1/2/3 (CMC/MCP/IP) -> thumb1/2/3.
    Fingertips (4, 8, 12, 16, 20) have no SMPL-X joint and are dropped.
Joints mediapipe does not define are NaN, so a metric that touched one would show it.

The two skeletons place some joints differently (mediapipe's hip landmarks sit wider and lower than SMPL-X's hip
joints), so the baseline's errors include that definition offset; it is part of what "raw mediapipe" costs.
"""

from __future__ import annotations

import numpy as np

from protocol.errors import BadRequest
from protocol.skeleton import JOINT_INDEX, NUM_JOINTS

MP_BODY_TO_SMPLX: dict[int, str] = {
    23: "left_hip", 24: "right_hip", 25: "left_knee", 26: "right_knee", 27: "left_ankle", 28: "right_ankle",
    11: "left_shoulder", 12: "right_shoulder", 13: "left_elbow", 14: "right_elbow", 15: "left_wrist",
    16: "right_wrist",
}
MP_HIPS = (23, 24)

# mediapipe Hand landmark index -> SMPL-X hand joint name without the side prefix.
MP_HAND_TO_SMPLX: dict[int, str] = {
    0: "wrist",
    5: "index1", 6: "index2", 7: "index3",
    9: "middle1", 10: "middle2", 11: "middle3",
    13: "ring1", 14: "ring2", 15: "ring3",
    17: "pinky1", 18: "pinky2", 19: "pinky3",
    1: "thumb1", 2: "thumb2", 3: "thumb3",
}
SIDES = ("left", "right")

# The body joints every row of the table is scored on (SMPL-X indices), pelvis excluded: it is derived from the
# hips, and the metrics already centre on the hips' mid-point.
BODY_SUBSET: tuple[int, ...] = tuple(sorted(JOINT_INDEX[name] for name in MP_BODY_TO_SMPLX.values()))
BODY_SUBSET_LABEL = "12 joints: hips, knees, ankles, shoulders, elbows, wrists"


def body_landmarks_to_joints(kp3d: np.ndarray) -> np.ndarray:
    """mediapipe body landmarks (T,33,>=3) -> SMPL-X joints (T,55,3), NaN where mediapipe has no counterpart."""
    kp = np.asarray(kp3d, dtype=np.float64)
    if kp.ndim != 3 or kp.shape[1] != 33 or kp.shape[2] < 3:
        raise BadRequest(f"mediapipe body landmarks must be (T, 33, >=3), got {kp.shape}")
    out = np.full((kp.shape[0], NUM_JOINTS, 3), np.nan)
    for mp_index, name in MP_BODY_TO_SMPLX.items():
        out[:, JOINT_INDEX[name]] = kp[:, mp_index, :3]
    out[:, JOINT_INDEX["pelvis"]] = kp[:, list(MP_HIPS), :3].mean(axis=1)
    return out


def hand_landmarks_to_joints(kp3d: np.ndarray) -> np.ndarray:
    """mediapipe hand landmarks (T,2,21,3), index 0 = the person's left hand -> SMPL-X joints (T,55,3).

    Each hand fills its wrist and 15 finger joints; everything else is NaN.
    """
    kp = np.asarray(kp3d, dtype=np.float64)
    if kp.ndim != 4 or kp.shape[1:3] != (2, 21) or kp.shape[3] < 3:
        raise BadRequest(f"mediapipe hand landmarks must be (T, 2, 21, >=3), got {kp.shape}")
    out = np.full((kp.shape[0], NUM_JOINTS, 3), np.nan)
    for col, side in enumerate(SIDES):
        for mp_index, name in MP_HAND_TO_SMPLX.items():
            out[:, JOINT_INDEX[f"{side}_{name}"]] = kp[:, col, mp_index, :3]
    return out
