"""Which part of the frame the detectors look at: the whole frame, a crop that follows the subject, or tiles.

Small people are invisible to mediapipe's detectors on a full frame, so once found the subject is followed
with a crop about `crop_scale` times its size. The crop only moves when the subject nears its border or
changes size a lot, so mediapipe's frame-to-frame tracking sees a steady image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

# The crop is kept while the subject's box stays inside this inner fraction of it...
_KEEP_INNER = 0.8
# ...and its size stays within this factor of the size the crop was made for.
_KEEP_SIZE_RATIO = 1.5
# A crop covering this fraction of the frame on both axes is replaced by the whole frame.
_FULL_FRAME_FRACTION = 0.8
# Smallest crop side in pixels (mediapipe's detectors work on 224-256 px inputs).
_MIN_SIDE = 160
# While lost, the crop around the last box is enlarged by this factor and kept for this many seconds.
_LOST_GROWTH = 1.5
_LOST_CROP_SECONDS = 1.0
# A re-found subject must lie within (base + rate * seconds lost) x the last box diagonal of the last box.
_REACQUIRE_BASE = 0.5
_REACQUIRE_RATE = 1.0


@dataclass(frozen=True)
class View:
    """A window x0, y0, x1, y1 (pixels, end exclusive) of the full frame."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        """Window width in pixels."""
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        """Window height in pixels."""
        return self.y1 - self.y0

    def is_full(self, width: int, height: int) -> bool:
        """Whether the window is the whole frame."""
        return (self.x0, self.y0, self.x1, self.y1) == (0, 0, width, height)

    def to_pixels(self, normalized: np.ndarray) -> np.ndarray:
        """Map mediapipe coordinates normalised to this window (x, y in [0, 1]) to full-frame pixels."""
        out = np.asarray(normalized, np.float64).copy()
        out[..., 0] = self.x0 + out[..., 0] * self.width
        out[..., 1] = self.y0 + out[..., 1] * self.height
        return out

    def cut(self, frame: np.ndarray, max_side: int) -> np.ndarray:
        """The window's pixels, shrunk (never enlarged) so the larger side is at most `max_side`."""
        crop = frame[self.y0 : self.y1, self.x0 : self.x1]
        side = max(crop.shape[0], crop.shape[1])
        if side > max_side:
            s = max_side / side
            size = (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s)))
            return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(crop)


def full_view(width: int, height: int) -> View:
    """The whole frame."""
    return View(0, 0, width, height)


def view_around(box: np.ndarray, scale: float, width: int, height: int) -> View:
    """A window with the frame's aspect ratio, `scale` times the box's size, centred on it, inside the frame."""
    aspect = width / height
    bw, bh = float(box[2] - box[0]), float(box[3] - box[1])
    vh = max(scale * max(bh, bw / aspect), _MIN_SIDE)
    vw = vh * aspect
    if vw >= _FULL_FRAME_FRACTION * width or vh >= _FULL_FRAME_FRACTION * height:
        return full_view(width, height)
    cx, cy = float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2
    x0 = round(min(max(cx - vw / 2, 0.0), width - vw))
    y0 = round(min(max(cy - vh / 2, 0.0), height - vh))
    return View(x0, y0, min(width, x0 + round(vw)), min(height, y0 + round(vh)))


def search_tiles(width: int, height: int, zooms: tuple[float, ...]) -> list[View]:
    """Overlapping windows 1/zoom of the frame, half a window apart, for each zoom in turn."""
    tiles: list[View] = []
    for zoom in zooms:
        tw, th = round(width / zoom), round(height / zoom)
        nx = max(1, math.ceil(2 * zoom - 1))
        ny = max(1, math.ceil(2 * zoom - 1))
        xs = np.linspace(0, width - tw, nx).round().astype(int)
        ys = np.linspace(0, height - th, ny).round().astype(int)
        tiles.extend(View(int(x), int(y), int(x) + tw, int(y) + th) for y in ys for x in xs)
    return tiles


