"""Retargeting a take onto an armature with another rest pose (A-pose), other rolls, lengths, names and placement."""

from __future__ import annotations

import json
import math

import bpy
import numpy as np
import pytest
import synthetic
from mathutils import Matrix

from protocol.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS

Z_UP = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
BODY = [
    "pelvis", "spine1", "spine2", "spine3", "neck", "head",
    *(f"{s}_{p}" for s in ("left", "right") for p in ("hip", "knee", "ankle", "foot")),
    *(f"{s}_{p}" for s in ("left", "right") for p in ("collar", "shoulder", "elbow", "wrist")),
    *(f"left_{f}{i}" for f in ("index", "middle", "thumb") for i in (1, 2, 3)),
]  # fmt: skip
DIRECTION_CHILD = {"pelvis": "spine1", "spine3": "neck", "left_wrist": "left_middle1", "right_wrist": None}


def _target_name(joint: str) -> str:
    """The test rig's own naming: 'Bip.<CamelCase>'."""
    return "Bip." + "".join(part.title() for part in joint.split("_"))


def _direction_child(joint: str) -> str | None:
    """The mapped child giving a joint's direction (None for leaves)."""
    if joint in DIRECTION_CHILD:
        return DIRECTION_CHILD[joint]
    kids = [JOINT_NAMES[c] for c in range(55) if PARENTS[c] == JOINT_INDEX[joint] and JOINT_NAMES[c] in BODY]
    return kids[0] if len(kids) == 1 else None


def _a_pose_joints() -> dict[str, np.ndarray]:
    """Z-up rest positions of the mapped joints, 10 % larger, with both arms lowered 40 degrees (A-pose)."""
    joints = synthetic.rest_joints() @ Z_UP.T * 1.1
    for side, sign in (("left", 1.0), ("right", -1.0)):
        pivot = joints[JOINT_INDEX[f"{side}_shoulder"]].copy()
        a = sign * math.radians(40)
        rot = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
        for j, name in enumerate(JOINT_NAMES):
            chain = name.startswith(f"{side}_") and name not in (
                f"{side}_collar",
                f"{side}_hip",
                f"{side}_knee",
                f"{side}_ankle",
                f"{side}_foot",
                f"{side}_eye_smplhf",
            )
            if chain:
                joints[j] = pivot + rot @ (joints[j] - pivot)
    return {n: joints[JOINT_INDEX[n]] for n in BODY}


