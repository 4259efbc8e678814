"""The VidRig sidebar panel (3D Viewport > Sidebar > VidRig), its lists, and the File > Import entry."""

from __future__ import annotations

import bpy

from . import operators, session

STATE_ICONS = {
    "submitting": "SORTTIME",
    "queued": "SORTTIME",
    "running": "PLAY",
    "done": "IMPORT",
    "imported": "CHECKMARK",
    "failed": "ERROR",
    "cancelled": "CANCEL",
}


def format_eta(seconds: float) -> str:
    """An ETA as m:ss (or h:mm:ss); empty when unknown."""
    if seconds < 0:
        return ""
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def progress_text(take: bpy.types.PropertyGroup) -> str:
    """'stage 42% (ETA 1:05)' for a running take."""
    text = f"{take.stage or take.state} {round(100 * take.fraction)}%"
    eta = format_eta(take.eta)
    return f"{text} (ETA {eta})" if eta else text


class VIDRIG_UL_takes(bpy.types.UIList):
    """Takes with their state."""

    bl_idname = "VIDRIG_UL_takes"

    def draw_item(self, _context, layout, _data, item, _icon, _active_data, _active_propname, _index=0, *_args):
        """One row: icon, name, and state or progress."""
        row = layout.row(align=True)
        row.label(text=item.name, icon=STATE_ICONS.get(item.state, "QUESTION"))
        row.label(text=progress_text(item) if item.state == "running" else item.state)


class VIDRIG_UL_overrides(bpy.types.UIList):
    """Setting overrides as key = value rows."""

    bl_idname = "VIDRIG_UL_overrides"

    def draw_item(self, _context, layout, _data, item, _icon, _active_data, _active_propname, _index=0, *_args):
        """One editable key/value row."""
        row = layout.row(align=True)
        row.prop(item, "key", text="")
        row.prop(item, "value", text="")


class VIDRIG_PT_main(bpy.types.Panel):
    """Reconstruct a video with the VidRig backend."""

    bl_idname = "VIDRIG_PT_main"
    bl_label = "VidRig"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "VidRig"

    def draw(self, context: bpy.types.Context) -> None:
        """Connection, job inputs, progress, takes and errors."""
        settings = context.scene.vidrig
        layout = self.layout
        row = layout.row(align=True)
        connected = session.SESSION.connected
        row.label(text=settings.status, icon="LINKED" if connected else "UNLINKED")
        row.operator("vidrig.connect", text="", icon="FILE_REFRESH")
        backend = layout.row(align=True)
        if session.backend_running():
            backend.operator("vidrig.stop_backend", icon="PAUSE")
        else:
            backend.operator("vidrig.start_backend", icon="PLAY")
        backend.operator("vidrig.open_log", text="", icon="TEXT")

        col = layout.column()
        col.prop(settings, "video")
        col.prop(settings, "preset")
        col.label(text="Overrides")
        row = col.row()
        row.template_list("VIDRIG_UL_overrides", "", settings, "overrides", settings, "override_index", rows=2)
        sub = row.column(align=True)
        sub.operator("vidrig.override_add", text="", icon="ADD")
        sub.operator("vidrig.override_remove", text="", icon="REMOVE")
        row = col.row(align=True)
        row.prop(settings, "use_frame_range")
        sub = row.row(align=True)
        sub.active = settings.use_frame_range
        sub.prop(settings, "frame_first")
        sub.prop(settings, "frame_last")

        running = session.job_running(settings)
        if running is None:
            layout.operator("vidrig.reconstruct", icon="RENDER_ANIMATION")
        else:
            box = layout.box()
            box.label(text=f"{running.name}: {running.message or running.state}")
            box.progress(factor=running.fraction, type="BAR", text=progress_text(running))
            box.operator("vidrig.cancel", icon="CANCEL", text="Cancel (Esc)")
        layout.operator("vidrig.import_result", text="Import Result File...", icon="IMPORT")

        layout.label(text="Takes")
        layout.template_list("VIDRIG_UL_takes", "", settings, "takes", settings, "take_index", rows=3)
        take = settings.active_take()
        if take is not None and take.message:
            layout.label(text=take.message)

        if settings.error:
            box = layout.box()
            box.alert = True
            for i, line in enumerate(_wrap(settings.error, 48)):
                box.label(text=line, icon="ERROR" if i == 0 else "BLANK1")


class VIDRIG_PT_retarget(bpy.types.Panel):
    """Retarget the selected take onto another armature."""

    bl_idname = "VIDRIG_PT_retarget"
    bl_label = "Retarget"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "VidRig"
    bl_parent_id = "VIDRIG_PT_main"
    bl_options = {"DEFAULT_CLOSED"}  # noqa: RUF012 (Blender reads a plain set)

    def draw(self, context: bpy.types.Context) -> None:
        """Target, bone map, root motion and the bake button."""
        settings = context.scene.vidrig
        col = self.layout.column()
        col.prop(settings, "retarget_target")
        col.prop(settings, "retarget_map")
        if settings.retarget_map == "CUSTOM":
            col.prop(settings, "retarget_map_file")
        col.prop(settings, "root_motion")
        col.operator("vidrig.retarget", icon="ARMATURE_DATA")


def _wrap(text: str, width: int) -> list[str]:
    """Split a sentence into panel-width lines at spaces."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        lines.append(current)
    return lines


def menu_import(self: bpy.types.Menu, _context: bpy.types.Context) -> None:
    """File > Import > VidRig Result (.npz)."""
    self.layout.operator(operators.VIDRIG_OT_import_result.bl_idname, text="VidRig Result (.npz)")


CLASSES = (VIDRIG_UL_takes, VIDRIG_UL_overrides, VIDRIG_PT_main, VIDRIG_PT_retarget)
