"""Retarget a VidRig SMPL-X take onto another armature (Rigify, Mixamo, custom JSON map), baked to its own action.

Per mapped bone the source's world-space rotation away from its rest is transferred onto the target
bone after a rest-pose correction: the smallest rotation that turns the target bone's rest direction
onto the source bone's rest direction (A-pose vs T-pose, other rolls and lengths). Root motion is the
source pelvis displacement scaled by the ratio of hip heights, kept whole ("WORLD") or vertical only
("IN_PLACE").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from . import bake
from .mathutil import matrix_to_quat, quat_continuous, quat_to_matrix, rotation_between
from .protocol.errors import BadRequest
from .protocol.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS

MAPS_DIR = Path(__file__).resolve().parent / "retarget_maps"
# Which child gives a joint's direction when it has several (others have one child or are leaves).
DIRECTION_CHILD = {
    "pelvis": "spine1",
    "spine3": "neck",
    "head": "",
    "left_wrist": "left_middle1",
    "right_wrist": "right_middle1",
}


@dataclass(frozen=True)
class BoneMap:
    """A named mapping from SMPL-X joint names to a target armature's bone names."""

    name: str
    bones: dict[str, str]
    description: str = ""


def load_map(path: str | Path) -> BoneMap:
    """Read a bone-map JSON file: {"name": ..., "description": ..., "bones": {smplx_name: target_bone}}."""
    path = Path(path)
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BadRequest(f"bone map {path} is not readable JSON: {exc}") from exc
    bones = data.get("bones") if isinstance(data, dict) else None
    if not isinstance(bones, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in bones.items()):
        raise BadRequest(f"bone map {path} needs a 'bones' object mapping SMPL-X joint names to bone names")
    unknown = sorted(set(bones) - set(JOINT_NAMES))
    if unknown:
        raise BadRequest(f"bone map {path} names joints SMPL-X does not have: {unknown}")
    if "pelvis" not in bones:
        raise BadRequest(f"bone map {path} must map 'pelvis' (the root)")
    return BoneMap(str(data.get("name", path.stem)), dict(bones), str(data.get("description", "")))


def preset_maps() -> dict[str, Path]:
    """The bone-map presets shipped with the add-on, by file stem."""
    return {p.stem: p for p in sorted(MAPS_DIR.glob("*.json"))}


def resolve_names(bone_map: BoneMap, armature: bpy.types.Object) -> dict[str, str]:
    """The map restricted to bones the armature has; a name also matches after any 'prefix:' (mixamorig1:Hips)."""
    names = {b.name for b in armature.data.bones}
    by_suffix = {n.split(":", 1)[-1]: n for n in names}
    out = {}
    for joint, bone in bone_map.bones.items():
        if bone in names:
            out[joint] = bone
        elif bone.split(":", 1)[-1] in by_suffix:
            out[joint] = by_suffix[bone.split(":", 1)[-1]]
    if "pelvis" not in out:
        raise BadRequest(f"armature {armature.name!r} has no bone {bone_map.bones['pelvis']!r} for the pelvis")
    return out


def _np(matrix: object) -> np.ndarray:
    """A mathutils matrix as a numpy array."""
    return np.array([list(row) for row in matrix], dtype=np.float64)


def _topological(armature: bpy.types.Object) -> list[bpy.types.Bone]:
    """The armature's bones, every parent before its children."""
    out: list[bpy.types.Bone] = []

    def visit(bone: bpy.types.Bone) -> None:
        out.append(bone)
        for child in bone.children:
            visit(child)

    for bone in armature.data.bones:
        if bone.parent is None:
            visit(bone)
    return out


def take_action(armature: bpy.types.Object) -> tuple[bpy.types.Action, object | None, float]:
    """The action the source plays (active action, else its first unmuted NLA strip), its slot and frame offset."""
    anim = armature.animation_data
    if anim is None:
        raise BadRequest(f"{armature.name!r} has no animation to retarget")
    if anim.action is not None:
        return anim.action, getattr(anim, "action_slot", None), 0.0
    for track in anim.nla_tracks:
        if track.mute:
            continue
        for strip in track.strips:
            if strip.action is not None:
                offset = float(strip.frame_start - strip.action_frame_start)
                return strip.action, getattr(strip, "action_slot", None), offset
    raise BadRequest(f"{armature.name!r} has no action or unmuted NLA strip to retarget")


