"""A tiny synthetic 55-joint body model for tests: approximate SMPL-X rest skeleton, rigid landmarks, linear shape.

It implements the BodyModel interface with plain forward kinematics (a loop over joints, independent of the
fitting rig's batched code), landmarks rigidly carried by one joint each, and two linear shape directions
(beta 0 scales the whole body by 5 % per unit, beta 1 widens it by 5 % per unit). Its "mesh" is the joints plus
the landmarks, enough for rest_data consumers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from backend.fitting.mapping import BODY_LANDMARK_JOINT, HAND_LANDMARK_JOINT, MP_FINGER_START
from backend.geometry.rotations import axis_angle_to_matrix
from backend.models.base import BodyModel, BodyOutput, BodyPose
from protocol.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS

_LEFT = {  # left-side joints of an adult T-pose (metres, Y up, facing +Z); the right side mirrors x
    "hip": (0.06, 0.84, 0.0), "knee": (0.10, 0.46, 0.0), "ankle": (0.09, 0.06, -0.04),
    "foot": (0.12, 0.01, 0.08), "collar": (0.08, 1.34, 0.0), "shoulder": (0.17, 1.37, -0.01),
    "elbow": (0.43, 1.36, -0.03), "wrist": (0.68, 1.37, -0.03), "eye_smplhf": (0.03, 1.58, 0.10),
}
_CENTRE = {"pelvis": (0.0, 0.93, 0.0), "spine1": (0.0, 1.04, -0.01), "spine2": (0.0, 1.17, 0.01),
           "spine3": (0.0, 1.22, 0.02), "neck": (0.0, 1.43, -0.01), "head": (0.0, 1.52, 0.04),
           "jaw": (0.0, 1.51, 0.07)}
_KNUCKLES = {"index": (0.775, 1.37, 0.0), "middle": (0.78, 1.37, -0.025), "ring": (0.77, 1.37, -0.045),
             "pinky": (0.75, 1.37, -0.065), "thumb": (0.71, 1.35, 0.02)}


def rest_skeleton() -> np.ndarray:
    """(55,3) rest joints: a T-pose with flat hands, palms down."""
    out = np.zeros((NUM_JOINTS, 3))
    for name, p in _CENTRE.items():
        out[JOINT_INDEX[name]] = p
    for side, sx in (("left", 1.0), ("right", -1.0)):
        for name, (x, y, z) in _LEFT.items():
            out[JOINT_INDEX[f"{side}_{name}"]] = (sx * x, y, z)
        for finger, base in _KNUCKLES.items():
            step = np.array([0.022, -0.004, 0.018]) if finger == "thumb" else np.array([0.03, 0.0, 0.0])
            for k in range(3):
                x, y, z = np.asarray(base) + k * step
                out[JOINT_INDEX[f"{side}_{finger}{k + 1}"]] = (sx * x, y, z)
    return out


def _rest_landmarks(joints: np.ndarray) -> np.ndarray:
    """(75,3) rest landmarks: 33 mediapipe body points then 21 left and 21 right hand points."""
    j = {name: joints[i] for name, i in JOINT_INDEX.items()}
    head = j["head"]
    body = np.zeros((33, 3))
    body[0] = head + np.array([0.0, 0.05, 0.11])
    for k, dx in zip(range(1, 7), (0.015, 0.033, 0.05, -0.015, -0.033, -0.05), strict=True):
        body[k] = head + np.array([dx, 0.08, 0.09])
    body[7], body[8] = head + np.array([0.075, 0.06, 0.0]), head + np.array([-0.075, 0.06, 0.0])
    body[9], body[10] = head + np.array([0.025, 0.0, 0.1]), head + np.array([-0.025, 0.0, 0.1])
    for s, sx in (("left", 1.0), ("right", -1.0)):
        o = 0 if s == "left" else 1
        body[11 + o] = j[f"{s}_shoulder"]
        body[13 + o] = j[f"{s}_elbow"]
        body[15 + o] = j[f"{s}_wrist"]
        body[17 + o] = j[f"{s}_wrist"] + (sx * 0.08, 0.0, -0.04)
        body[19 + o] = j[f"{s}_wrist"] + (sx * 0.09, 0.0, 0.02)
        body[21 + o] = j[f"{s}_wrist"] + (sx * 0.05, -0.01, 0.05)
        body[23 + o] = j[f"{s}_hip"] + (sx * 0.02, 0.02, 0.0)
        body[25 + o] = j[f"{s}_knee"]
        body[27 + o] = j[f"{s}_ankle"]
        body[29 + o] = j[f"{s}_ankle"] + (0.0, -0.05, -0.07)
        body[31 + o] = j[f"{s}_foot"] + (0.0, -0.01, 0.07)
    hands = np.zeros((2, 21, 3))
    for o, (s, sx) in enumerate((("left", 1.0), ("right", -1.0))):
        hands[o, 0] = j[f"{s}_wrist"]
        for finger, start in MP_FINGER_START.items():
            pts = [j[f"{s}_{finger}{k}"] for k in (1, 2, 3)]
            tip = pts[2] + (pts[2] - pts[1]) * 0.9
            hands[o, start:start + 4] = [*pts, tip]
        hands[o, 1] = j[f"{s}_thumb1"] + (sx * -0.01, -0.005, -0.01)
    return np.concatenate([body, hands.reshape(42, 3)])


class SkeletonBodyModel(BodyModel):
    """Joints and mediapipe landmarks of an approximate SMPL-X skeleton, posed by forward kinematics."""

    kind = "default"
    gender = "neutral"

    def __init__(self) -> None:
        """Build the rest skeleton and landmarks (float32 buffers)."""
        super().__init__()
        joints = rest_skeleton()
        lm = _rest_landmarks(joints)
        self.register_buffer("joints0", torch.tensor(joints, dtype=torch.float32))
        self.register_buffer("lm0", torch.tensor(lm, dtype=torch.float32))
        self.parents = PARENTS
        self.faces = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
        attach = list(BODY_LANDMARK_JOINT) + list(HAND_LANDMARK_JOINT[0]) + list(HAND_LANDMARK_JOINT[1])
        self.attach = attach

    def _shaped(self, points: Tensor, betas: Tensor) -> Tensor:
        """Apply the two linear shape directions to rest points (N,3) for betas (B,10) -> (B,N,3)."""
        scale = points[None] * betas[:, 0, None, None] * 0.05
        widen = points[None] * torch.tensor([1.0, 0.0, 0.0]) * betas[:, 1, None, None] * 0.05
        return points[None] + scale + widen

    def forward(self, pose: BodyPose) -> BodyOutput:
        """Forward kinematics joint by joint; landmarks ride rigidly on their joints."""
        b = pose.batch_size
        betas = pose.betas.expand(b, -1)
        rest_j = self._shaped(self.joints0, betas)
        rest_lm = self._shaped(self.lm0, betas)
        local = axis_angle_to_matrix(pose.full_pose())
        glob: list[Tensor] = []
        pos: list[Tensor] = []
        for j in range(NUM_JOINTS):
            p = self.parents[j]
            if p < 0:
                glob.append(local[:, 0])
                pos.append(rest_j[:, 0] + pose.transl)
            else:
                glob.append(glob[p] @ local[:, j])
                pos.append(pos[p] + (glob[p] @ (rest_j[:, j] - rest_j[:, p])[..., None])[..., 0])
        rot = torch.stack(glob, 1)
        joints = torch.stack(pos, 1)
        att = self.attach
        lm = joints[:, att] + (rot[:, att] @ (rest_lm - rest_j[:, att])[..., None])[..., 0]
        verts = torch.cat([joints, lm], 1)
        return BodyOutput(verts, joints, rot, lm[:, :33], lm[:, 33:].reshape(b, 2, 21, 3))

    def rest_joints(self, betas: Tensor) -> Tensor:
        """(55,3) rest joints of one shape."""
        return self._shaped(self.joints0, betas.reshape(1, -1))[0]

    def rest_data(self, betas: np.ndarray) -> dict[str, np.ndarray]:
        """Rig data of one shape: joints, parents, the joint+landmark point 'mesh', one-bone skinning."""
        pose = BodyPose.zeros(1)
        pose.betas = torch.tensor(np.asarray(betas, np.float32).reshape(1, -1))
        with torch.no_grad():
            out = self.forward(pose)
        v = out.vertices[0].numpy().astype(np.float32)
        idx = np.zeros((len(v), 4), np.int32)
        idx[:NUM_JOINTS, 0] = np.arange(NUM_JOINTS)
        idx[NUM_JOINTS:, 0] = self.attach
        w = np.zeros((len(v), 4), np.float32)
        w[:, 0] = 1.0
        return {"joints": out.joints[0].numpy().astype(np.float32), "parents": np.asarray(PARENTS, np.int32),
                "vertices": v, "faces": self.faces, "skin_indices": idx, "skin_weights": w}
