"""Foot contacts and the ground: a foot point that stays put in the image and is low is planted; planted feet
tell the ground's height."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d, median_filter

from .mapping import FOOT_LANDMARKS, L_HIP, L_SHOULDER, R_HIP, R_SHOULDER


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def body_height(points: np.ndarray) -> np.ndarray:
    """(T,) the person's size from body landmarks (T,33,D) in their units: 3.3 x torso length (mid-shoulder to
    mid-hip), about the body height."""
    sh = 0.5 * (points[:, L_SHOULDER] + points[:, R_SHOULDER])
    hp = 0.5 * (points[:, L_HIP] + points[:, R_HIP])
    return 3.3 * np.linalg.norm(sh - hp, axis=-1)


def body_scale_px(kp2d: np.ndarray) -> np.ndarray:
    """(T,) the person's size in pixels (`body_height` of the image points)."""
    return body_height(kp2d[..., :2])


@dataclass(frozen=True)
class CameraMotion:
    """A moving camera, to tell a point's own motion in the image from the camera's: per-frame world-to-camera
    rotations (T,3,3) and translations (T,3) in metres, and the intrinsics K (3,3)."""

    r_w2c: np.ndarray
    t_w2c: np.ndarray
    k: np.ndarray


def image_velocity(points: np.ndarray, fps: float, camera: CameraMotion | None = None,
                   depth: np.ndarray | None = None) -> np.ndarray:
    """Velocity (px/s) of image points (T,F,2) over time (central differences, one-sided at the ends).

    With the `camera` and the points' depths (T,F, metres), the point's own motion: each step is measured from
    where the camera's motion alone would have carried the point (had it stood still in the world at that depth),
    so a planted foot stays still under a panning or circling camera. Depth errors scale only the part that the
    camera's travel explains (none of a pure turn)."""
    if len(points) < 2:
        return np.zeros_like(points, dtype=np.float64)
    if camera is None or depth is None:
        return np.gradient(points, axis=0) * fps
    r, t = np.asarray(camera.r_w2c, np.float64), np.asarray(camera.t_w2c, np.float64)
    k = np.asarray(camera.k, np.float64)
    rays = np.concatenate([points, np.ones((*points.shape[:-1], 1))], -1) @ np.linalg.inv(k).T
    in_cam = rays * np.maximum(np.asarray(depth, np.float64), 0.1)[..., None]
    in_world = np.einsum("tji,tfj->tfi", r, in_cam - t[:, None])  # R^T (X_c - t)
    carried = np.einsum("tij,tfj->tfi", r[1:], in_world[:-1]) + t[1:, None]  # seen from the next frame
    carried_px = carried @ k.T
    step = points[1:] - carried_px[..., :2] / np.maximum(carried_px[..., 2:3], 1e-6)  # (T-1,F,2)
    vel = np.empty(points.shape, np.float64)
    vel[0], vel[-1] = step[0], step[-1]
    vel[1:-1] = 0.5 * (step[:-1] + step[1:])
    return vel * fps


def image_speed(points: np.ndarray, fps: float, camera: CameraMotion | None = None, depth: np.ndarray | None = None,
                sigma: float = 1.0) -> np.ndarray:
    """(T,F) speed (px/s) of image points (T,F,2), their velocities smoothed over time (Gaussian, `sigma` frames).

    With a moving `camera` and the points' depths (T,F), the slower of their speed in the image and their own
    speed once the camera's motion is taken out (`image_velocity`): a panning camera does not make a planted foot
    move, and a point that stays put in the image still counts as still where the camera solve's frame-to-frame
    motion is too rough for a subject a metre away (the full suite's close-ups)."""
    def smoothed(vel: np.ndarray) -> np.ndarray:
        return np.linalg.norm(gaussian_filter1d(vel, sigma=sigma, axis=0, mode="nearest"), axis=-1)

    speed = smoothed(image_velocity(points, fps))
    if camera is not None and depth is not None:
        speed = np.minimum(speed, smoothed(image_velocity(points, fps, camera, depth)))
    return speed


def detect_foot_contacts(
    kp2d: np.ndarray,
    valid: np.ndarray,
    fps: float,
    *,
    speed_thresh: float = 0.3,
    height_thresh: float = 0.06,
    min_conf: float = 0.3,
    camera: CameraMotion | None = None,
    depth: np.ndarray | None = None,
    heights: np.ndarray | None = None,
) -> np.ndarray:
    """(T,4) contact probabilities of left heel, left toe, right heel, right toe from body keypoints (T,33,3).

    A point counts as planted when its image speed, in body heights per second, is under `speed_thresh`, and it
    is within `height_thresh` body heights of the lowest foot point in that frame (image y grows downwards), or,
    given the points' `heights` (T,4) in 3D (in body heights along the world's up), of the lowest one there:
    a camera looking down shows the farther foot higher in the image.
    Both tests are soft (sigmoids), so the result is a probability; missing or unsure points give 0. Given a
    moving `camera` and the foot points' depths (T,4), a foot point still in the world once the camera's motion
    is taken out counts as still too (`image_speed`): a pan does not lift planted feet.
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
    speed = image_speed(pts, fps, camera, depth) / scale[:, None]
    pts = gaussian_filter1d(pts, sigma=1.0, axis=0, mode="nearest")
    lowest = pts[:, :, 1].max(axis=1, keepdims=True)
    height = (lowest - pts[:, :, 1]) / scale[:, None]
    if heights is not None:
        height = np.minimum(height, np.asarray(heights, np.float64) - np.min(heights, axis=1, keepdims=True))
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
    camera: CameraMotion | None = None,
    depth: np.ndarray | None = None,
) -> np.ndarray:
    """`contacts` (T,4) with foot points out of view (off the image or unsure) planted while the body stays put.

    Close-ups cut the feet off; with nothing to see, a person whose hips do not travel in the image (slower than
    `speed_thresh` body heights per second; or in the world, given a moving `camera` and the hips' depth (T,),
    as `image_speed`) is taken to be standing: those feet hold still instead of drifting with every pose change.
    The probability is that of the hips being still; seen feet keep their own.
    """
    t = kp2d.shape[0]
    ok = valid.astype(bool)
    if ok.sum() < 2:
        return contacts
    idx = np.arange(t)
    scale = np.maximum(median_filter(np.interp(idx, idx[ok], body_scale_px(kp2d)[ok]), size=9, mode="nearest"), 1.0)
    hips = 0.5 * (kp2d[:, L_HIP, :2] + kp2d[:, R_HIP, :2])
    hips = np.stack([np.interp(idx, idx[ok], hips[ok, c]) for c in range(2)], -1)
    hip_depth = None if depth is None else np.asarray(depth)[:, None]
    speed = image_speed(hips[:, None], fps, camera, hip_depth, sigma=2.0)[:, 0] / scale
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
