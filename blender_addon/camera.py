"""The reconstructed camera: intrinsics K -> lens, sensor and shift; per-frame extrinsics; the video as background."""

from __future__ import annotations

import os
from dataclasses import dataclass

import bpy
import numpy as np

from . import bake
from .mathutil import OPENCV_TO_BLENDER_CAMERA, YUP_TO_ZUP, matrix_to_quat, quat_continuous

SENSOR_WIDTH_MM = 36.0


@dataclass(frozen=True)
class Lens:
    """Blender camera settings equivalent to a pinhole K for an image of width x height pixels."""

    lens_mm: float
    sensor_width_mm: float
    shift_x: float
    shift_y: float
    pixel_aspect_y: float  # render pixel aspect y / x, 1 unless fx != fy


def lens_from_k(K: np.ndarray, width: int, height: int) -> Lens:
    """Blender lens, sensor and shift for K: the sensor is fitted to the width, so shift is in units of the width."""
    fx, fy, cx, cy = float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])
    return Lens(
        lens_mm=fx * SENSOR_WIDTH_MM / width,
        sensor_width_mm=SENSOR_WIDTH_MM,
        shift_x=(width / 2.0 - cx) / width,
        shift_y=(cy - height / 2.0) / width,
        pixel_aspect_y=fx / fy,
    )


def camera_world_poses(R_w2c: np.ndarray, t_w2c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blender camera locations (T,3) and rotation quaternions (T,4) in the Z-up world for OpenCV world-to-camera."""
    R_w2c = np.asarray(R_w2c, np.float64)
    t_w2c = np.asarray(t_w2c, np.float64)
    R_c2w = np.swapaxes(R_w2c, -1, -2)
    centre = -np.einsum("tij,tj->ti", R_c2w, t_w2c)
    rot = YUP_TO_ZUP @ R_c2w @ OPENCV_TO_BLENDER_CAMERA
    return centre @ YUP_TO_ZUP.T, quat_continuous(matrix_to_quat(rot))


def _image_size(
    K: np.ndarray, clip: bpy.types.MovieClip | None, known: tuple[int, int] | None = None
) -> tuple[int, int]:
    """The image size: given, else the movie clip's, else twice the principal point."""
    if known is not None:
        return int(known[0]), int(known[1])
    if clip is not None and clip.size[0] > 0 and clip.size[1] > 0:
        return int(clip.size[0]), int(clip.size[1])
    return round(2 * float(K[0, 2])), round(2 * float(K[1, 2]))


def load_clip(video: str) -> bpy.types.MovieClip | None:
    """The movie clip for `video`, loaded once; None when the file is not there."""
    if not video or not os.path.isfile(video):
        return None
    path = os.path.abspath(video)
    for clip in bpy.data.movieclips:
        if bpy.path.abspath(clip.filepath) == path:
            return clip
    return bpy.data.movieclips.load(path)


def build_camera(
    name: str,
    K: np.ndarray,
    R_w2c: np.ndarray,
    t_w2c: np.ndarray,
    frames: np.ndarray,
    collection: bpy.types.Collection,
    video: str = "",
    set_render: bool = True,
    image_size: tuple[int, int] | None = None,
) -> tuple[bpy.types.Object, bake.ActionTarget]:
    """A camera object matching K and keyed per frame, with the video (if found) as its background."""
    clip = load_clip(video)
    width, height = _image_size(K, clip, image_size)
    lens = lens_from_k(np.asarray(K, np.float64), width, height)
    data = bpy.data.cameras.new(name)
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = lens.sensor_width_mm
    data.lens = lens.lens_mm
    data.shift_x = lens.shift_x
    data.shift_y = lens.shift_y
    data.clip_start = 0.01
    data.clip_end = 1000.0
    if clip is not None:
        data.show_background_images = True
        bg = data.background_images.new()
        bg.source = "MOVIE_CLIP"
        bg.clip = clip
        bg.alpha = 1.0
        bg.frame_method = "STRETCH"
        clip.frame_start = 1
    obj = bpy.data.objects.new(name, data)
    collection.objects.link(obj)
    obj.rotation_mode = "QUATERNION"
    if set_render:
        render = bpy.context.scene.render
        render.resolution_x = width
        render.resolution_y = height
        render.resolution_percentage = 100
        render.pixel_aspect_x = 1.0
        render.pixel_aspect_y = lens.pixel_aspect_y
    location, quats = camera_world_poses(R_w2c, t_w2c)
    obj.location = location[0]
    obj.rotation_quaternion = quats[0]
    target = bake.new_action(f"{name}Action", obj)
    bake.write_object_keys(target, frames, location, quats)
    bake.assign_action(obj, target)
    return obj, target
