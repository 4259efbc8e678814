"""Operators: connect, launch/stop the backend, reconstruct, cancel (button and Esc), import a result, retarget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import errors, importer, link, props, retarget, session
from .protocol.errors import VidrigError
from .protocol.result import Result

LOCAL_HOSTS = ("tcp://127.0.0.1:", "tcp://localhost:", "ipc://", "inproc://")


def _settings(context: bpy.types.Context) -> props.VidrigSceneSettings:
    """The scene's VidRig settings."""
    return context.scene.vidrig


def parse_overrides(settings: props.VidrigSceneSettings) -> dict[str, object]:
    """The override list as a settings dict: values that parse as JSON (numbers, true, lists) keep their type."""
    out: dict[str, object] = {}
    for item in settings.overrides:
        key = item.key.strip()
        if not key:
            continue
        try:
            out[key] = json.loads(item.value)
        except json.JSONDecodeError:
            out[key] = item.value
    return out


def unique_take_name(settings: props.VidrigSceneSettings, base: str) -> str:
    """`base_NN`, numbered past every take and collection already named so."""
    used = {t.name for t in settings.takes} | {c.name.removeprefix("VidRig ") for c in bpy.data.collections}
    n = 1
    while f"{base}_{n:02d}" in used:
        n += 1
    return f"{base}_{n:02d}"


class VIDRIG_OT_connect(bpy.types.Operator):
    """Connect to the VidRig backend and fetch its presets"""

    bl_idname = "vidrig.connect"
    bl_label = "Connect"

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Start (or restart) the link thread; the handshake result arrives through the timer."""
        prefs = props.preferences(context)
        current = session.SESSION.link
        if current is not None and current.alive and current.endpoint == prefs.endpoint:
            current.commands.put(link.HelloCommand())
        else:
            session.ensure_link(prefs.endpoint, bpy.path.abspath(prefs.keys_dir), prefs.timeout)
        _settings(context).status = f"connecting to {prefs.endpoint}..."
        return {"FINISHED"}


class VIDRIG_OT_disconnect(bpy.types.Operator):
    """Close the connection to the backend"""

    bl_idname = "vidrig.disconnect"
    bl_label = "Disconnect"

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Stop the link thread and its timer."""
        session.disconnect()
        _settings(context).status = "not connected"
        return {"FINISHED"}


class VIDRIG_OT_start_backend(bpy.types.Operator):
    """Start the local backend with the launch command from the preferences"""

    bl_idname = "vidrig.start_backend"
    bl_label = "Start Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Launch the process, then connect."""
        prefs = props.preferences(context)
        try:
            proc = session.start_backend(prefs.launch_command)
        except (OSError, ValueError) as exc:
            _settings(context).error = f"The backend could not be started: {exc}."
            self.report({"ERROR"}, _settings(context).error)
            return {"CANCELLED"}
        self.report({"INFO"}, f"backend started; log: {proc.log_path}")
        return bpy.ops.vidrig.connect()


class VIDRIG_OT_stop_backend(bpy.types.Operator):
    """Stop the backend this add-on started"""

    bl_idname = "vidrig.stop_backend"
    bl_label = "Stop Backend"

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Disconnect and terminate the process."""
        session.disconnect()
        session.stop_backend()
        _settings(context).status = "not connected"
        return {"FINISHED"}


class VIDRIG_OT_open_log(bpy.types.Operator):
    """Open the log of the backend started by this add-on"""

    bl_idname = "vidrig.open_log"
    bl_label = "Open Backend Log"

    def execute(self, _context: bpy.types.Context) -> set[str]:
        """Open the log file with the system's viewer."""
        path = session.log_path()
        if not path.exists():
            self.report({"WARNING"}, f"no backend log yet at {path}")
            return {"CANCELLED"}
        if sys.platform == "win32":
            os.startfile(path)  # type: ignore[attr-defined]
        else:
            subprocess.Popen(["open" if sys.platform == "darwin" else "xdg-open", str(path)])
        return {"FINISHED"}


