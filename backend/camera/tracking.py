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
MIN_MOTION_TRACKS = 12  # tracks needed to fit the previous frame's motion for the constant-velocity guess
STILL_PX = 0.5  # median guessed motion (px) under which the constant-velocity start is the zero start


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


def _fit_motion(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Robust homography a -> b of tracked points (the background's frame-to-frame motion), None if too few."""
    if len(a) < MIN_MOTION_TRACKS:
        return None
    H, _ = cv2.findHomography(a, b, cv2.RANSAC, 3.0, maxIters=500, confidence=0.99)
    return H


class FeatureTracker:
    """Feeds frames one at a time and grows a `Tracks`; features on the (dilated) person mask are dropped."""

    def __init__(self, settings: CameraSettings):
        self.s = settings
        self.tracks = Tracks()
        self._prev_gray: np.ndarray | None = None
        self._ids = np.zeros(0, np.int64)
        self._pts = np.zeros((0, 2), np.float32)
        self._motion: np.ndarray | None = None  # homography of the last frame-to-frame background motion

    def dilate(self, mask: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray | None:
        """The person mask resized to `shape` (h, w) and grown by `mask_dilate_px` (a disk), as uint8 0/1; None
        when there is none. The growth thresholds a distance transform: 7x cheaper than dilating with a disk."""
        if mask is None:
            return None
        m = np.asarray(mask)
        m = (m > 0.5).astype(np.uint8) if m.dtype != np.bool_ else m.astype(np.uint8)
        if m.shape[:2] != shape:
            m = cv2.resize(m, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
        if not m.any():
            return None
        far = cv2.distanceTransform(1 - m, cv2.DIST_L2, cv2.DIST_MASK_5)
        return (far <= self.s.mask_dilate_px).astype(np.uint8)

    def add(self, image: np.ndarray, person: np.ndarray | None) -> None:
        """Track the current features into `image` (RGB uint8) and re-seed; `person` is a dilated 0/1 mask."""
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        h, w = gray.shape
        ids, pts = self._ids, self._pts
        motion = None
        if self._prev_gray is not None and len(pts):
            p1, ok = self._flow(self._prev_gray, gray, pts)
            ok &= (p1[:, 0] >= 0) & (p1[:, 0] <= w - 1) & (p1[:, 1] >= 0) & (p1[:, 1] <= h - 1)
            motion = _fit_motion(pts[ok], p1[ok])
            ids, pts = ids[ok], p1[ok]
        self._motion = motion
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

    def _flow(self, prev: np.ndarray, gray: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pyramidal LK started from the last frame's motion again (constant velocity), falling back to a
        start from no motion when too few features pass the forward-backward check that way.

        On a fast pan the image moves further per frame than the pyramid can follow from a zero guess, and on
        repetitive texture (tiles, checkers) LK then settles one period off with a consistent, plausible and
        wrong flow that the forward-backward check passes; the two answers differ by a jump in image velocity
        that no camera makes between two frames, so the constant-velocity answer is preferred.
        Returns the new points (n,2) and which of them were tracked. The zero start is tracked only when the
        constant-velocity start keeps fewer than half of all the features: otherwise that start wins anyway.
        """
        p0 = pts.reshape(-1, 1, 2).astype(np.float32)
        if self._motion is None:
            return self._lk(prev, gray, p0, None)
        guess = cv2.perspectiveTransform(p0, self._motion).astype(np.float32)
        if float(np.median(np.linalg.norm((guess - p0).reshape(-1, 2), axis=1))) < STILL_PX:
            return self._lk(prev, gray, p0, None)  # the same start: nothing to choose between
        q1, q_ok = self._lk(prev, gray, p0, guess)
        if q_ok.sum() >= max(MIN_MOTION_TRACKS, 0.5 * len(p0)):
            return q1, q_ok
        p1, ok = self._lk(prev, gray, p0, None)
        if q_ok.sum() >= max(MIN_MOTION_TRACKS, 0.5 * ok.sum()):
            return q1, q_ok
        return p1, ok

    def _lk(
        self, prev: np.ndarray, gray: np.ndarray, p0: np.ndarray, guess: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """LK of p0 (n,1,2) from `guess` (None: no motion) with the forward-backward check started from the
        same guessed motion reversed; the new points (n,2) and which of them passed."""
        if guess is None:
            p1, st, _ = cv2.calcOpticalFlowPyrLK(prev, gray, p0, None, **_LK_PARAMS)
            p0r, st_b, _ = cv2.calcOpticalFlowPyrLK(gray, prev, p1, None, **_LK_PARAMS)
        else:
            flags = cv2.OPTFLOW_USE_INITIAL_FLOW
            p1, st, _ = cv2.calcOpticalFlowPyrLK(prev, gray, p0, guess.copy(), flags=flags, **_LK_PARAMS)
            p0r, st_b, _ = cv2.calcOpticalFlowPyrLK(gray, prev, p1, p1 - (guess - p0), flags=flags, **_LK_PARAMS)
        fb = np.linalg.norm(p0r.reshape(-1, 2) - p0.reshape(-1, 2), axis=1)
        ok = (st.ravel() == 1) & (st_b.ravel() == 1) & (fb < self.s.fb_max_error)
        return p1.reshape(-1, 2), ok

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
