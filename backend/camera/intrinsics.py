"""Camera intrinsics of a video: focal length from file metadata when present, else a default field of view."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np

from backend.camera.types import CameraSettings

if TYPE_CHECKING:
    from backend.video import VideoInfo

FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


def focal_from_fov(width: int, fov_deg: float) -> float:
    """Focal length in pixels of an image `width` pixels wide with horizontal field of view `fov_deg`."""
    return 0.5 * width / math.tan(math.radians(fov_deg) / 2.0)


def focal_from_35mm(width: int, height: int, f35_mm: float) -> float:
    """Focal length in pixels from a 35 mm-equivalent focal length (defined on the frame diagonal)."""
    return f35_mm * math.hypot(width, height) / FULL_FRAME_DIAGONAL_MM


def metadata_focal_35mm(tags: dict[str, str]) -> float | None:
    """The 35 mm-equivalent focal length named in container/stream tags, or None when no tag gives one."""
    for key, value in tags.items():
        k = key.lower()
        if "focal" in k and ("35" in k or "equiv" in k):
            m = _NUMBER.search(str(value))
            if m and 4.0 <= float(m.group()) <= 2000.0:
                return float(m.group())
    return None


def _read_tags(path: str) -> dict[str, str]:
    """Container and video-stream metadata tags of a file (empty when the file cannot be opened)."""
    import av

    try:
        with av.open(str(path)) as container:
            tags = dict(container.metadata)
            for stream in container.streams.video:
                tags.update(stream.metadata)
            return tags
    except (av.error.FFmpegError, OSError):
        return {}


def intrinsics_with_source(info: VideoInfo, settings: CameraSettings | None = None) -> tuple[np.ndarray, str]:
    """K (see `intrinsics`) and where its focal length came from: "override", "metadata" or "default"."""
    settings = settings or CameraSettings()
    w, h = int(info.width), int(info.height)
    if settings.focal_px is not None:
        f, source = float(settings.focal_px), "override"
    else:
        f35 = metadata_focal_35mm(_read_tags(info.path))
        if f35 is not None:
            f, source = focal_from_35mm(w, h, f35), "metadata"
        else:
            f, source = focal_from_fov(w, settings.fov_deg), "default"
    return np.array([[f, 0.0, w / 2.0], [0.0, f, h / 2.0], [0.0, 0.0, 1.0]]), source


def intrinsics(info: VideoInfo, settings: CameraSettings | None = None) -> np.ndarray:
    """(3,3) K in pixels of the displayed video: settings override > 35 mm focal tag > default horizontal fov."""
    return intrinsics_with_source(info, settings)[0]