def sample_source(armature: bpy.types.Object, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bone rotation quaternions (T,55,4) and pelvis location (T,3) of a VidRig armature at `frames`."""
    action, slot, offset = take_action(armature)
    curves = {(fc.data_path, fc.array_index): fc for fc in bake.action_fcurves(action, slot)}
    t = len(frames)
    quats = np.zeros((t, len(JOINT_NAMES), 4))
    quats[..., 0] = 1.0
    loc = np.zeros((t, 3))
    local = np.asarray(frames, np.float64) - offset
    for j, name in enumerate(JOINT_NAMES):
        for c in range(4):
            fc = curves.get((f'pose.bones["{name}"].rotation_quaternion', c))
            if fc is not None:
                quats[:, j, c] = _sample_curve(fc, local)
    for c in range(3):
        fc = curves.get(('pose.bones["pelvis"].location', c))
        if fc is not None:
            loc[:, c] = _sample_curve(fc, local)
    return quats, loc


def _sample_curve(fc: bpy.types.FCurve, frames: np.ndarray) -> np.ndarray:
    """The curve's values at `frames`: read straight from its keys when it has one key on each, else evaluated."""
    points = fc.keyframe_points
    if len(points) == len(frames) and not fc.modifiers:
        co = np.empty(2 * len(points), np.float32)
        points.foreach_get("co", co)
        if np.array_equal(co[0::2], frames.astype(np.float32)):
            return co[1::2].astype(np.float64)
    return np.array([fc.evaluate(f) for f in frames])


def source_world(armature: bpy.types.Object, quats: np.ndarray, loc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (T,55,3,3) and head positions (T,55,3) of the source bones, by forward kinematics."""
    bones = armature.data.bones
    rest = np.stack([_np(bones[n].matrix_local) for n in JOINT_NAMES])
    obj = _np(armature.matrix_world)
    t = quats.shape[0]
    basis = np.zeros((t, len(JOINT_NAMES), 4, 4))
    basis[..., :3, :3] = quat_to_matrix(quats)
    basis[..., 3, 3] = 1.0
    basis[:, 0, :3, 3] = loc
    posed = np.zeros_like(basis)
    for j, p in enumerate(PARENTS):
        if p < 0:
            posed[:, j] = rest[j] @ basis[:, j]
        else:
            posed[:, j] = posed[:, p] @ (np.linalg.inv(rest[p]) @ rest[j]) @ basis[:, j]
    world = obj @ posed
    return world[..., :3, :3], world[..., :3, 3]


def _rest_alignment(
    mapping: dict[str, str], src_heads: np.ndarray, tgt_heads: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Per mapped joint, the world rotation turning the target bone's rest direction onto the source's."""
    align: dict[str, np.ndarray] = {}
    for j, name in enumerate(JOINT_NAMES):
        if name not in mapping:
            continue
        child = DIRECTION_CHILD.get(name)
        if child is None:
            kids = [JOINT_NAMES[c] for c in range(len(PARENTS)) if PARENTS[c] == j]
            child = kids[0] if len(kids) == 1 else ""
        parent_align = np.eye(3)
        p = PARENTS[j]
        while p >= 0:
            if JOINT_NAMES[p] in align:
                parent_align = align[JOINT_NAMES[p]]
                break
            p = PARENTS[p]
        if child and child in mapping:
            d_src = src_heads[JOINT_INDEX[child]] - src_heads[j]
            d_tgt = tgt_heads[mapping[child]] - tgt_heads[mapping[name]]
            if np.linalg.norm(d_src) > 1e-6 and np.linalg.norm(d_tgt) > 1e-6:
                align[name] = rotation_between(d_tgt, d_src)
                continue
        align[name] = parent_align
    return align


def retarget(
    source: bpy.types.Object,
    target: bpy.types.Object,
    bone_map: BoneMap,
    frames: np.ndarray,
    root_motion: str = "WORLD",
    action_name: str = "",
) -> bake.ActionTarget:
    """Bake the source take onto `target` as a new active action; returns it."""
    if root_motion not in ("WORLD", "IN_PLACE"):
        raise BadRequest(f"root motion must be WORLD or IN_PLACE, not {root_motion!r}")
    missing = [n for n in JOINT_NAMES if n not in source.data.bones]
    if missing:
        raise BadRequest(f"{source.name!r} is not a VidRig SMPL-X armature (no bones {missing[:3]}...)")
    mapping = resolve_names(bone_map, target)
    frames = np.asarray(frames, np.float64)
    quats, loc = sample_source(source, frames)
    src_rot, src_pos = source_world(source, quats, loc)
    src_obj = _np(source.matrix_world)
    src_rest = np.stack([src_obj @ _np(source.data.bones[n].matrix_local) for n in JOINT_NAMES])
    tgt_obj = _np(target.matrix_world)
    tgt_bones = _topological(target)
    tgt_rest = {b.name: _np(b.matrix_local) for b in tgt_bones}
    tgt_rest_world = {n: tgt_obj @ m for n, m in tgt_rest.items()}
    align = _rest_alignment(mapping, src_rest[:, :3, 3], {n: m[:3, 3] for n, m in tgt_rest_world.items()})
    obj_rot = tgt_obj[:3, :3] / np.linalg.norm(tgt_obj[:3, :3], axis=0)
    inverse_map = {bone: joint for joint, bone in mapping.items()}
    t = len(frames)
    posed: dict[str, np.ndarray] = {}  # armature-space 4x4 per frame
    keyed: list[str] = []
    key_quats: list[np.ndarray] = []
    root_loc = np.zeros((t, 3))
    root_bone = mapping["pelvis"]
    for bone in tgt_bones:
        rest_j = tgt_rest[bone.name]
        if bone.parent is None:
            parent = np.broadcast_to(np.eye(4), (t, 4, 4))
            local_rest = rest_j
        else:
            parent = posed[bone.parent.name]
            local_rest = np.linalg.inv(tgt_rest[bone.parent.name]) @ rest_j
        basis = np.broadcast_to(np.eye(4), (t, 4, 4)).copy()
        joint = inverse_map.get(bone.name)
        if joint is not None:
            j = JOINT_INDEX[joint]
            delta = src_rot[:, j] @ src_rest[j, :3, :3].T  # world rotation away from the source rest
            world = delta @ align[joint] @ tgt_rest_world[bone.name][:3, :3]
            world /= np.linalg.norm(world, axis=-2, keepdims=True)
            arm_rot = obj_rot.T @ world
            basis[:, :3, :3] = (
                np.swapaxes(local_rest[:3, :3], -1, -2) @ np.swapaxes(parent[:, :3, :3], -1, -2) @ arm_rot
            )
            if bone.name == root_bone:
                basis[:, :3, 3] = _root_translation(
                    source,
                    target,
                    src_pos[:, 0],
                    src_rest[0, :3, 3],
                    tgt_rest_world[bone.name][:3, 3],
                    parent,
                    local_rest,
                    root_motion,
                )
                root_loc = basis[:, :3, 3]
            keyed.append(bone.name)
            key_quats.append(quat_continuous(matrix_to_quat(basis[:, :3, :3])))
        posed[bone.name] = parent @ local_rest @ basis
    for name in keyed:
        target.pose.bones[name].rotation_mode = "QUATERNION"
    action = bake.new_action(action_name or f"{source.name} -> {target.name}", target)
    bake.write_bone_keys(action, keyed, frames, np.stack(key_quats, axis=1), root_bone, root_loc)
    bake.assign_action(target, action)
    return action


def _root_translation(
    source: bpy.types.Object,
    target: bpy.types.Object,
    src_pelvis: np.ndarray,
    src_rest_pelvis: np.ndarray,
    tgt_rest_root: np.ndarray,
    parent: np.ndarray,
    local_rest: np.ndarray,
    root_motion: str,
) -> np.ndarray:
    """The root bone's pose location (T,3) putting its head at the scaled source pelvis displacement."""
    src_height = _hip_height(source, src_rest_pelvis)
    tgt_height = _hip_height(target, tgt_rest_root)
    ratio = tgt_height / src_height if src_height > 1e-6 else 1.0
    displacement = ratio * (src_pelvis - src_rest_pelvis)
    if root_motion == "IN_PLACE":
        displacement[:, :2] = 0.0
    wanted_world = tgt_rest_root + displacement
    tgt_obj_inv = np.linalg.inv(_np(target.matrix_world))
    wanted = wanted_world @ tgt_obj_inv[:3, :3].T + tgt_obj_inv[:3, 3]
    # posed head = parent.t + parent.R (local_rest.t + local_rest.R basis.t)
    rel = np.einsum("tji,tj->ti", parent[:, :3, :3], wanted - parent[:, :3, 3]) - local_rest[:3, 3]
    return rel @ local_rest[:3, :3]


def _hip_height(armature: bpy.types.Object, root_world: np.ndarray) -> float:
    """Height of the root's rest head above the lowest rest bone head of the armature, in world units."""
    obj = _np(armature.matrix_world)
    lowest = min(float((obj @ np.append(np.array(b.head_local), 1.0))[2]) for b in armature.data.bones)
    return float(root_world[2] - lowest)
