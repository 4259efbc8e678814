"""Sparse feature tracks over a clip: Shi-Tomasi corners followed by pyramidal Lucas-Kanade, person masked out."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from backend.camera.types import CameraSettings

_WIN = (15, 15)
_LEVELS = 3
_LK_PARAMS = {
    "winSize": _WIN,
    "maxLevel": _LEVELS,
    "criteria": (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03),
}


@dataclass
class Tracks:
    """Per-frame feature observations: ids[f] (n,) int64 sorted, pts[f] (n,2) float32 tracking pixels."""

    ids: list[np.ndarray] = field(default_factory=list)
    pts: list[np.ndarray] = field(default_factory=list)
    colors: list[np.ndarray] = field(default_factory=list)  # colour of track id i at its birth, (3,) uint8

    @property
    def n_frames(self) -> int:
        """Number of frames tracked."""
        return len(self.ids)

    def color_array(self) -> np.ndarray:
        """(n_tracks,3) uint8 colours indexed by track id."""
        return np.array(self.colors, np.uint8).reshape(-1, 3)

    def shared(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Track ids seen in both frames a and b, with their points in a and in b."""
        common, ia, ib = np.intersect1d(self.ids[a], self.ids[b], assume_unique=True, return_indices=True)
        return common, self.pts[a][ia], self.pts[b][ib]


class FeatureTracker:
    """Feeds frames one at a time and grows a `Tracks`; features on the (dilated) person mask are dropped."""

    def __init__(self, settings: CameraSettings):
        self.s = settings
        self.tracks = Tracks()
        self._prev_gray: np.ndarray | None = None
        self._ids = np.zeros(0, np.int64)
        self._pts = np.zeros((0, 2), np.float32)
        self._kernel = cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * settings.mask_dilate_px + 1, 2 * settings.mask_dilate_px + 1)
        )

    def dilate(self, mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
        """The person mask resized to `shape` (h, w) and dilated, as uint8 0/1; None when there is none."""
        if mask is None:
            return None
        m = np.asarray(mask)
        m = (m > 0.5).astype(np.uint8) if m.dtype != np.bool_ else m.astype(np.uint8)
        if m.shape[:2] != shape:
            m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
        if not m.any():
            return None
        return cv2.dilate(m, self._kernel)

    def add(self, image: np.ndarray, person: np.ndarray | None) -> None:
        """Track the current features into `image` (RGB uint8) and re-seed; `person` is a dilated 0/1 mask."""
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        ids, pts = self._ids, self._pts
        if self._prev_gray is not None and len(pts):
            p0 = pts.reshape(-1, 1, 2)
            p1, st, _ = cv2.calcOpticalFlowPyrLK(self._prev_gray, gray, p0, None, **_LK_PARAMS)
            p0r, st_b, _ = cv2.calcOpticalFlowPyrLK(gray, self._prev_gray, p1, None, **_LK_PARAMS)
            p1 = p1.reshape(-1, 2)
            fb = np.linalg.norm(p0r.reshape(-1, 2) - pts, axis=1)
            ok = (st.ravel() == 1) & (st_b.ravel() == 1) & (fb < self.s.fb_max_error)
            ok &= (p1[:, 0] >= 0) & (p1[:, 0] <= w - 1) & (p1[:, 1] >= 0) & (p1[:, 1] <= h - 1)
            ids, pts = ids[ok], p1[ok]
        if person is not None and len(pts):
            xi = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
            yi = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
            keep = person[yi, xi] == 0
            ids, pts = ids[keep], pts[keep]
        if len(pts) < 0.9 * self.s.max_features:
            ids, pts = self._seed(image, gray, person, ids, pts)
        self._prev_gray, self._ids, self._pts = gray, ids, pts.astype(np.float32)
        order = np.argsort(ids)
        self.tracks.ids.append(ids[order])
        self.tracks.pts.append(self._pts[order])

    def _seed(
        self, image: np.ndarray, gray: np.ndarray, person: np.ndarray | None, ids: np.ndarray, pts: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Add new corners away from existing features and the person."""
        h, w = gray.shape
        allowed = np.full((h, w), 255, np.uint8)
        if person is not None:
            allowed[person > 0] = 0
        r = self.s.min_feature_distance
        for x, y in np.round(pts).astype(int):
            cv2.circle(allowed, (int(x), int(y)), r, 0, -1)
        want = self.s.max_features - len(pts)
        corners = cv2.goodFeaturesToTrack(
            gray, maxCorners=want, qualityLevel=self.s.feature_quality, minDistance=r, mask=allowed, blockSize=5
        )
        if corners is None:
            return ids, pts
        new = corners.reshape(-1, 2).astype(np.float32)
        first = len(self.tracks.colors)
        xi = np.clip(np.round(new[:, 0]).astype(int), 0, w - 1)
        yi = np.clip(np.round(new[:, 1]).astype(int), 0, h - 1)
        self.tracks.colors.extend(image[yi, xi].astype(np.uint8))
        new_ids = np.arange(first, first + len(new), dtype=np.int64)
        return np.concatenate([ids, new_ids]), np.concatenate([pts.reshape(-1, 2), new])
