"""Turn a protocol Result into Blender data: rig, skinned mesh, NLA take, camera, point cloud and hand rigs."""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from . import bake, camera, points, rig
from .protocol.errors import BadRequest
from .protocol.result import Result
from .protocol.skeleton import JOINT_NAMES, NUM_JOINTS

ARMATURE_TAG = "vidrig_take"  # custom property on every object a take creates, holding the take's name


@dataclass
class ImportedTake:
    """Names of what one import created (names, not references: bpy references must not outlive undo)."""

    take: str
    collection: str
    armature: str = ""
    mesh: str = ""
    action: str = ""
    camera: str = ""
    points: str = ""
    hands: dict[str, str] = field(default_factory=dict)
    frame_start: int = 1
    frame_end: int = 1
    keys_written: int = 0


def blender_frames(result: Result, num_frames: int) -> np.ndarray:
    """Blender frame numbers for the result's frames: source frame index + 1, so frame 1 shows video frame 0."""
    indices = list(result.meta.frame_indices)
    if len(indices) == num_frames:
        return np.asarray(indices, np.int64) + 1
    return np.arange(num_frames, dtype=np.int64) + 1


def _set_scene_timing(scene: bpy.types.Scene, fps: float, start: int, end: int) -> None:
    """Match the scene's frame rate to the result and widen its frame range to cover the take."""
    if fps > 0:
        scene.render.fps = max(1, round(fps))
        scene.render.fps_base = scene.render.fps / fps
    scene.frame_start = min(scene.frame_start, start) if scene.get("vidrig_has_takes") else start
    scene.frame_end = max(scene.frame_end, end) if scene.get("vidrig_has_takes") else end
    scene["vidrig_has_takes"] = True


def import_result(result: Result, take: str, video: str = "", scene: bpy.types.Scene | None = None) -> ImportedTake:
    """Build everything the result holds into a new collection named after the take."""
    scene = scene or bpy.context.scene
    coll = bpy.data.collections.new(f"VidRig {take}")
    scene.collection.children.link(coll)
    out = ImportedTake(take=take, collection=coll.name)
    fps = float(result.meta.fps)
    if result.smplx is not None:
        motion = result.smplx
        if result.rest is None:
            raise BadRequest(f"take {take!r}: the result has a body motion but no rest data, so no rig can be built")
        rest = result.rest
        if rest.joints.shape != (NUM_JOINTS, 3):
            raise BadRequest(f"take {take!r}: rest joints have shape {rest.joints.shape}, expected (55, 3)")
        parents = [int(p) for p in rest.parents]
        arm = rig.build_armature(f"{take} Body", rest.joints, parents, JOINT_NAMES, coll)
        arm[ARMATURE_TAG] = take
        out.armature = arm.name
        if len(rest.vertices) and len(rest.faces):
            mesh = rig.build_skinned_mesh(
                f"{take} Mesh", rest.vertices, rest.faces, rest.skin_indices, rest.skin_weights, JOINT_NAMES, arm, coll
            )
            mesh[ARMATURE_TAG] = take
            out.mesh = mesh.name
        frames = blender_frames(result, motion.num_frames)
        full_pose = motion.poses().reshape(motion.num_frames, NUM_JOINTS, 3)
        target = rig.key_skeleton(arm, f"{take}", JOINT_NAMES, frames, full_pose, motion.transl)
        bake.push_to_nla(arm, target, take, int(frames[0]))
        out.action = target.action.name
        out.keys_written = int(frames.shape[0]) * (NUM_JOINTS * 4 + 3)
        out.frame_start, out.frame_end = int(frames[0]), int(frames[-1])
    if result.camera is not None:
        cam = result.camera
        frames = blender_frames(result, int(cam.R_w2c.shape[0]))
        meta = result.meta
        image_size = (meta.width, meta.height) if meta.width > 0 and meta.height > 0 else None
        cam_obj, _ = camera.build_camera(
            f"{take} Camera", cam.K, cam.R_w2c, cam.t_w2c, frames, coll, video, image_size=image_size
        )
        cam_obj[ARMATURE_TAG] = take
        out.camera = cam_obj.name
        if scene.camera is None or scene.camera.get(ARMATURE_TAG):
            scene.camera = cam_obj
        out.frame_start, out.frame_end = int(frames[0]), max(out.frame_end, int(frames[-1]))
    if result.scene is not None and len(result.scene.points):
        cloud = points.build_point_cloud(f"{take} Points", result.scene.points, result.scene.colors, coll)
        cloud[ARMATURE_TAG] = take
        out.points = cloud.name
    for side, hand in result.hands.items():
        if result.rest is None:
            raise BadRequest(f"take {take!r}: hand motion needs the rest skeleton to build the {side} hand rig")
        out.hands[side] = _import_hand(result, take, side, coll)
        frames = blender_frames(result, int(hand.transl.shape[0]))
        out.frame_start, out.frame_end = int(frames[0]), max(out.frame_end, int(frames[-1]))
    _set_scene_timing(scene, fps, out.frame_start, out.frame_end)
    return out


def _import_hand(result: Result, take: str, side: str, coll: bpy.types.Collection) -> str:
    """A standalone 16-bone hand rig (SMPL-X hand names, flat at zero pose) keyed on the frames the hand was seen."""
    assert result.rest is not None
    hand = result.hands[side]
    joints, parents = rig.hand_rest(result.rest.joints, [int(p) for p in result.rest.parents], side)
    names = [f"{side}_wrist", *(f"{side}_{n}" for n in rig.HAND_BONE_NAMES[1:])]
    arm = rig.build_armature(f"{take} {side.title()} Hand", joints, parents, names, coll)
    arm[ARMATURE_TAG] = take
    rest = result.rest
    wrist = JOINT_NAMES.index(f"{side}_wrist")
    hand_joints = [wrist, *(JOINT_NAMES.index(n) for n in names[1:])]
    verts, faces, skin_i, skin_w = rig.hand_submesh(
        rest.vertices, rest.faces, rest.skin_indices, rest.skin_weights, hand_joints
    )
    if len(faces):
        mesh = rig.build_skinned_mesh(
            f"{take} {side.title()} Hand Mesh", verts, faces, skin_i, skin_w, names, arm, coll
        )
        mesh[ARMATURE_TAG] = take
    valid = np.asarray(hand.valid, bool)
    frames = blender_frames(result, int(hand.transl.shape[0]))[valid]
    full_pose = np.concatenate([hand.global_orient[:, None, :], hand.hand_pose], axis=1)[valid]
    if len(frames):
        target = rig.key_skeleton(arm, f"{take} {side} hand", names, frames, full_pose, hand.transl[valid])
        bake.push_to_nla(arm, target, take, int(frames[0]))
    return arm.name


def takes_in_file() -> list[str]:
    """Names of the takes whose armatures are in the file."""
    return sorted({str(o[ARMATURE_TAG]) for o in bpy.data.objects if o.get(ARMATURE_TAG) and o.type == "ARMATURE"})
