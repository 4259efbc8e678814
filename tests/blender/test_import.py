"""Importing a synthetic Result in real Blender: rig, keys, forward kinematics, camera, points, hands, npz files."""

from __future__ import annotations

import bpy
import driving
import numpy as np
import pytest
import synthetic
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

from protocol.skeleton import JOINT_NAMES, PARENTS

Z_UP = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])


def _world_heads(arm: bpy.types.Object, names: list[str]) -> np.ndarray:
    """Posed world positions of the named bones' heads at the current frame."""
    bpy.context.view_layer.update()
    return np.array([list(arm.matrix_world @ arm.pose.bones[n].head) for n in names])


def test_rig_has_smplx_bones_and_world_aligned_rest(clean):
    """55 bones named as SMPL-X, parented as SMPL-X, each rest frame the Y-up -> Z-up rotation."""
    result = synthetic.make_result()
    imported = clean.importer.import_result(result, "t")
    arm = bpy.data.objects[imported.armature]
    bones = arm.data.bones
    assert len(bones) == 55 and sorted(b.name for b in bones) == sorted(JOINT_NAMES)
    for j, name in enumerate(JOINT_NAMES):
        parent = bones[name].parent
        assert (parent.name if parent else None) == (JOINT_NAMES[PARENTS[j]] if PARENTS[j] >= 0 else None)
        rest = np.array(bones[name].matrix_local)
        np.testing.assert_allclose(rest[:3, :3], Z_UP, atol=1e-6)
        np.testing.assert_allclose(rest[:3, 3], Z_UP @ result.rest.joints[j], atol=1e-6)


def test_keys_one_per_frame_on_every_channel(clean):
    """Every bone has 4 quaternion curves, the pelvis 3 location curves, each keyed on every frame, in an NLA strip."""
    result = synthetic.make_result(frames=7)
    imported = clean.importer.import_result(result, "t")
    action = bpy.data.actions[imported.action]
    arm = bpy.data.objects[imported.armature]
    curves = clean.bake.action_fcurves(action)
    assert len(curves) == 55 * 4 + 3
    assert all(len(fc.keyframe_points) == 7 for fc in curves)
    frames = [kp.co[0] for kp in curves[0].keyframe_points]
    assert frames == [11.0 + i for i in range(7)]  # source frames 10..16 -> Blender frames 11..17
    assert arm.animation_data.action is None
    tracks = arm.animation_data.nla_tracks
    assert [t.name for t in tracks] == ["t"] and tracks[0].strips[0].action == action
    assert imported.keys_written == 7 * (55 * 4 + 3)


@pytest.mark.parametrize("frame_offset", [0, 3, 5])
def test_world_joint_positions_match_numpy_fk(clean, frame_offset):
    """The posed bone heads in Blender equal SMPL-X forward kinematics in numpy (Z-up), within 1 mm."""
    result = synthetic.make_result(frames=6, seed=3)
    imported = clean.importer.import_result(result, "t")
    arm = bpy.data.objects[imported.armature]
    bpy.context.scene.frame_set(11 + frame_offset)
    got = _world_heads(arm, list(JOINT_NAMES))
    pose = result.smplx.poses()[frame_offset].reshape(55, 3).astype(np.float64)
    expected = synthetic.forward_kinematics(
        result.rest.joints.astype(np.float64), list(PARENTS), pose, result.smplx.transl[frame_offset]
    )
    np.testing.assert_allclose(got, expected @ Z_UP.T, atol=1e-3)


