"""VidRig for Blender: reconstruct SMPL-X animation from video with the VidRig backend, import it, retarget it."""

from __future__ import annotations

import atexit

import bpy

from . import operators, props, session, ui

_CLASSES = (*props.CLASSES, *operators.CLASSES, *ui.CLASSES)


def register() -> None:
    """Register classes, the scene settings and the File > Import entry."""
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.vidrig = bpy.props.PointerProperty(type=props.VidrigSceneSettings)
    bpy.types.TOPBAR_MT_file_import.append(ui.menu_import)
    atexit.register(session.at_exit)  # Blender does not unregister add-ons when it quits


def unregister() -> None:
    """Stop the link thread, its timer and any launched backend, then remove everything register() added."""
    atexit.unregister(session.at_exit)
    session.shutdown()
    bpy.types.TOPBAR_MT_file_import.remove(ui.menu_import)
    del bpy.types.Scene.vidrig
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
