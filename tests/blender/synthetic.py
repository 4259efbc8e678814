"""A synthetic VidRig Result (made-up skeleton, tiny skinned mesh, known poses, camera, points) and numpy FK."""

from __future__ import annotations

import numpy as np

from protocol.result import CameraTrack, HandMotion, RestData, Result, ResultMeta, Scene, SmplxMotion
from protocol.skeleton import JOINT_NAMES, PARENTS

_OFFSETS = {
    "hip": (0.09, -0.08, 0.0),
    "knee": (0.0, -0.40, 0.01),
    "ankle": (0.0, -0.41, -0.02),
    "foot": (0.0, -0.06, 0.12),
    "collar": (0.07, 0.11, -0.01),
    "shoulder": (0.11, 0.02, 0.0),
    "elbow": (0.26, 0.0, -0.01),
    "wrist": (0.25, 0.0, 0.0),
    "index1": (0.09, 0.0, 0.025),
    "middle1": (0.095, 0.0, 0.002),
    "ring1": (0.088, 0.0, -0.02),
    "pinky1": (0.08, 0.0, -0.04),
    "thumb1": (0.03, -0.01, 0.03),
    "thumb2": (0.02, 0.0, 0.025),
    "thumb3": (0.02, 0.0, 0.02),
}
_CENTRAL = {
    "spine1": (0.0, 0.11, -0.01),
    "spine2": (0.0, 0.13, 0.0),
    "spine3": (0.0, 0.05, 0.01),
    "neck": (0.0, 0.21, -0.02),
    "head": (0.0, 0.09, 0.03),
    "jaw": (0.0, -0.02, 0.08),
}


def rest_joints() -> np.ndarray:
    """T-pose joints (55,3) in the Y-up frame: left side is +x, the body faces +z."""
    joints = np.zeros((55, 3))
    joints[0] = (0.0, 0.93, 0.0)
    for j in range(1, 55):
        name = JOINT_NAMES[j]
        if name in _CENTRAL:
            off = np.array(_CENTRAL[name])
        elif name.endswith("_eye_smplhf"):
            off = np.array((0.033 if name.startswith("left") else -0.033, 0.04, 0.08))
        else:
            side, part = name.split("_", 1)
            # Named offsets, else a second or third finger segment.
            off = np.array(_OFFSETS[part] if part in _OFFSETS else (0.028 + 0.002 * int(part[-1]), 0.0, 0.0))
            if side == "right":
                off = off * np.array((-1.0, 1.0, 1.0))
        joints[j] = joints[PARENTS[j]] + off
    return joints


def tiny_mesh(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three vertices around each joint, one triangle each; two weighted to the joint, one shared with its parent."""
    verts, faces, idx, wts = [], [], [], []
    for j in range(55):
        p = max(PARENTS[j], 0)
        base = len(verts)
        for k, d in enumerate(((0.01, 0, 0), (0, 0.01, 0), (0, 0, 0.01))):
            verts.append(joints[j] + np.array(d))
            if k < 2:
                idx.append((j, 0, 0, 0))
                wts.append((1.0, 0.0, 0.0, 0.0))
            else:
                idx.append((j, p, 0, 0))
                wts.append((0.7, 0.3, 0.0, 0.0))
        faces.append((base, base + 1, base + 2))
    return (
        np.asarray(verts, np.float32),
        np.asarray(faces, np.int32),
        np.asarray(idx, np.int32),
        np.asarray(wts, np.float32),
    )


def make_result(frames: int = 6, seed: int = 0, hands: bool = True) -> Result:
    """A Result with known random poses, a moving root, a moving camera, a few coloured points and MANO hands."""
    rng = np.random.default_rng(seed)
    joints = rest_joints()
    verts, faces, skin_i, skin_w = tiny_mesh(joints)
    poses = rng.normal(scale=0.35, size=(frames, 165)).astype(np.float32)
    trans = np.stack([np.linspace(0, 0.5, frames), 0.02 * np.sin(np.arange(frames)), np.linspace(0, -0.3, frames)], 1)
    motion = SmplxMotion.from_poses(poses, trans.astype(np.float32), np.zeros(10, np.float32))
    # Camera 3 m in front of the person (on +z), looking back at it, panning a little.
    angles = np.linspace(-0.1, 0.1, frames)
    R = np.zeros((frames, 3, 3))
    base = np.diag([1.0, -1.0, -1.0])  # camera axes in world: x right = +x, y down = -y, z forward = -z
    for i, a in enumerate(angles):
        pan = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
        R[i] = pan @ base
    centre = np.stack([np.linspace(0, 0.2, frames), np.full(frames, 1.2), np.full(frames, 3.0)], 1)
    t = -np.einsum("tij,tj->ti", R, centre)
    K = np.array([[1100.0, 0, 640.0], [0, 1100.0, 360.0], [0, 0, 1]])
    camera = CameraTrack(K, R, t, np.zeros((frames, 3)), static=False, scale_known=True)
    points = rng.uniform(-2, 2, size=(50, 3)).astype(np.float32)
    colors = rng.integers(0, 256, size=(50, 3)).astype(np.uint8)
    hand_motion = {}
    if hands:
        for side in ("left", "right"):
            valid = np.ones(frames, bool)
            valid[1] = False
            hand_motion[side] = HandMotion(
                global_orient=rng.normal(scale=0.5, size=(frames, 3)).astype(np.float32),
                hand_pose=rng.normal(scale=0.3, size=(frames, 15, 3)).astype(np.float32),
                betas=np.zeros(10, np.float32),
                transl=rng.normal(scale=0.1, size=(frames, 3)).astype(np.float32),
                valid=valid,
            )
    meta = ResultMeta(
        method="synthetic",
        preset=None,
        settings={},
        body_model="default",
        gender="neutral",
        fps=30.0,
        frame_indices=list(range(10, 10 + frames)),
    )
    rest = RestData(joints.astype(np.float32), np.asarray(PARENTS, np.int32), verts, faces, skin_i, skin_w)
    return Result(
        meta=meta,
        smplx=motion,
        hands=hand_motion,
        camera=camera,
        scene=Scene(points, colors),
        confidence=np.ones((frames, 55), np.float32),
        rest=rest,
    )


def axis_angle_matrix(aa: np.ndarray) -> np.ndarray:
    """Rodrigues' formula for one axis-angle vector."""
    angle = float(np.linalg.norm(aa))
    if angle < 1e-12:
        return np.eye(3)
    k = np.asarray(aa, np.float64) / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def forward_kinematics(joints: np.ndarray, parents: list[int], pose: np.ndarray, transl: np.ndarray) -> np.ndarray:
    """Posed joint positions (J,3), Y-up, for one frame of axis-angle `pose` (J,3): the SMPL-X kinematic chain."""
    n = len(parents)
    glob = [np.eye(3)] * n
    pos = np.zeros((n, 3))
    for j in range(n):
        local = axis_angle_matrix(pose[j])
        p = parents[j]
        if p < 0:
            glob[j] = local
            pos[j] = joints[j] + transl
        else:
            glob[j] = glob[p] @ local
            pos[j] = pos[p] + glob[p] @ (joints[j] - joints[p])
    return pos