class VIDRIG_OT_override_add(bpy.types.Operator):
    """Add a setting override"""

    bl_idname = "vidrig.override_add"
    bl_label = "Add Override"

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Append an empty key/value row."""
        settings = _settings(context)
        settings.overrides.add()
        settings.override_index = len(settings.overrides) - 1
        return {"FINISHED"}


class VIDRIG_OT_override_remove(bpy.types.Operator):
    """Remove the selected setting override"""

    bl_idname = "vidrig.override_remove"
    bl_label = "Remove Override"

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Drop the selected row."""
        settings = _settings(context)
        if 0 <= settings.override_index < len(settings.overrides):
            settings.overrides.remove(settings.override_index)
            settings.override_index = min(settings.override_index, len(settings.overrides) - 1)
        return {"FINISHED"}


class VIDRIG_OT_reconstruct(bpy.types.Operator):
    """Send the video to the backend and import the animation when it is done"""

    bl_idname = "vidrig.reconstruct"
    bl_label = "Reconstruct"

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Check the inputs, add a take, queue the submit on the link thread and watch for Esc."""
        settings = _settings(context)
        prefs = props.preferences(context)
        video = bpy.path.abspath(settings.video)
        if not settings.video:
            return self._fail(settings, "Choose a video file first.")
        if prefs.endpoint.startswith(LOCAL_HOSTS) and not os.path.isfile(video):
            return self._fail(settings, errors.explain(errors.VIDEO_MISSING, video))
        if settings.use_frame_range and settings.frame_last <= settings.frame_first:
            return self._fail(settings, "The last frame must come after the first frame.")
        take = settings.takes.add()
        take.name = unique_take_name(settings, Path(video).stem + (f"_{settings.preset}" if settings.preset else ""))
        take.video = video
        take.state = "submitting"
        settings.take_index = len(settings.takes) - 1
        settings.error = ""
        active = session.ensure_link(prefs.endpoint, bpy.path.abspath(prefs.keys_dir), prefs.timeout)
        frames = (settings.frame_first, settings.frame_last + 1) if settings.use_frame_range else None
        active.commands.put(
            link.SubmitCommand(
                request=take.name,
                video=video,
                preset=settings.preset or None,
                settings=parse_overrides(settings),
                frames=frames,
                models_dir=bpy.path.abspath(prefs.models_dir) or None,
            )
        )
        if context.window is not None:
            bpy.ops.vidrig.watch_job("INVOKE_DEFAULT")
        return {"FINISHED"}

    def _fail(self, settings: props.VidrigSceneSettings, sentence: str) -> set[str]:
        """Show a plain-words error in the panel and the status bar."""
        settings.error = sentence
        self.report({"ERROR"}, sentence)
        return {"CANCELLED"}


def cancel_running(settings: props.VidrigSceneSettings) -> bool:
    """Ask the backend to cancel the running job; False when there is none."""
    take = session.job_running(settings)
    current = session.SESSION.link
    if take is None or current is None or not take.job:
        return False
    current.commands.put(link.CancelCommand(take.job))
    take.message = "cancelling..."
    return True


class VIDRIG_OT_cancel(bpy.types.Operator):
    """Cancel the running reconstruction"""

    bl_idname = "vidrig.cancel"
    bl_label = "Cancel"

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Send a cancel for the running job."""
        if not cancel_running(_settings(context)):
            self.report({"WARNING"}, "no job is running")
            return {"CANCELLED"}
        return {"FINISHED"}