def test_skinned_mesh_follows_the_rig(clean):
    """Vertex groups come from the skin weights and the evaluated mesh moves with its bones."""
    result = synthetic.make_result(frames=4, seed=5)
    imported = clean.importer.import_result(result, "t")
    mesh_obj = bpy.data.objects[imported.mesh]
    assert [g.name for g in mesh_obj.vertex_groups] == list(JOINT_NAMES)
    v2 = mesh_obj.data.vertices[2]  # third vertex of the pelvis triangle: 0.7 pelvis (+0.3 pelvis as its own parent)
    assert {mesh_obj.vertex_groups[g.group].name: round(g.weight, 4) for g in v2.groups} == {"pelvis": 1.0}
    v5 = mesh_obj.data.vertices[5]  # third vertex of left_hip's triangle: 0.7 left_hip, 0.3 pelvis
    assert {mesh_obj.vertex_groups[g.group].name: round(g.weight, 4) for g in v5.groups} == {
        "left_hip": 0.7,
        "pelvis": 0.3,
    }
    bpy.context.scene.frame_set(12)
    deps = bpy.context.evaluated_depsgraph_get()
    evaluated = mesh_obj.evaluated_get(deps).data
    arm = bpy.data.objects[imported.armature]
    # Vertex 3 hangs 1 cm off the left hip joint along x, weighted fully to that bone.
    bone = arm.pose.bones["left_hip"]
    expected = arm.matrix_world @ bone.matrix @ bone.bone.matrix_local.inverted() @ mesh_obj.data.vertices[3].co
    np.testing.assert_allclose(list(mesh_obj.matrix_world @ evaluated.vertices[3].co), list(expected), atol=1e-5)


def _project_opencv(K: np.ndarray, R: np.ndarray, t: np.ndarray, X: np.ndarray) -> np.ndarray:
    """Pixel coordinates of world point X (Y-up) through an OpenCV camera."""
    xc = R @ X + t
    return np.array([K[0, 0] * xc[0] / xc[2] + K[0, 2], K[1, 1] * xc[1] / xc[2] + K[1, 2]])


def _project_blender(scene: bpy.types.Scene, cam: bpy.types.Object, X: np.ndarray) -> np.ndarray:
    """Pixel coordinates of world point X (Y-up) through the Blender camera at the current frame."""
    ndc = world_to_camera_view(scene, cam, Vector((Z_UP @ X).tolist()))
    w, h = scene.render.resolution_x, scene.render.resolution_y
    return np.array([ndc.x * w, (1.0 - ndc.y) * h])


def test_camera_projects_like_k_r_t(clean):
    """Points project to the same pixels through K, R_w2c, t_w2c and through the keyed Blender camera."""
    result = synthetic.make_result(frames=5, seed=1)
    imported = clean.importer.import_result(result, "t")
    scene = bpy.context.scene
    cam = bpy.data.objects[imported.camera]
    assert scene.camera == cam
    assert (scene.render.resolution_x, scene.render.resolution_y) == (1280, 720)
    points = [np.array(p) for p in ((0.0, 1.0, 0.0), (0.4, 1.6, -0.3), (-0.5, 0.2, 0.5))]
    for i in range(5):
        scene.frame_set(11 + i)
        for X in points:
            expected = _project_opencv(result.camera.K, result.camera.R_w2c[i], result.camera.t_w2c[i], X)
            np.testing.assert_allclose(_project_blender(scene, cam, X), expected, atol=0.05)


@pytest.mark.parametrize("size", [(1280, 720), (720, 1280)])
def test_camera_shift_for_off_centre_principal_point(clean, size):
    """A principal point away from the image centre becomes lens shift (landscape and portrait images)."""
    w, h = size
    K = np.array([[900.0, 0, w / 2 + 37.0], [0, 900.0, h / 2 - 21.0], [0, 0, 1]])
    R = np.diag([1.0, -1.0, -1.0])[None]
    t = np.array([[0.1, -1.0, 4.0]])
    coll = bpy.context.scene.collection
    cam, _ = clean.camera.build_camera("c", K, R, t, np.array([1]), coll, image_size=(w, h))
    scene = bpy.context.scene
    scene.frame_set(1)
    for X in (np.array((0.3, 1.2, 0.1)), np.array((-0.6, 0.4, -0.5))):
        np.testing.assert_allclose(_project_blender(scene, cam, X), _project_opencv(K, R[0], t[0], X), atol=0.05)


