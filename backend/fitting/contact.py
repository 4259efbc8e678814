"""Foot contacts and the ground: a foot point that stays put in the image and is low is planted; planted feet
tell the ground's height."""

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


def unseen_feet_standing(
    kp2d: np.ndarray,
    valid: np.ndarray,
    fps: float,
    size: tuple[int, int],
    contacts: np.ndarray,
    *,
    speed_thresh: float = 0.3,
    min_conf: float = 0.3,
) -> np.ndarray:
    """`contacts` (T,4) with foot points out of view (off the image or unsure) planted while the body stays put.

    Close-ups cut the feet off; with nothing to see, a person whose hips do not travel in the image (slower than
    `speed_thresh` body heights per second) is taken to be standing: those feet hold still instead of drifting
    with every pose change. The probability is that of the hips being still; seen feet keep their own.
    """
    t = kp2d.shape[0]
    ok = valid.astype(bool)
    if ok.sum() < 2:
        return contacts
    idx = np.arange(t)
    scale = np.maximum(median_filter(np.interp(idx, idx[ok], body_scale_px(kp2d)[ok]), size=9, mode="nearest"), 1.0)
    hips = 0.5 * (kp2d[:, L_HIP, :2] + kp2d[:, R_HIP, :2])
    hips = np.stack([np.interp(idx, idx[ok], hips[ok, c]) for c in range(2)], -1)
    vel = gaussian_filter1d(np.gradient(hips, axis=0) * fps, sigma=2.0, axis=0, mode="nearest")  # px / s
    speed = np.linalg.norm(vel, axis=-1) / scale
    still = _sigmoid((speed_thresh - speed) / (0.25 * speed_thresh))
    feet = kp2d[:, list(FOOT_LANDMARKS)]
    width, height = size
    inside = (feet[..., 0] >= 0) & (feet[..., 0] < width) & (feet[..., 1] >= 0) & (feet[..., 1] < height)
    unseen = ((feet[..., 2] < min_conf) | ~inside) & ok[:, None]
    return np.where(unseen, still[:, None], contacts).astype(np.float32)


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


def ground_height(feet_y: np.ndarray, valid: np.ndarray) -> float:
    """Ground height from foot-point heights (T,F): the 10th percentile of each frame's lowest point."""
    low = feet_y.min(axis=1)[valid]
    return float(np.percentile(low, 10.0)) if low.size else 0.0


def ground_track(feet_y: np.ndarray, planted: np.ndarray, valid: np.ndarray, fps: float, seconds: float = 1.0,
                 prior: float = 0.02) -> np.ndarray:
    """(T,) ground height under the body: the lowest foot point of frames with a foot seen planted, averaged over
    `seconds` (Gaussian sigma), so it follows a floor that looks sloped in the world (a static camera looking down,
    whose world is level with the camera); the clip's one height (`ground_height`) takes over where fewer than a
    `prior` share of the frames nearby have a foot seen planted.
    feet_y (T,F) foot point heights, planted (T,4) seen contacts, valid (T,) frames with a body."""
    flat = ground_height(feet_y, valid)
    w = planted.max(axis=1) * valid
    low = np.where(valid, feet_y.min(axis=1), 0.0)
    sigma = seconds * fps
    num = gaussian_filter1d(w * low, sigma, mode="nearest")
    den = gaussian_filter1d(w, sigma, mode="nearest")
    return (num + prior * flat) / (den + prior)
