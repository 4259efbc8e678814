"""Small numpy geometry helpers of the camera solve: bearings, rotation fits, projection, triangulation."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp


def bearings(pts: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(n,3) unit ray directions in the camera frame of (n,2) pixel points."""
    h = np.column_stack([pts, np.ones(len(pts))]) @ np.linalg.inv(K).T
    return h / np.linalg.norm(h, axis=1, keepdims=True)


def project(K: np.ndarray, R: np.ndarray, t: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (n,2) and depths (n,) of world points X (n,3) in a camera (R, t) world->camera."""
    Xc = X @ R.T + t
    z = Xc[:, 2]
    uv = Xc[:, :2] / np.where(np.abs(z) < 1e-9, 1e-9, z)[:, None]
    return uv * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]], z


def kabsch(a: np.ndarray, b: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Rotation R minimising sum w |R a_i - b_i|^2 for (n,3) vectors a, b."""
    m = (b * (w[:, None] if w is not None else 1.0)).T @ a
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ np.diag([1.0, 1.0, d]) @ vt


def rotation_parallax(pa: np.ndarray, pb: np.ndarray, K: np.ndarray, R_ab: np.ndarray) -> np.ndarray:
    """(n,) pixel distance between pb and pa carried by the pure rotation R_ab (x_b ~ R_ab x_a)."""
    q = np.column_stack([pa, np.ones(len(pa))]) @ (K @ R_ab @ np.linalg.inv(K)).T
    q = q[:, :2] / q[:, 2:3]
    return np.linalg.norm(q - pb, axis=1)


def fit_rotation(pa: np.ndarray, pb: np.ndarray, K: np.ndarray, thresh_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Robust pure-rotation fit x_b ~ R x_a (homography RANSAC inliers, then Kabsch twice); R and inlier mask."""
    import cv2

    n = len(pa)
    inl = np.ones(n, bool)
    if n >= 8:
        _, m = cv2.findHomography(pa, pb, cv2.RANSAC, 2.0 * thresh_px, maxIters=500, confidence=0.995)
        if m is not None and m.sum() >= 4:
            inl = m.ravel().astype(bool)
    ba, bb = bearings(pa, K), bearings(pb, K)
    R = kabsch(ba[inl], bb[inl])
    for _ in range(2):
        res = rotation_parallax(pa, pb, K, R)
        cut = max(2.0 * thresh_px, 2.5 * float(np.median(res)))
        new = res < cut
        if new.sum() < 3:
            break
        inl = new
        R = kabsch(ba[inl], bb[inl])
    return R, inl


def triangulate(
    Ra: np.ndarray, ta: np.ndarray, Rb: np.ndarray, tb: np.ndarray, xa: np.ndarray, xb: np.ndarray, K: np.ndarray
) -> np.ndarray:
    """(n,3) world points from pixel observations xa, xb (n,2) in two posed cameras (linear DLT)."""
    import cv2

    Pa = K @ np.column_stack([Ra, ta])
    Pb = K @ np.column_stack([Rb, tb])
    Xh = cv2.triangulatePoints(Pa, Pb, xa.T.astype(np.float64), xb.T.astype(np.float64))
    w = Xh[3]
    w = np.where(np.abs(w) < 1e-12, 1e-12, w)
    return (Xh[:3] / w).T


def ray_angle_deg(Ca: np.ndarray, Cb: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(n,) angle in degrees between the rays from two camera centres to the points X."""
    da = X - Ca
    db = X - Cb
    cos = np.sum(da * db, axis=1) / (np.linalg.norm(da, axis=1) * np.linalg.norm(db, axis=1) + 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def center(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Camera centre in the world frame, -R^T t."""
    return -R.T @ t


def interpolate_poses(
    key_frames: np.ndarray, R: np.ndarray, C: np.ndarray, frames: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (slerp) and centres (linear) at `frames` from poses at sorted `key_frames` (clamped at ends)."""
    f = np.clip(frames, key_frames[0], key_frames[-1]).astype(float)
    if len(key_frames) == 1:
        return np.repeat(R[:1], len(f), 0), np.repeat(C[:1], len(f), 0)
    Ri = Slerp(key_frames.astype(float), Rotation.from_matrix(R))(f).as_matrix()
    Ci = np.column_stack([np.interp(f, key_frames, C[:, i]) for i in range(3)])
    return Ri, Ci


def angular_velocity(R_w2c: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T,3) camera angular velocity in the camera frame (rad/s) by central differences of R_w2c."""
    T = len(R_w2c)
    out = np.zeros((T, 3))
    if T < 2:
        return out
    # camera-frame increment between frames i and j: R_c2w(i)^T R_c2w(j) = R_w2c(i) R_w2c(j)^T
    step = Rotation.from_matrix(np.einsum("tij,tkj->tik", R_w2c[:-1], R_w2c[1:])).as_rotvec()
    dt = np.diff(times)
    dt = np.where(dt <= 0, 1e-9, dt)
    rates = step / dt[:, None]
    out[0] = rates[0]
    out[-1] = rates[-1]
    if T > 2:
        out[1:-1] = 0.5 * (rates[:-1] + rates[1:])
    return out
