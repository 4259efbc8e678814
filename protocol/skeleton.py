"""The SMPL-X 55-joint skeleton (names and parents) and the MANO / mediapipe layouts both sides share."""

from __future__ import annotations

_FINGERS = ("index", "middle", "pinky", "ring", "thumb")

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "jaw",
    "left_eye_smplhf",
    "right_eye_smplhf",
    *(f"left_{f}{i}" for f in _FINGERS for i in (1, 2, 3)),
    *(f"right_{f}{i}" for f in _FINGERS for i in (1, 2, 3)),
)


def _hand_parents(wrist: int, first: int) -> list[int]:
    """Parents of one hand's 15 joints: each finger chain hangs off the wrist."""
    out: list[int] = []
    for f in range(5):
        base = first + 3 * f
        out += [wrist, base, base + 1]
    return out


PARENTS: tuple[int, ...] = (
    -1,
    0,
    0,
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    9,
    9,
    12,
    13,
    14,
    16,
    17,
    18,
    19,
    15,
    15,
    15,
    *_hand_parents(20, 25),
    *_hand_parents(21, 40),
)

NUM_JOINTS = 55
NUM_BODY_JOINTS = 21
NUM_HAND_JOINTS = 15
JOINT_INDEX = {name: i for i, name in enumerate(JOINT_NAMES)}
LEFT_HAND_JOINTS = tuple(range(25, 40))
RIGHT_HAND_JOINTS = tuple(range(40, 55))

# AMASS-style `poses` (T,165): [global_orient, body_pose(21), jaw, leye, reye, left_hand(15), right_hand(15)]
POSES_LAYOUT: tuple[tuple[str, int], ...] = (
    ("global_orient", 1),
    ("body_pose", 21),
    ("jaw_pose", 1),
    ("leye_pose", 1),
    ("reye_pose", 1),
    ("left_hand_pose", 15),
    ("right_hand_pose", 15),
)

MEDIAPIPE_POSE_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)

MEDIAPIPE_HAND_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc",
    "thumb_mcp",
    "thumb_ip",
    "thumb_tip",
    "index_mcp",
    "index_pip",
    "index_dip",
    "index_tip",
    "middle_mcp",
    "middle_pip",
    "middle_dip",
    "middle_tip",
    "ring_mcp",
    "ring_pip",
    "ring_dip",
    "ring_tip",
    "pinky_mcp",
    "pinky_pip",
    "pinky_dip",
    "pinky_tip",
)
