"""Add-on preferences and the per-scene settings and take list the panel edits."""

from __future__ import annotations

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from . import bake
from .protocol.client import DEFAULT_ENDPOINT
from .retarget import preset_maps

ADDON_ID = __package__

# Enum items must stay referenced while Blender shows them, so the lists live at module level and a preset list,
# once shown, is never mutated (a new welcome appends a new list).
_preset_lists: list[list[tuple[str, str, str]]] = [[("", "(connect to list presets)", "")]]
_map_items: list[tuple[str, str, str]] = []


def set_presets(presets: list[dict]) -> None:
    """Fill the preset menu from a welcome's presets ({name, method, description})."""
    items = [
        (str(p["name"]), str(p["name"]), str(p.get("description", "") or p.get("method", "")))
        for p in presets
        if p.get("name")
    ]
    _preset_lists.append(items or [("", "(the backend offers no presets)", "")])


def _presets(_self: object, _context: object) -> list[tuple[str, str, str]]:
    """Enum items for the preset menu."""
    return _preset_lists[-1]


def _maps(_self: object, _context: object) -> list[tuple[str, str, str]]:
    """Enum items for the bone-map presets plus a custom file (built once: Blender keeps pointers to the strings)."""
    if not _map_items:
        _map_items.extend((stem, stem.replace("_", " ").title(), str(path)) for stem, path in preset_maps().items())
        _map_items.append(("CUSTOM", "Custom JSON file", "A bone map of your own"))
    return _map_items


def preferences(context: bpy.types.Context | None = None) -> VidrigPreferences:
    """This add-on's preferences."""
    context = context or bpy.context
    return context.preferences.addons[ADDON_ID].preferences


def _take_selected(settings: VidrigSceneSettings, _context: bpy.types.Context) -> None:
    """Selecting a take plays its NLA track on its rig."""
    take = settings.active_take()
    if take is not None and take.armature is not None:
        bake.solo_track(take.armature, take.name)


class VidrigPreferences(bpy.types.AddonPreferences):
    """Where the backend is and how to start one, and where model files and CURVE keys live."""

    bl_idname = ADDON_ID

    endpoint: StringProperty(name="Backend endpoint", default=DEFAULT_ENDPOINT)  # type: ignore[valid-type]
    launch_command: StringProperty(  # type: ignore[valid-type]
        name="Launch command",
        description="Command that starts a local backend (for example: vidrig serve); empty to start it yourself",
        default="",
    )
    models_dir: StringProperty(name="Model folder", subtype="DIR_PATH", default="")  # type: ignore[valid-type]
    keys_dir: StringProperty(  # type: ignore[valid-type]
        name="CURVE keys folder",
        description="Folder made by `vidrig keys` (client.key_secret, server.key); empty for a loopback backend",
        subtype="DIR_PATH",
        default="",
    )
    timeout: FloatProperty(name="Reply timeout (s)", default=5.0, min=0.5, max=120.0)  # type: ignore[valid-type]

    def draw(self, _context: bpy.types.Context) -> None:
        """The preferences page."""
        col = self.layout.column()
        col.prop(self, "endpoint")
        col.prop(self, "launch_command")
        col.prop(self, "models_dir")
        col.prop(self, "keys_dir")
        col.prop(self, "timeout")


class VidrigOverride(bpy.types.PropertyGroup):
    """One setting override sent with a job (value parsed as JSON when it parses, else a string)."""

    key: StringProperty(name="Key")  # type: ignore[valid-type]
    value: StringProperty(name="Value")  # type: ignore[valid-type]


class VidrigTake(bpy.types.PropertyGroup):
    """One reconstruction: its job, state, progress and what was imported for it (`name` is the take name)."""

    job: StringProperty(name="Job")  # type: ignore[valid-type]
    state: StringProperty(name="State", default="submitting")  # type: ignore[valid-type]
    stage: StringProperty(name="Stage")  # type: ignore[valid-type]
    fraction: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR")  # type: ignore[valid-type]
    eta: FloatProperty(name="ETA", default=-1.0)  # type: ignore[valid-type]
    message: StringProperty(name="Message")  # type: ignore[valid-type]
    video: StringProperty(name="Video", subtype="FILE_PATH")  # type: ignore[valid-type]
    armature: PointerProperty(type=bpy.types.Object, name="Armature")  # type: ignore[valid-type]


class VidrigSceneSettings(bpy.types.PropertyGroup):
    """What the panel edits: the job to submit, the takes, retarget choices, the last error."""

    video: StringProperty(name="Video", subtype="FILE_PATH")  # type: ignore[valid-type]
    preset: EnumProperty(name="Preset", items=_presets)  # type: ignore[valid-type]
    overrides: CollectionProperty(type=VidrigOverride)  # type: ignore[valid-type]
    override_index: IntProperty()  # type: ignore[valid-type]
    use_frame_range: BoolProperty(name="Frame range", default=False)  # type: ignore[valid-type]
    frame_first: IntProperty(name="First", default=0, min=0)  # type: ignore[valid-type]
    frame_last: IntProperty(name="Last", default=100, min=0)  # type: ignore[valid-type]
    takes: CollectionProperty(type=VidrigTake)  # type: ignore[valid-type]
    take_index: IntProperty(name="Take", update=_take_selected)  # type: ignore[valid-type]
    error: StringProperty(name="Error")  # type: ignore[valid-type]
    status: StringProperty(name="Backend status", default="not connected")  # type: ignore[valid-type]
    retarget_target: PointerProperty(  # type: ignore[valid-type]
        type=bpy.types.Object, name="Target", poll=lambda _self, obj: obj.type == "ARMATURE"
    )
    retarget_map: EnumProperty(name="Bone map", items=_maps)  # type: ignore[valid-type]
    retarget_map_file: StringProperty(name="Map file", subtype="FILE_PATH")  # type: ignore[valid-type]
    root_motion: EnumProperty(  # type: ignore[valid-type]
        name="Root motion",
        items=[
            ("WORLD", "World", "The target travels like the source, scaled by hip height"),
            ("IN_PLACE", "In place", "Keep only the vertical root motion"),
        ],
    )

    def active_take(self) -> VidrigTake | None:
        """The take selected in the list."""
        if 0 <= self.take_index < len(self.takes):
            return self.takes[self.take_index]
        return None


CLASSES = (VidrigPreferences, VidrigOverride, VidrigTake, VidrigSceneSettings)
