"""Retarget CMU BVH motion onto the 55-joint SMPL-X skeleton (world-aligned rest frames, T-pose, Y up).

Method (documented in README.md):
1. Forward kinematics of the BVH gives world rotations G_b(t) and positions of every BVH joint (metres).
2. A "swing" solution S_j(t) follows the joint tree from the root: the pelvis and the chest (spine3)
   take a two-vector frame (bone up + left-right axis); every other mapped joint takes its parent's
   rotation followed by the smallest rotation that turns the parent-carried SMPL-X rest bone
   direction onto the BVH bone direction. Bone directions are exact; twist about the bone is the
   parent's.
3. The final rotation is G_j(t) = G_b(t) @ C_j with one constant rest-offset correction C_j per joint:
   the rotation that best matches S_j over the whole clip (orthogonal Procrustes), then corrected so
   that C_j maps the SMPL-X rest bone direction exactly onto the BVH bone direction in the BVH joint's
   local frame. The BVH's own twist (e.g. forearm pronation, head yaw) survives this way.
4. Local SMPL-X rotations are parent^T @ child; joints with no BVH counterpart (jaw, eyes, toes, fingers)
   stay at zero, fingers are filled by `fingers.py`.
5. Scale: the ratio of SMPL-X to BVH leg length (hip-knee + knee-ankle); the pelvis follows the scaled
   BVH root, and the floor is put under the lowest foot point of the clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from benchmarks.groundtruth.bvh import BvhMotion, forward_kinematics
from protocol.errors import BadRequest
from protocol.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS


@dataclass(frozen=True)
class JointMap:
    """How the SMPL-X body joints are found in one BVH dialect.

    `joints`: SMPL-X joint name -> BVH joint whose rotation drives it.
    `bones`: SMPL-X joint name -> (BVH from, BVH to) whose direction is that joint's bone; the SMPL-X
    bone runs from the joint to `SMPLX_BONE_CHILD[name]`.
    `pelvis_lateral`, `chest_lateral`: (BVH right, BVH left) joints whose difference is the body's
    left-right axis at the pelvis and the chest.
    `leg`: (hip, knee, ankle) BVH joints to measure leg length for the scale.
    `unit`: metres per BVH unit.
    """

    joints: dict[str, str]
    bones: dict[str, tuple[str, str | tuple[str, str]]]
    pelvis_lateral: tuple[str, str]
    chest_lateral: tuple[str, str]
    leg: tuple[str, str, str]
    unit: float


# SMPL-X bone of each driven joint: from the joint to this child (a pair means their midpoint).
SMPLX_BONE_CHILD: dict[str, str | tuple[str, str]] = {
    "pelvis": "spine1", "spine1": "spine2", "spine2": "spine3", "spine3": "neck", "neck": "head",
    "head": ("left_eye_smplhf", "right_eye_smplhf"),
    **{f"{s}_hip": f"{s}_knee" for s in ("left", "right")},
    **{f"{s}_knee": f"{s}_ankle" for s in ("left", "right")},
    **{f"{s}_ankle": f"{s}_foot" for s in ("left", "right")},
    **{f"{s}_collar": f"{s}_shoulder" for s in ("left", "right")},
    **{f"{s}_shoulder": f"{s}_elbow" for s in ("left", "right")},
    **{f"{s}_elbow": f"{s}_wrist" for s in ("left", "right")},
    **{f"{s}_wrist": f"{s}_middle1" for s in ("left", "right")},
}


def _side_map(prefix_l: str, prefix_r: str, names: dict[str, str]) -> dict[str, str]:
    """Expand {'hip': 'Thigh', ...} into left/right SMPL-X -> BVH names."""
    out = {}
    for smplx, bvh in names.items():
        out[f"left_{smplx}"] = f"{prefix_l}{bvh}"
        out[f"right_{smplx}"] = f"{prefix_r}{bvh}"
    return out


_ICLONE_SIDE = {"hip": "Thigh", "knee": "Calf", "ankle": "Foot", "foot": "ToeBase", "collar": "Clavicle",
                "shoulder": "Upperarm", "elbow": "Forearm", "wrist": "Hand"}
_ICLONE_JOINTS = {
    "pelvis": "CC_Base_Hip", "spine1": "CC_Base_Waist", "spine2": "CC_Base_Spine01",
    "spine3": "CC_Base_Spine02", "neck": "CC_Base_NeckTwist01", "head": "CC_Base_Head",
    **_side_map("CC_Base_L_", "CC_Base_R_", _ICLONE_SIDE),
}

ICLONE_MAP = JointMap(
    joints=_ICLONE_JOINTS,
    bones={
        "spine1": ("CC_Base_Waist", "CC_Base_Spine01"),
        "spine2": ("CC_Base_Spine01", "CC_Base_Spine02"),
        "spine3": ("CC_Base_Spine02", "CC_Base_NeckTwist01"),
        "neck": ("CC_Base_NeckTwist01", "CC_Base_Head"),
        "head": ("CC_Base_Head", ("CC_Base_L_Eye", "CC_Base_R_Eye")),
        "pelvis": ("CC_Base_Hip", "CC_Base_Waist"),
        **{f"{s}_{a}": (f"CC_Base_{c}_{b1}", f"CC_Base_{c}_{b2}")
           for s, c in (("left", "L"), ("right", "R"))
           for a, b1, b2 in (("hip", "Thigh", "Calf"), ("knee", "Calf", "Foot"), ("ankle", "Foot", "ToeBase"),
                             ("collar", "Clavicle", "Upperarm"), ("shoulder", "Upperarm", "Forearm"),
                             ("elbow", "Forearm", "Hand"), ("wrist", "Hand", "Mid1"))},
    },
    pelvis_lateral=("CC_Base_R_Thigh", "CC_Base_L_Thigh"),
    chest_lateral=("CC_Base_R_Upperarm", "CC_Base_L_Upperarm"),
    leg=("CC_Base_L_Thigh", "CC_Base_L_Calf", "CC_Base_L_Foot"),
    unit=0.01,
)

_HAHNE_SIDE = {"hip": "UpLeg", "knee": "Leg", "ankle": "Foot", "foot": "ToeBase", "collar": "Shoulder",
               "shoulder": "Arm", "elbow": "ForeArm", "wrist": "Hand"}
HAHNE_MAP = JointMap(
    joints={"pelvis": "Hips", "spine1": "LowerBack", "spine2": "Spine", "spine3": "Spine1", "neck": "Neck1",
            "head": "Head", **_side_map("Left", "Right", _HAHNE_SIDE)},
    bones={
        "pelvis": ("Hips", "Spine"),
        "spine1": ("LowerBack", "Spine"), "spine2": ("Spine", "Spine1"), "spine3": ("Spine1", "Neck1"),
        "neck": ("Neck1", "Head"),
        **{f"{s}_{a}": (f"{c}{b1}", f"{c}{b2}")
           for s, c in (("left", "Left"), ("right", "Right"))
           for a, b1, b2 in (("hip", "UpLeg", "Leg"), ("knee", "Leg", "Foot"), ("ankle", "Foot", "ToeBase"),
                             ("collar", "Shoulder", "Arm"), ("shoulder", "Arm", "ForeArm"),
                             ("elbow", "ForeArm", "Hand"), ("wrist", "Hand", "HandIndex1"))},
    },
    pelvis_lateral=("RightUpLeg", "LeftUpLeg"),
    chest_lateral=("RightArm", "LeftArm"),
    leg=("LeftUpLeg", "LeftLeg", "LeftFoot"),
    unit=2.54 / 0.45 / 100.0,
)


def detect_map(motion: BvhMotion) -> JointMap:
    """The joint map for this file's dialect (Reallusion CC / iClone or Hahne's CMU conversion)."""
    names = set(motion.skeleton.names)
    if "CC_Base_Hip" in names:
        return ICLONE_MAP
    if "LeftUpLeg" in names and "LowerBack" in names:
        return HAHNE_MAP
    raise BadRequest("BVH skeleton is neither the iClone CC rig nor Hahne's CMU skeleton")


@dataclass
class RetargetResult:
    """SMPL-X motion retargeted from BVH: local axis-angle per joint, root translation, fps."""

    poses: np.ndarray  # (T,55,3) axis-angle, SMPL-X order, zero for unmapped joints
    transl: np.ndarray  # (T,3) metres, SMPL-X `transl` (pelvis = rest pelvis + transl)
    fps: float
    scale: float  # metres of SMPL-X per metre of BVH skeleton


def _unit(v: np.ndarray) -> np.ndarray:
    """Normalise along the last axis."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def min_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation matrices (...,3,3) turning unit vectors a onto b (...,3)."""
    a, b = _unit(a), _unit(b)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    cos = np.sum(a * b, axis=-1)
    angle = np.arctan2(sin, cos)
    # antiparallel: any axis orthogonal to a
    ortho = np.cross(a, np.where(np.abs(a[..., :1]) < 0.9, [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]))
    axis = np.where((sin < 1e-9)[..., None], ortho, axis)
    rotvec = _unit(axis) * angle[..., None]
    return Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(*a.shape[:-1], 3, 3)