class VIDRIG_OT_watch_job(bpy.types.Operator):
    """While a job runs, Esc cancels it (other input passes through)"""

    bl_idname = "vidrig.watch_job"
    bl_label = "Watch VidRig Job"

    _timer = None

    def invoke(self, context: bpy.types.Context, _event: bpy.types.Event) -> set[str]:
        """Install the modal handler and a slow timer to notice when the job ends."""
        self._timer = context.window_manager.event_timer_add(0.25, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        """Esc cancels; finish once no job is running."""
        settings = _settings(context)
        if event.type == "ESC" and event.value == "PRESS":
            cancel_running(settings)
            self._finish(context)
            return {"FINISHED"}
        if event.type == "TIMER" and session.job_running(settings) is None:
            self._finish(context)
            return {"FINISHED"}
        return {"PASS_THROUGH"}

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender ends the operator (file load, quit): remove the timer."""
        self._finish(context)

    def _finish(self, context: bpy.types.Context) -> None:
        """Remove the timer exactly once."""
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None


class VIDRIG_OT_import_result(bpy.types.Operator, ImportHelper):
    """Import a VidRig result file (.npz): rig, mesh, animation, camera, points, hands (no backend needed)"""

    bl_idname = "vidrig.import_result"
    bl_label = "Import VidRig Result"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})  # type: ignore[valid-type]
    video: StringProperty(  # type: ignore[valid-type]
        name="Video", description="The source video, shown behind the camera (optional)", subtype="FILE_PATH"
    )

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Load the file and build its take."""
        settings = _settings(context)
        path = Path(self.filepath)
        try:
            result = Result.load_npz(path)
        except VidrigError as exc:
            settings.error = errors.explain(errors.NO_RESULT_FILE, exc.message)
            self.report({"ERROR"}, settings.error)
            return {"CANCELLED"}
        name = unique_take_name(settings, path.stem)
        video = bpy.path.abspath(self.video or settings.video)
        try:
            imported = importer.import_result(result, name, video, context.scene)
        except VidrigError as exc:
            settings.error = f"The result file could not be imported: {exc.message}"
            self.report({"ERROR"}, settings.error)
            return {"CANCELLED"}
        take = settings.takes.add()
        take.name = name
        take.state = "imported"
        take.fraction = 1.0
        take.video = video
        take.message = f"from {path.name}"
        if imported.armature:
            take.armature = bpy.data.objects[imported.armature]
        settings.take_index = len(settings.takes) - 1
        settings.error = ""
        return {"FINISHED"}


class VIDRIG_OT_retarget(bpy.types.Operator):
    """Bake the selected take onto the target armature through the chosen bone map"""

    bl_idname = "vidrig.retarget"
    bl_label = "Retarget"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a plain set)

    root_motion: EnumProperty(  # type: ignore[valid-type]
        name="Root motion", items=[("SCENE", "As in panel", ""), ("WORLD", "World", ""), ("IN_PLACE", "In place", "")]
    )

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Resolve the map, sample the take's frames, bake onto the target."""
        settings = _settings(context)
        take = settings.active_take()
        target = settings.retarget_target
        if take is None or take.armature is None:
            return self._fail(settings, "Select an imported take first.")
        if target is None or target.type != "ARMATURE":
            return self._fail(settings, "Choose the armature to retarget onto.")
        map_path = (
            Path(bpy.path.abspath(settings.retarget_map_file))
            if settings.retarget_map == "CUSTOM"
            else retarget.preset_maps().get(settings.retarget_map)
        )
        if map_path is None:
            return self._fail(settings, "Choose a bone map.")
        mode = settings.root_motion if self.root_motion == "SCENE" else self.root_motion
        try:
            bone_map = retarget.load_map(map_path)
            action, _slot, offset = retarget.take_action(take.armature)
            first, last = action.frame_range
            frames = list(range(round(first + offset), round(last + offset) + 1))
            baked = retarget.retarget(
                take.armature, target, bone_map, frames, mode, action_name=f"{take.name} on {target.name}"
            )
        except VidrigError as exc:
            return self._fail(settings, f"Retargeting failed: {exc.message}")
        self.report({"INFO"}, f"baked {len(frames)} frames into {baked.action.name}")
        return {"FINISHED"}

    def _fail(self, settings: props.VidrigSceneSettings, sentence: str) -> set[str]:
        """Show a plain-words error."""
        settings.error = sentence
        self.report({"ERROR"}, sentence)
        return {"CANCELLED"}


CLASSES = (
    VIDRIG_OT_connect,
    VIDRIG_OT_disconnect,
    VIDRIG_OT_start_backend,
    VIDRIG_OT_stop_backend,
    VIDRIG_OT_open_log,
    VIDRIG_OT_override_add,
    VIDRIG_OT_override_remove,
    VIDRIG_OT_reconstruct,
    VIDRIG_OT_cancel,
    VIDRIG_OT_watch_job,
    VIDRIG_OT_import_result,
    VIDRIG_OT_retarget,
)
