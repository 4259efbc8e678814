"""Foot-contact detection from 2D keypoints: a foot point that stays put in the image and is low is planted."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d, median_filter

from .mapping import FOOT_LANDMARKS, L_HIP, L_SHOULDER, R_HIP, R_SHOULDER


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def body_scale_px(kp2d: np.ndarray) -> np.ndarray:
    """(T,) the person's size in pixels: 3.3 x torso length (mid-shoulder to mid-hip), about the body height."""
    sh = 0.5 * (kp2d[:, L_SHOULDER, :2] + kp2d[:, R_SHOULDER, :2])
    hp = 0.5 * (kp2d[:, L_HIP, :2] + kp2d[:, R_HIP, :2])
    return 3.3 * np.linalg.norm(sh - hp, axis=-1)


def detect_foot_contacts(
    kp2d: np.ndarray,
    valid: np.ndarray,
    fps: float,
    *,
    speed_thresh: float = 0.3,
    height_thresh: float = 0.06,
    min_conf: float = 0.3,
) -> np.ndarray:
    """(T,4) contact probabilities of left heel, left toe, right heel, right toe from body keypoints (T,33,3).

    A point counts as planted when its image speed, in body heights per second, is under `speed_thresh`, and it
    is within `height_thresh` body heights of the lowest foot point in that frame (image y grows downwards).
    Both tests are soft (sigmoids), so the result is a probability; missing or unsure points give 0.
    """
    t = kp2d.shape[0]
    out = np.zeros((t, 4), np.float32)
    ok = valid.astype(bool)
    if ok.sum() < 2:
        return out
    idx = np.arange(t)
    scale = body_scale_px(kp2d)
    scale = np.interp(idx, idx[ok], scale[ok])
    scale = np.maximum(median_filter(scale, size=9, mode="nearest"), 1.0)
    feet = kp2d[:, list(FOOT_LANDMARKS)]  # (T,4,3)
    pts = np.empty((t, 4, 2))
    for k in range(4):
        for c in range(2):
            pts[:, k, c] = np.interp(idx, idx[ok], feet[ok, k, c])
    pts = gaussian_filter1d(pts, sigma=1.0, axis=0, mode="nearest")
    vel = np.gradient(pts, axis=0) * fps  # px / s
    speed = np.linalg.norm(vel, axis=-1) / scale[:, None]
    lowest = pts[:, :, 1].max(axis=1, keepdims=True)
    height = (lowest - pts[:, :, 1]) / scale[:, None]
    still = _sigmoid((speed_thresh - speed) / (0.25 * speed_thresh))
    low = _sigmoid((height_thresh - height) / (0.25 * height_thresh))
    conf = (feet[:, :, 2] >= min_conf) & ok[:, None]
    out[:] = np.where(conf, still * low, 0.0)
    return out


def contact_anchors(points: np.ndarray, contacts: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Where each planted foot point should stay: for every run of frames with contact probability above
    `threshold`, the mean of the point's positions over that run. points (T,F,3), contacts (T,F) -> anchors
    (T,F,3) (zeros outside contacts) and weights (T,F) (the contact probability inside runs of two or more
    frames, else 0)."""
    t, f = contacts.shape
    anchors = np.zeros((t, f, 3), np.float32)
    weights = np.zeros((t, f), np.float32)
    on = contacts > threshold
    for k in range(f):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], on[:, k].astype(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2], strict=True):
            if stop - start >= 2:
                anchors[start:stop, k] = points[start:stop, k].mean(axis=0)
                weights[start:stop, k] = contacts[start:stop, k]
    return anchors, weights