def two_vector_frame(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal frames (...,3,3) whose columns are primary, secondary made orthogonal, and their cross."""
    e1 = _unit(primary)
    e2 = _unit(secondary - np.sum(secondary * e1, axis=-1, keepdims=True) * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)


def procrustes_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The rotation C minimising sum_t ||a_t @ C - b_t||^2 for stacks of rotations a, b (T,3,3)."""
    m = np.einsum("tji,tjk->ik", a, b)
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _point(pos: np.ndarray, names: list[str], target: str | tuple[str, str]) -> np.ndarray:
    """Position (T,3) of a BVH joint or the midpoint of two."""
    if isinstance(target, tuple):
        return 0.5 * (pos[:, names.index(target[0])] + pos[:, names.index(target[1])])
    return pos[:, names.index(target)]


def _rest_point(rest: np.ndarray, target: str | tuple[str, str]) -> np.ndarray:
    """Position (3,) of an SMPL-X rest joint or the midpoint of two."""
    if isinstance(target, tuple):
        return 0.5 * (rest[JOINT_INDEX[target[0]]] + rest[JOINT_INDEX[target[1]]])
    return rest[JOINT_INDEX[target]]


def retarget(motion: BvhMotion, rest_joints: np.ndarray, frames: slice | None = None,
             jmap: JointMap | None = None) -> RetargetResult:
    """Retarget a BVH take onto an SMPL-X skeleton whose T-pose joints are `rest_joints` (55,3) metres.

    `frames` selects BVH frames (default: all but frame 0, which the CMU conversions add synthetically).
    """
    rest = np.asarray(rest_joints, dtype=np.float64)
    if rest.shape != (NUM_JOINTS, 3):
        raise BadRequest(f"rest joints must be ({NUM_JOINTS},3), got {rest.shape}")
    jm = jmap or detect_map(motion)
    names = motion.skeleton.names
    missing = [n for n in jm.joints.values() if n not in names]
    if missing:
        raise BadRequest(f"BVH lacks the joints {missing} that the retarget map needs")
    glob_r, glob_p = forward_kinematics(motion)
    sel = frames if frames is not None else slice(1, None)
    glob_r, glob_p = glob_r[sel], glob_p[sel] * jm.unit
    t_count = glob_r.shape[0]
    if t_count < 1:
        raise BadRequest("no BVH frames left to retarget")

    # scale from leg length
    hip, knee, ankle = (names.index(n) for n in jm.leg)
    bvh_leg = np.median(np.linalg.norm(glob_p[:, knee] - glob_p[:, hip], axis=-1)
                        + np.linalg.norm(glob_p[:, ankle] - glob_p[:, knee], axis=-1))
    li = JOINT_INDEX
    smplx_leg = (np.linalg.norm(rest[li["left_knee"]] - rest[li["left_hip"]])
                 + np.linalg.norm(rest[li["left_ankle"]] - rest[li["left_knee"]]))
    scale = float(smplx_leg / bvh_leg)

    def lateral(pair: tuple[str, str]) -> np.ndarray:
        return glob_p[:, names.index(pair[1])] - glob_p[:, names.index(pair[0])]

    rest_lat_pelvis = rest[li["left_hip"]] - rest[li["right_hip"]]
    rest_lat_chest = rest[li["left_shoulder"]] - rest[li["right_shoulder"]]

    swing = np.tile(np.eye(3), (t_count, NUM_JOINTS, 1, 1))
    final = np.tile(np.eye(3), (t_count, NUM_JOINTS, 1, 1))
    for j in range(NUM_JOINTS):
        name = next((n for n, i in li.items() if i == j), "")
        parent = PARENTS[j]
        if name not in jm.joints:
            swing[:, j] = swing[:, parent] if parent >= 0 else np.eye(3)
            final[:, j] = final[:, parent] if parent >= 0 else np.eye(3)
            continue
        g_b = glob_r[:, names.index(jm.joints[name])]
        if name not in jm.bones:  # a leaf without a bone (toes, Hahne's head): keep the parent's swing
            swing[:, j] = swing[:, parent]
            final[:, j] = g_b @ procrustes_rotation(g_b, swing[:, j])
            continue
        src, dst = jm.bones[name]
        bone_w = _point(glob_p, names, dst) - _point(glob_p, names, src)
        bone_r = _rest_point(rest, SMPLX_BONE_CHILD[name]) - rest[j]
        if name in ("pelvis", "spine3"):
            lat_w = lateral(jm.pelvis_lateral if name == "pelvis" else jm.chest_lateral)
            lat_r = rest_lat_pelvis if name == "pelvis" else rest_lat_chest
            swing[:, j] = two_vector_frame(bone_w, lat_w) @ two_vector_frame(bone_r, lat_r).T
        else:
            carried = np.einsum("tij,j->ti", swing[:, parent], bone_r)
            swing[:, j] = min_rotation(carried, bone_w) @ swing[:, parent]
        c = procrustes_rotation(g_b, swing[:, j])
        # exact bone direction: C maps the rest bone onto the BVH bone expressed in the BVH joint frame
        bone_local = _unit(np.einsum("tji,tj->ti", g_b, bone_w)).mean(axis=0)
        c = min_rotation(c @ _unit(bone_r), bone_local) @ c
        final[:, j] = g_b @ c

    local = np.einsum("tnji,tnjk->tnik", final[:, [max(p, 0) for p in PARENTS]], final)
    local[:, 0] = final[:, 0]
    poses = Rotation.from_matrix(local.reshape(-1, 3, 3)).as_rotvec().reshape(t_count, NUM_JOINTS, 3)
    unmapped = [i for n, i in li.items() if n not in jm.joints]
    poses[:, unmapped] = 0.0
    pelvis_w = glob_p[:, names.index(jm.joints["pelvis"])] * scale
    transl = pelvis_w - rest[0]
    return RetargetResult(poses=poses, transl=transl, fps=float(round(motion.fps, 3)), scale=scale)


def smplx_fk(poses: np.ndarray, transl: np.ndarray, rest_joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SMPL-X forward kinematics on joints only: world rotations (T,55,3,3) and positions (T,55,3).

    Rest frames are world-aligned, so joint j sits at parent + G_parent @ (rest_j - rest_parent).
    """
    t_count = poses.shape[0]
    local = Rotation.from_rotvec(poses.reshape(-1, 3)).as_matrix().reshape(t_count, NUM_JOINTS, 3, 3)
    rot = np.empty_like(local)
    pos = np.empty((t_count, NUM_JOINTS, 3))
    for j, p in enumerate(PARENTS):
        if p < 0:
            rot[:, j] = local[:, j]
            pos[:, j] = rest_joints[j] + transl
        else:
            rot[:, j] = rot[:, p] @ local[:, j]
            pos[:, j] = pos[:, p] + np.einsum("tij,j->ti", rot[:, p], rest_joints[j] - rest_joints[p])
    return rot, pos