def tiles_nearest_first(tiles: list[View], box: np.ndarray | None) -> list[View]:
    """The tiles ordered by how close their centre is to the box's centre (as given when there is no box)."""
    if box is None:
        return list(tiles)
    c = _centre(box)
    return sorted(tiles, key=lambda t: float(np.hypot((t.x0 + t.x1) / 2 - c[0], (t.y0 + t.y1) / 2 - c[1])))


class SubjectTracker:
    """Remembers where the subject is and chooses the window to look at in the next frame."""

    def __init__(self, width: int, height: int, fps: float, crop_scale: float, use_crops: bool):
        self.width, self.height = width, height
        self.fps = fps
        self.crop_scale = crop_scale
        self.use_crops = use_crops
        self.box: np.ndarray | None = None  # last box seen
        self.frames_lost = 0
        self.from_body = False
        self._view = full_view(width, height)
        self._view_box_size = 0.0

    @property
    def tracking(self) -> bool:
        """Whether the subject was seen in the previous frame."""
        return self.box is not None and self.frames_lost == 0

    def next_view(self) -> View:
        """The window for the next frame: a steady crop while tracking, a wider one briefly when lost."""
        if not self.use_crops or self.box is None or not self.from_body:
            return full_view(self.width, self.height)
        if self.tracking:
            if not self._keeps(self._view, self.box):
                self._view = view_around(self.box, self.crop_scale, self.width, self.height)
                self._view_box_size = self._box_size(self.box)
            return self._view
        if self.frames_lost <= _LOST_CROP_SECONDS * self.fps:
            return view_around(self.box, self.crop_scale * _LOST_GROWTH, self.width, self.height)
        return full_view(self.width, self.height)

    def accepts(self, box: np.ndarray) -> bool:
        """Whether a newly found box may be the subject: near where it was last seen, the more so the longer lost."""
        if self.box is None:
            return True
        last = _centre(self.box)
        if box[0] <= last[0] <= box[2] and box[1] <= last[1] <= box[3]:
            return True  # e.g. the body around the hands that were all we saw of it
        diag = max(self._box_size(self.box), self._box_size(box))
        seconds = self.frames_lost / self.fps
        limit = diag * (_REACQUIRE_BASE + _REACQUIRE_RATE * seconds)
        return bool(np.linalg.norm(_centre(box) - last) <= limit)

    def update(self, box: np.ndarray | None, from_body: bool = True) -> None:
        """Record this frame's box (None when the subject was not found).

        A box made only of hands is followed on the whole frame: mediapipe's palm detector needs the context
        around a hand and misses hands that fill a tight crop.
        """
        if box is None:
            self.frames_lost += 1
            return
        self.box = np.asarray(box, np.float64)
        self.frames_lost = 0
        self.from_body = from_body

    def adopt(self, box: np.ndarray) -> View:
        """Start following a box found by the search; returns the crop to look at now."""
        self.box = np.asarray(box, np.float64)
        self.frames_lost = 0
        self.from_body = True
        self._view = view_around(self.box, self.crop_scale, self.width, self.height)
        self._view_box_size = self._box_size(self.box)
        return self._view

    def _keeps(self, view: View, box: np.ndarray) -> bool:
        """Whether `view` still suits the subject at `box`."""
        full = view.is_full(self.width, self.height)
        size = self._box_size(box)
        if self._view_box_size <= 0:
            return False
        ratio = size / self._view_box_size
        if not 1 / _KEEP_SIZE_RATIO <= ratio <= _KEEP_SIZE_RATIO:
            return False
        if full:
            return True
        mx = view.width * (1 - _KEEP_INNER) / 2
        my = view.height * (1 - _KEEP_INNER) / 2
        return bool(
            box[0] >= view.x0 + mx and box[2] <= view.x1 - mx and box[1] >= view.y0 + my and box[3] <= view.y1 - my
        )

    @staticmethod
    def _box_size(box: np.ndarray) -> float:
        """Box diagonal in pixels."""
        return float(np.hypot(box[2] - box[0], box[3] - box[1]))


def _centre(box: np.ndarray) -> np.ndarray:
    """Centre of a box."""
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
