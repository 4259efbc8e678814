"""Build the SMPL-X armature, its skinned mesh, standalone hand rigs, and the pose keys they play.

Every bone's rest matrix is the Y-up -> Z-up rotation (bones point up, world-aligned frames), so an
SMPL-X axis-angle joint rotation is the bone's rotation_quaternion unchanged, and the pelvis location
is the result's `trans` unchanged: pelvis head = rest joint + trans, as in SMPL-X.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np
from mathutils import Matrix

from . import bake
from .mathutil import YUP_TO_ZUP, axis_angle_to_quat, quat_continuous

HAND_BONE_NAMES = ("wrist", *(f"{f}{i}" for f in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3)))


def bone_lengths(joints: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """A display length per bone: half the distance to its nearest child (or parent for leaves), 1 to 15 cm."""
    n = len(parents)
    out = np.zeros(n)
    for i in range(n):
        children = [c for c in range(n) if parents[c] == i]
        others = children or ([parents[i]] if parents[i] >= 0 else [])
        dist = min((float(np.linalg.norm(joints[c] - joints[i])) for c in others), default=0.1)
        out[i] = float(np.clip(0.5 * dist, 0.01, 0.15))
    return out


def build_armature(
    name: str,
    joints: np.ndarray,
    parents: Sequence[int],
    bone_names: Sequence[str],
    collection: bpy.types.Collection,
) -> bpy.types.Object:
    """An armature object whose bones sit at the Y-up `joints` (converted to Z-up) with world-aligned rest frames."""
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    collection.objects.link(obj)
    data.display_type = "STICK"
    obj.show_in_front = True
    lengths = bone_lengths(joints, parents)
    heads = np.asarray(joints, np.float64) @ YUP_TO_ZUP.T
    view_layer = bpy.context.view_layer
    previous_active = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        edit_bones = []
        for i, bone_name in enumerate(bone_names):
            eb = data.edit_bones.new(bone_name)
            eb.head = (0.0, 0.0, 0.0)
            eb.tail = (0.0, float(lengths[i]), 0.0)
            m = np.eye(4)
            m[:3, :3] = YUP_TO_ZUP
            m[:3, 3] = heads[i]
            eb.matrix = Matrix(m.tolist())
            edit_bones.append(eb)
        for i, p in enumerate(parents):
            if p >= 0:
                edit_bones[i].parent = edit_bones[p]
                edit_bones[i].use_connect = False
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous_active
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj


def build_skinned_mesh(
    name: str,
    vertices: np.ndarray,
    faces: np.ndarray,
    skin_indices: np.ndarray,
    skin_weights: np.ndarray,
    bone_names: Sequence[str],
    armature: bpy.types.Object,
    collection: bpy.types.Collection,
) -> bpy.types.Object:
    """A mesh (Y-up vertices converted to Z-up) with one vertex group per joint, deformed by `armature`."""
    mesh = bpy.data.meshes.new(name)
    verts = (np.asarray(vertices, np.float64) @ YUP_TO_ZUP.T).astype(np.float32)
    faces = np.asarray(faces, np.int32)
    mesh.vertices.add(len(verts))
    mesh.vertices.foreach_set("co", verts.ravel())
    mesh.loops.add(faces.size)
    mesh.loops.foreach_set("vertex_index", faces.ravel())
    mesh.polygons.add(len(faces))
    mesh.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
    mesh.polygons.foreach_set("loop_total", np.full(len(faces), 3, dtype=np.int32))
    mesh.polygons.foreach_set("use_smooth", np.ones(len(faces), dtype=bool))
    mesh.update()
    mesh.validate()
    obj = bpy.data.objects.new(name, mesh)
    collection.objects.link(obj)
    groups = [obj.vertex_groups.new(name=n) for n in bone_names]
    idx = np.asarray(skin_indices, np.int64)
    wts = np.asarray(skin_weights, np.float64)
    for v, (row_i, row_w) in enumerate(zip(idx, wts, strict=True)):
        for j, w in zip(row_i, row_w, strict=True):
            if w > 0.0:
                groups[int(j)].add([v], float(w), "ADD")
    obj.parent = armature
    mod = obj.modifiers.new("Armature", "ARMATURE")
    mod.object = armature
    mod.use_vertex_groups = True
    return obj


def pose_quaternions(full_pose: np.ndarray) -> np.ndarray:
    """Bone rotation_quaternion keys (T,J,4) for axis-angle joint rotations (T,J,3), signs made continuous."""
    return quat_continuous(axis_angle_to_quat(np.asarray(full_pose, np.float32)))


def key_skeleton(
    armature: bpy.types.Object,
    action_name: str,
    bone_names: Sequence[str],
    frames: np.ndarray,
    full_pose: np.ndarray,
    root_location: np.ndarray,
) -> bake.ActionTarget:
    """A new action on `armature` with every bone's rotation and the root bone's location keyed per frame."""
    target = bake.new_action(action_name, armature)
    bake.write_bone_keys(
        target,
        list(bone_names),
        frames,
        pose_quaternions(full_pose),
        root_bone=bone_names[0],
        root_location=np.asarray(root_location, np.float64),
    )
    return target


def hand_rest(rest_joints: np.ndarray, parents: Sequence[int], side: str) -> tuple[np.ndarray, list[int]]:
    """The 16 joints (wrist first) and parents of one hand, taken from the SMPL-X rest skeleton."""
    wrist = 20 if side == "left" else 21
    first = 25 if side == "left" else 40
    index = [wrist, *range(first, first + 15)]
    local = {j: k for k, j in enumerate(index)}
    hand_parents = [-1] + [local[parents[j]] for j in index[1:]]
    return np.asarray(rest_joints)[index], hand_parents


def hand_submesh(
    vertices: np.ndarray,
    faces: np.ndarray,
    skin_indices: np.ndarray,
    skin_weights: np.ndarray,
    hand_joints: Sequence[int],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The part of the body mesh driven mostly by one hand's joints, re-indexed to the hand's 16 joints.

    Returns vertices, faces, skin indices (into `hand_joints`) and renormalised weights; empty when nothing qualifies.
    """
    idx = np.asarray(skin_indices, np.int64)
    wts = np.asarray(skin_weights, np.float64)
    lookup = np.full(max(int(idx.max()) + 1, max(hand_joints) + 1), -1, np.int64)
    lookup[list(hand_joints)] = np.arange(len(hand_joints))
    in_hand = lookup[idx] >= 0
    share = np.where(in_hand, wts, 0.0).sum(axis=1)
    keep_vertex = share > 0.5
    faces = np.asarray(faces, np.int64)
    keep_face = keep_vertex[faces].all(axis=1)
    used = np.unique(faces[keep_face])
    remap = np.full(len(vertices), -1, np.int64)
    remap[used] = np.arange(len(used))
    new_w = np.where(in_hand[used], wts[used], 0.0)
    new_w /= np.maximum(new_w.sum(axis=1, keepdims=True), 1e-12)
    new_i = np.where(in_hand[used], lookup[idx[used]], 0)
    return (
        np.asarray(vertices)[used],
        remap[faces[keep_face]].astype(np.int32),
        new_i.astype(np.int32),
        new_w.astype(np.float32),
    )