def _build_target() -> bpy.types.Object:
    """An A-pose armature with random rolls, bones pointing at their children, an unmapped extra spine bone,
    placed at (2, 1, 0) and turned 30 degrees about Z."""
    rng = np.random.default_rng(7)
    heads = _a_pose_joints()
    data = bpy.data.armatures.new("Target")
    obj = bpy.data.objects.new("Target", data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    made = {}
    for joint in BODY:
        eb = data.edit_bones.new(_target_name(joint))
        child = _direction_child(joint)
        head = heads[joint]
        tail = heads[child] if child else head + 0.05 * (head - heads[JOINT_NAMES[PARENTS[JOINT_INDEX[joint]]]])
        eb.head, eb.tail = head.tolist(), tail.tolist()
        eb.roll = float(rng.uniform(-math.pi, math.pi))
        made[joint] = eb
    extra = data.edit_bones.new("Bip.SpineExtra")
    extra.head = ((heads["spine1"] + heads["spine2"]) / 2).tolist()
    extra.tail = heads["spine2"].tolist()
    for joint in BODY:
        p = PARENTS[JOINT_INDEX[joint]]
        if p >= 0:
            made[joint].parent = made[JOINT_NAMES[p]]
    extra.parent = made["spine1"]
    made["spine2"].parent = extra
    bpy.ops.object.mode_set(mode="OBJECT")
    obj.matrix_world = Matrix.Translation((2.0, 1.0, 0.0)) @ Matrix.Rotation(math.radians(30), 4, "Z")
    return obj


def _write_map(path) -> str:
    """A custom JSON bone map for the test rig."""
    path.write_text(json.dumps({"name": "test rig", "bones": {j: _target_name(j) for j in BODY}}))
    return str(path)


def _heads(arm: bpy.types.Object, names: list[str]) -> np.ndarray:
    """World positions of the named pose bones' heads at the current frame."""
    return np.array([list(arm.matrix_world @ arm.pose.bones[n].head) for n in names])


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles between row vectors, in degrees."""
    cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


@pytest.fixture
def take(clean):
    """A synthetic take imported into an empty scene, and the test rig beside it."""
    result = synthetic.make_result(frames=6, seed=11)
    imported = clean.importer.import_result(result, "t")
    return bpy.data.objects[imported.armature], _build_target()


def test_world_bone_directions_are_preserved(clean, take, tmp_path):
    """Every mapped bone (hands, feet, head included) points where its source bone points, frame by frame."""
    source, target = take
    bone_map = clean.retarget.load_map(_write_map(tmp_path / "map.json"))
    frames = np.arange(11, 17)
    clean.retarget.retarget(source, target, bone_map, frames, "WORLD")
    pairs = [(j, c) for j in BODY if (c := _direction_child(j))]
    for frame in frames:
        bpy.context.scene.frame_set(int(frame))
        src = _heads(source, [c for _, c in pairs]) - _heads(source, [j for j, _ in pairs])
        tgt = _heads(target, [_target_name(c) for _, c in pairs]) - _heads(target, [_target_name(j) for j, _ in pairs])
        angles = _angle_deg(src, tgt)
        assert angles.max() < 0.5, dict(zip([j for j, _ in pairs], angles.round(2), strict=True))


def test_root_motion_world_and_in_place(clean, take, tmp_path):
    """World: the hips travel the source pelvis path scaled by hip height; in place: only vertically."""
    source, target = take
    bone_map = clean.retarget.load_map(_write_map(tmp_path / "map.json"))
    frames = np.arange(11, 17)
    hips = _target_name("pelvis")
    bpy.context.scene.frame_set(11)
    rest_tgt = np.array(target.matrix_world @ target.data.bones[hips].head_local)
    rest_src = np.array(source.matrix_world @ source.data.bones["pelvis"].head_local)
    for mode in ("WORLD", "IN_PLACE"):
        clean.retarget.retarget(source, target, bone_map, frames, mode)
        for frame in frames:
            bpy.context.scene.frame_set(int(frame))
            moved = _heads(target, [hips])[0] - rest_tgt
            src_moved = 1.1 * (_heads(source, ["pelvis"])[0] - rest_src)
            if mode == "IN_PLACE":
                src_moved[:2] = 0.0
            np.testing.assert_allclose(moved, src_moved, atol=1e-4)


def test_retarget_operator_with_custom_map(clean, take, tmp_path):
    """The panel's Retarget bakes the selected take onto the chosen armature as its own active action."""
    source, target = take
    settings = bpy.context.scene.vidrig
    item = settings.takes.add()
    item.name, item.armature, item.state = "t", source, "imported"
    settings.take_index = 0
    settings.retarget_target = target
    settings.retarget_map = "CUSTOM"
    settings.retarget_map_file = _write_map(tmp_path / "map.json")
    assert bpy.ops.vidrig.retarget() == {"FINISHED"}
    action = target.animation_data.action
    assert action.name == "t on Target"
    curves = clean.bake.action_fcurves(action)
    assert len(curves) == 4 * len(BODY) + 3
    assert all(len(fc.keyframe_points) == 6 for fc in curves)


def test_preset_maps_load_and_name_known_joints(clean):
    """The shipped Rigify, Mixamo and UE5 maps parse and map body and finger joints."""
    maps = clean.retarget.preset_maps()
    assert {"rigify", "mixamo", "ue5_manny"} <= set(maps)
    for path in maps.values():
        bone_map = clean.retarget.load_map(path)
        assert len(bone_map.bones) == 52  # 22 body joints without jaw/eyes + 2 x 15 finger joints


def test_mixamo_prefix_variants_resolve(clean, take):
    """'mixamorig1:Hips' in a rig matches the preset's 'mixamorig:Hips'."""
    _, target = take
    bpy.context.view_layer.objects.active = target
    bpy.ops.object.mode_set(mode="EDIT")
    target.data.edit_bones[_target_name("pelvis")].name = "mixamorig1:Hips"
    bpy.ops.object.mode_set(mode="OBJECT")
    bone_map = clean.retarget.load_map(clean.retarget.preset_maps()["mixamo"])
    assert clean.retarget.resolve_names(bone_map, target) == {"pelvis": "mixamorig1:Hips"}
