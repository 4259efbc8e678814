"""Which SMPL-X joint each mediapipe landmark rides on, and how landmark confidences become joint confidences."""

from __future__ import annotations

import numpy as np

from protocol.skeleton import JOINT_INDEX as J
from protocol.skeleton import NUM_JOINTS

# mediapipe Pose indices used by name across the fitting code.
NOSE, L_EAR, R_EAR, MOUTH_L, MOUTH_R = 0, 7, 8, 9, 10
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 11, 12, 13, 14, 15, 16
L_PINKY, R_PINKY, L_INDEX, R_INDEX, L_THUMB, R_THUMB = 17, 18, 19, 20, 21, 22
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 23, 24, 25, 26, 27, 28
L_HEEL, R_HEEL, L_TOE, R_TOE = 29, 30, 31, 32
# Foot points in the order of Result.contacts and backend.eval.metrics.FOOT_JOINTS: left heel, left toe, right ...
FOOT_LANDMARKS: tuple[int, int, int, int] = (L_HEEL, L_TOE, R_HEEL, R_TOE)

# The joint each of the 33 body landmarks is rigidly attached to: the bone segment the point sits on. Hips ride
# on the pelvis and shoulders on the collars (the joint positions themselves move only with those segments).
BODY_LANDMARK_JOINT: tuple[int, ...] = (
    *(J["head"],) * 9,  # nose, eyes, ears
    J["jaw"], J["jaw"],  # mouth corners
    J["left_collar"], J["right_collar"], J["left_elbow"], J["right_elbow"],
    J["left_wrist"], J["right_wrist"],
    J["left_wrist"], J["right_wrist"], J["left_wrist"], J["right_wrist"],  # pinky and index knuckles
    J["left_thumb2"], J["right_thumb2"],  # thumb MCP
    J["pelvis"], J["pelvis"], J["left_knee"], J["right_knee"], J["left_ankle"], J["right_ankle"],
    J["left_ankle"], J["right_ankle"], J["left_foot"], J["right_foot"],
)

# SMPL-X finger order inside a hand block (index, middle, pinky, ring, thumb) and mediapipe's first point of each.
FINGER_ORDER = ("index", "middle", "pinky", "ring", "thumb")
MP_FINGER_START = {"thumb": 1, "index": 5, "middle": 9, "ring": 13, "pinky": 17}
SIDES = ("left", "right")


def hand_landmark_joints(side: str) -> tuple[int, ...]:
    """The joint each of the 21 mediapipe hand landmarks of `side` is attached to (tips ride on the last joint)."""
    out = [J[f"{side}_wrist"]] + [0] * 20
    for finger, start in MP_FINGER_START.items():
        for k in range(4):
            out[start + k] = J[f"{side}_{finger}{min(k, 2) + 1}"]
    return tuple(out)


HAND_LANDMARK_JOINT: tuple[tuple[int, ...], tuple[int, ...]] = (hand_landmark_joints("left"),
                                                                 hand_landmark_joints("right"))


def _body_sources() -> dict[int, tuple[int, ...]]:
    """Body landmarks whose confidence stands for each body joint."""
    face = tuple(range(11))
    hips, shoulders = (L_HIP, R_HIP), (L_SHOULDER, R_SHOULDER)
    src = {
        J["pelvis"]: hips, J["spine1"]: hips + shoulders, J["spine2"]: hips + shoulders,
        J["spine3"]: shoulders, J["neck"]: shoulders + face, J["head"]: face, J["jaw"]: (MOUTH_L, MOUTH_R),
        J["left_eye_smplhf"]: (1, 2, 3), J["right_eye_smplhf"]: (4, 5, 6),
    }
    for s, (sh, el, wr, hip, kn, an, heel, toe) in zip(
        SIDES,
        ((L_SHOULDER, L_ELBOW, L_WRIST, L_HIP, L_KNEE, L_ANKLE, L_HEEL, L_TOE),
         (R_SHOULDER, R_ELBOW, R_WRIST, R_HIP, R_KNEE, R_ANKLE, R_HEEL, R_TOE)),
        strict=True,
    ):
        src[J[f"{s}_collar"]] = (sh,)
        src[J[f"{s}_shoulder"]] = (sh, el)
        src[J[f"{s}_elbow"]] = (el, wr)
        src[J[f"{s}_wrist"]] = (wr,)
        src[J[f"{s}_hip"]] = (hip, kn)
        src[J[f"{s}_knee"]] = (kn, an)
        src[J[f"{s}_ankle"]] = (an, heel, toe)
        src[J[f"{s}_foot"]] = (heel, toe)
    return src


BODY_CONFIDENCE_SOURCES = _body_sources()


def joint_confidence(body_conf: np.ndarray, hand_conf: np.ndarray) -> np.ndarray:
    """(T,55) joint confidences in [0,1] from body landmark confidences (T,33) and hand ones (T,2,21).

    Body joints take the mean confidence of the landmarks around them; finger joints the mean of the hand
    landmarks attached to them; wrists the larger of the body and hand evidence. Missing parts give 0.
    """
    t = body_conf.shape[0]
    out = np.zeros((t, NUM_JOINTS), np.float32)
    for joint, src in BODY_CONFIDENCE_SOURCES.items():
        out[:, joint] = body_conf[:, list(src)].mean(axis=1)
    for side in range(2):
        attach = np.asarray(HAND_LANDMARK_JOINT[side])
        for joint in np.unique(attach):
            vals = hand_conf[:, side, attach == joint].mean(axis=1)
            out[:, joint] = np.maximum(out[:, joint], vals) if joint in (J["left_wrist"], J["right_wrist"]) else vals
    return np.clip(out, 0.0, 1.0)
