"""Write dense keyframes into actions fast (keyframe_points.add + foreach_set) on Blender 4.2 through 5.0.

Blender 4.4 introduced slotted (layered) actions and 5.0 removed `Action.fcurves`; the helpers here
feature-detect and use slots + channelbags where present, the legacy F-Curve list otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

_LINEAR = 1  # index of 'LINEAR' in Keyframe.interpolation's enum (CONSTANT, LINEAR, BEZIER, ...)


def has_slotted_actions() -> bool:
    """Whether this Blender has slotted (layered) actions (4.4 and later)."""
    props = bpy.types.Action.bl_rna.properties
    return "slots" in props and "layers" in props


@dataclass
class ActionTarget:
    """An action opened for writing: its F-Curve and group collections, and the slot (None before 4.4)."""

    action: bpy.types.Action
    slot: object | None
    fcurves: object
    groups: object


def new_action(name: str, owner: bpy.types.ID) -> ActionTarget:
    """A fresh action for `owner` (an object), with a slot, layer and keyframe strip where Blender has them."""
    action = bpy.data.actions.new(name)
    action.use_fake_user = True
    if not has_slotted_actions():
        return ActionTarget(action, None, action.fcurves, action.groups)
    slot = action.slots.new(id_type=owner.id_type, name=owner.name)
    layer = action.layers.new("Layer")
    strip = layer.strips.new(type="KEYFRAME")
    bag = strip.channelbag(slot, ensure=True)
    return ActionTarget(action, slot, bag.fcurves, bag.groups)


def open_action(action: bpy.types.Action, owner: bpy.types.ID) -> ActionTarget:
    """An existing action's curves for `owner` (its first slot of the owner's type, made if absent)."""
    if not has_slotted_actions():
        return ActionTarget(action, None, action.fcurves, action.groups)
    slot = next((s for s in action.slots if s.target_id_type == owner.id_type), None)
    if slot is None:
        slot = action.slots.new(id_type=owner.id_type, name=owner.name)
    if not action.layers:
        action.layers.new("Layer")
    layer = action.layers[0]
    strip = layer.strips[0] if layer.strips else layer.strips.new(type="KEYFRAME")
    bag = strip.channelbag(slot, ensure=True)
    return ActionTarget(action, slot, bag.fcurves, bag.groups)


def assign_action(owner: bpy.types.ID, target: ActionTarget) -> None:
    """Make the action (and its slot) the owner's active action."""
    anim = owner.animation_data or owner.animation_data_create()
    anim.action = target.action
    if target.slot is not None:
        anim.action_slot = target.slot


def write_curve(
    target: ActionTarget, data_path: str, index: int, frames: np.ndarray, values: np.ndarray, group: str = ""
) -> bpy.types.FCurve:
    """Replace (or create) one F-Curve with linear keys at `frames` holding `values` exactly."""
    fc = target.fcurves.find(data_path, index=index)
    if fc is not None:
        target.fcurves.remove(fc)
    fc = target.fcurves.new(data_path, index=index)
    if group:
        grp = target.groups.get(group) or target.groups.new(group)
        fc.group = grp
    n = int(frames.shape[0])
    points = fc.keyframe_points
    points.add(n)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = frames
    co[1::2] = values
    # Interpolation before positions: setting it afterwards costs a handle update per key.
    points.foreach_set("interpolation", np.full(n, _LINEAR, dtype=np.int32))
    points.foreach_set("co", co)
    fc.update()
    return fc


def write_bone_keys(
    target: ActionTarget,
    bone_names: list[str],
    frames: np.ndarray,
    quats: np.ndarray,
    root_bone: str | None = None,
    root_location: np.ndarray | None = None,
) -> int:
    """Key rotation_quaternion for each bone from quats (T,B,4), and location on `root_bone`; returns keys written."""
    frames = np.asarray(frames, dtype=np.float32)
    quats = np.asarray(quats, dtype=np.float32)
    written = 0
    for b, name in enumerate(bone_names):
        path = f'pose.bones["{_escape(name)}"].rotation_quaternion'
        for c in range(4):
            write_curve(target, path, c, frames, quats[:, b, c], group=name)
            written += frames.shape[0]
    if root_bone is not None and root_location is not None:
        path = f'pose.bones["{_escape(root_bone)}"].location'
        for c in range(3):
            write_curve(target, path, c, frames, np.asarray(root_location[:, c], np.float32), group=root_bone)
            written += frames.shape[0]
    return written


def write_object_keys(target: ActionTarget, frames: np.ndarray, location: np.ndarray, quats: np.ndarray) -> None:
    """Key an object's location (T,3) and rotation_quaternion (T,4)."""
    frames = np.asarray(frames, dtype=np.float32)
    for c in range(3):
        write_curve(target, "location", c, frames, location[:, c], group="Object Transforms")
    for c in range(4):
        write_curve(target, "rotation_quaternion", c, frames, quats[:, c], group="Object Transforms")


def push_to_nla(owner: bpy.types.ID, target: ActionTarget, track_name: str, start: int) -> bpy.types.NlaStrip:
    """Put the action on a new NLA track of `owner` as one strip from frame `start`, and clear the active action."""
    anim = owner.animation_data or owner.animation_data_create()
    if anim.action is not None:
        anim.action = None
    track = anim.nla_tracks.new()
    track.name = track_name
    strip = track.strips.new(track_name, start, target.action)
    if target.slot is not None and hasattr(strip, "action_slot"):
        strip.action_slot = target.slot
    return strip


def solo_track(owner: bpy.types.ID, track_name: str) -> None:
    """Mute every NLA track of `owner` but the one named `track_name`."""
    anim = owner.animation_data
    if anim is None:
        return
    for track in anim.nla_tracks:
        track.mute = track.name != track_name


def _escape(name: str) -> str:
    """A bone name quoted for an RNA data path."""
    return name.replace("\\", "\\\\").replace('"', '\\"')


def action_fcurves(action: bpy.types.Action, slot: object | None = None) -> list[bpy.types.FCurve]:
    """The F-Curves an action holds for `slot` (its first slot when None); the legacy list before 4.4."""
    if not has_slotted_actions():
        return list(action.fcurves)
    if slot is None:
        if not action.slots:
            return []
        slot = action.slots[0]
    out: list[bpy.types.FCurve] = []
    for layer in action.layers:
        for strip in layer.strips:
            bag = strip.channelbag(slot)
            if bag is not None:
                out.extend(bag.fcurves)
    return out
