"""The sidebar panel's draw code against the real scene settings, with a layout that records what it is asked to show.

Headless Blender has no window to draw into, so a recording layout checks every property, operator and list it names.
"""

from __future__ import annotations

import bpy


class RecordingLayout:
    """Stands in for UILayout: checks names against Blender's registries and records labels, props and buttons."""

    def __init__(self, log: list[tuple[str, str]]) -> None:
        object.__setattr__(self, "log", log)

    def __setattr__(self, name: str, value: object) -> None:
        """alert, active, enabled: recorded, not checked."""
        self.log.append(("set", f"{name}={value}"))

    def _child(self, *_args: object, **_kwargs: object) -> RecordingLayout:
        return RecordingLayout(self.log)

    row = column = box = split = _child

    def label(self, text: str = "", icon: str = "NONE") -> None:
        """A text line."""
        self.log.append(("label", text))

    def prop(self, data: bpy.types.bpy_struct, name: str, **_kwargs: object) -> None:
        """A property widget: the property must exist."""
        assert name in data.bl_rna.properties, name
        self.log.append(("prop", name))

    def operator(self, idname: str, **_kwargs: object) -> None:
        """A button: the operator must be registered."""
        module, op = idname.split(".")
        assert hasattr(getattr(bpy.ops, module), op) and getattr(getattr(bpy.ops, module), op).idname(), idname
        self.log.append(("operator", idname))

    def template_list(self, list_type: str, _list_id: str, data, prop: str, active_data, active_prop: str, **_kw):
        """A UIList: its class registered, its collection and index properties present."""
        assert hasattr(bpy.types, list_type), list_type
        assert prop in data.bl_rna.properties and active_prop in active_data.bl_rna.properties
        self.log.append(("list", prop))

    def progress(self, factor: float = 0.0, type: str = "BAR", text: str = "") -> None:
        """The progress bar."""
        assert type in ("BAR", "RING") and 0.0 <= factor <= 1.0
        self.log.append(("progress", f"{factor:.2f} {text}"))


def _draw(clean, panel_name: str) -> list[tuple[str, str]]:
    """Run a panel's draw() with a recording layout; returns the log."""
    log: list[tuple[str, str]] = []
    panel = getattr(clean.ui, panel_name)
    holder = type("Holder", (), {"layout": RecordingLayout(log)})()
    panel.draw(holder, bpy.context)
    return log


def test_idle_panel_offers_reconstruct_and_import(clean):
    """Nothing running: video, preset, overrides, frame range, Reconstruct, Import and the take list."""
    log = _draw(clean, "VIDRIG_PT_main")
    assert ("label", "not connected") in log
    for name in ("video", "preset", "use_frame_range", "frame_first", "frame_last"):
        assert ("prop", name) in log
    assert ("operator", "vidrig.reconstruct") in log and ("operator", "vidrig.import_result") in log
    assert ("operator", "vidrig.cancel") not in log
    assert ("list", "overrides") in log and ("list", "takes") in log


def test_running_job_shows_progress_eta_and_cancel(clean):
    """A running take replaces Reconstruct with its progress bar (stage, percent, ETA) and Cancel."""
    settings = bpy.context.scene.vidrig
    take = settings.takes.add()
    take.name, take.state, take.stage, take.fraction, take.eta = "walk_fast_01", "running", "perception", 0.42, 65.0
    take.message = "tracking the person"
    log = _draw(clean, "VIDRIG_PT_main")
    assert ("progress", "0.42 perception 42% (ETA 1:05)") in log
    assert ("label", "walk_fast_01: tracking the person") in log
    assert ("operator", "vidrig.cancel") in log and ("operator", "vidrig.reconstruct") not in log


def test_errors_show_as_wrapped_sentences(clean):
    """The last error is shown in an alert box, wrapped to the sidebar's width."""
    settings = bpy.context.scene.vidrig
    settings.error = clean.errors.explain("E_MODEL_MISSING", "no SMPLX_NEUTRAL.npz in /models")
    log = _draw(clean, "VIDRIG_PT_main")
    lines = [text for kind, text in log if kind == "label"]
    joined = " ".join(lines)
    assert "A body model file is missing: set the model folder in the add-on preferences." in joined
    assert all(len(line) <= 48 for line in lines if line and line in settings.error)


def test_retarget_panel(clean):
    """Target, map, custom file when chosen, root motion, Retarget."""
    settings = bpy.context.scene.vidrig
    settings.retarget_map = "CUSTOM"
    log = _draw(clean, "VIDRIG_PT_retarget")
    for name in ("retarget_target", "retarget_map", "retarget_map_file", "root_motion"):
        assert ("prop", name) in log
    assert ("operator", "vidrig.retarget") in log


def test_file_import_menu_entry(clean):
    """File > Import lists VidRig Result (.npz)."""
    log: list[tuple[str, str]] = []
    holder = type("Holder", (), {"layout": RecordingLayout(log)})()
    assert clean.ui.menu_import in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()
    clean.ui.menu_import(holder, bpy.context)
    assert log == [("operator", "vidrig.import_result")]


def test_take_rows_show_state_or_progress(clean):
    """A running take's row shows its stage and percentage; others their state."""
    settings = bpy.context.scene.vidrig
    running, done = settings.takes.add(), settings.takes.add()
    running.name, running.state, running.stage, running.fraction = "a", "running", "fit", 0.25
    done.name, done.state = "b", "imported"
    log: list[tuple[str, str]] = []
    ui_list = clean.ui.VIDRIG_UL_takes
    for item in (running, done):
        ui_list.draw_item(None, bpy.context, RecordingLayout(log), settings, item, 0, settings, "take_index")
    assert log == [("label", "a"), ("label", "fit 25%"), ("label", "b"), ("label", "imported")]