def test_points_and_colours(clean):
    """The scene points become a mesh with a point colour attribute holding the colours."""
    result = synthetic.make_result()
    imported = clean.importer.import_result(result, "t")
    mesh = bpy.data.objects[imported.points].data
    co = np.zeros(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    np.testing.assert_allclose(co.reshape(-1, 3), result.scene.points @ Z_UP.T, atol=1e-6)
    attr = mesh.color_attributes[clean.points.COLOR_ATTRIBUTE]
    rgba = np.zeros(len(mesh.vertices) * 4, np.float32)
    attr.data.foreach_get("color_srgb", rgba)
    np.testing.assert_allclose(rgba.reshape(-1, 4)[:, :3] * 255.0, result.scene.colors, atol=1.0)


def test_hand_rigs_follow_mano_parameters(clean):
    """Each standalone hand rig is keyed on its valid frames; joints follow FK from the flat rest hand."""
    result = synthetic.make_result(frames=4, seed=2)
    imported = clean.importer.import_result(result, "t")
    for side in ("left", "right"):
        arm = bpy.data.objects[imported.hands[side]]
        assert len(arm.data.bones) == 16
        mesh = next(o for o in bpy.data.objects if o.parent == arm and o.type == "MESH")
        assert len(mesh.data.polygons) == 16  # the triangles of the wrist and the 15 finger joints
        assert {g.name for g in mesh.vertex_groups} == {b.name for b in arm.data.bones}
        hand = result.hands[side]
        joints, parents = clean.rig.hand_rest(result.rest.joints, list(PARENTS), side)
        names = [b.name for b in arm.data.bones]
        strip = arm.animation_data.nla_tracks[0].strips[0]
        curves = clean.bake.action_fcurves(strip.action)
        assert [kp.co[0] for kp in curves[0].keyframe_points] == [11.0, 13.0, 14.0]  # frame 12 is not valid
        bpy.context.scene.frame_set(13)
        pose = np.concatenate([hand.global_orient[2][None], hand.hand_pose[2]]).astype(np.float64)
        expected = synthetic.forward_kinematics(joints.astype(np.float64), parents, pose, hand.transl[2])
        np.testing.assert_allclose(_world_heads(arm, names), expected @ Z_UP.T, atol=1e-3)


def test_flat_hand_at_zero_pose(clean):
    """At zero hand pose the fingers lie exactly on the rest skeleton's hand (flat-hand convention)."""
    result = synthetic.make_result(frames=2, seed=4)
    result.smplx.left_hand_pose[:] = 0.0
    result.smplx.global_orient[:] = 0.0
    result.smplx.body_pose[:] = 0.0
    result.smplx.transl[:] = 0.0
    imported = clean.importer.import_result(result, "t")
    arm = bpy.data.objects[imported.armature]
    bpy.context.scene.frame_set(11)
    names = list(JOINT_NAMES[25:40])
    np.testing.assert_allclose(_world_heads(arm, names), result.rest.joints[25:40] @ Z_UP.T, atol=1e-5)


def test_import_npz_operator_without_backend(clean, tmp_path):
    """File > Import reads a result file and adds an imported take; a broken file gives a plain error."""
    path = synthetic.make_result(frames=3).save_npz(tmp_path / "clip.npz")
    assert bpy.ops.vidrig.import_result(filepath=str(path)) == {"FINISHED"}
    settings = bpy.context.scene.vidrig
    assert [t.name for t in settings.takes] == ["clip_01"] and settings.takes[0].state == "imported"
    assert settings.takes[0].armature.type == "ARMATURE"
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(RuntimeError):
        bpy.ops.vidrig.import_result(filepath=str(bad))
    assert settings.error.startswith("The result file could not be read.")


def test_video_becomes_the_camera_background(clean, tmp_path):
    """With the source video present, it is the camera's background clip and sets the render size."""
    video = driving.write_clip(tmp_path / "clip.mp4")
    result = synthetic.make_result(frames=3)
    imported = clean.importer.import_result(result, "t", str(video))
    cam = bpy.data.objects[imported.camera].data
    assert cam.show_background_images and len(cam.background_images) == 1
    bg = cam.background_images[0]
    assert bg.source == "MOVIE_CLIP" and bpy.path.abspath(bg.clip.filepath) == str(video)
    scene = bpy.context.scene
    assert (scene.render.resolution_x, scene.render.resolution_y) == (64, 48)
    assert cam.lens == pytest.approx(1100.0 * 36.0 / 64)
