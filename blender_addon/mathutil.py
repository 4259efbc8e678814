"""Vectorised rotation maths in numpy (quaternions are w, x, y, z as Blender stores them); no bpy here."""

from __future__ import annotations

import numpy as np

# Y-up (SMPL-X world) to Z-up (Blender world): +90 degrees about X, so (x, y, z) -> (x, -z, y).
YUP_TO_ZUP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# OpenCV camera axes (x right, y down, z forward) to Blender camera axes (x right, y up, looking down -z).
OPENCV_TO_BLENDER_CAMERA = np.diag([1.0, -1.0, -1.0])


def axis_angle_to_quat(aa: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) for axis-angle vectors (..., 3)."""
    aa = np.asarray(aa)
    aa = aa if aa.dtype in (np.float32, np.float64) else aa.astype(np.float64)
    angle = np.sqrt(np.einsum("...i,...i->...", aa, aa))[..., None]
    out = np.empty((*aa.shape[:-1], 4), dtype=aa.dtype)
    out[..., :1] = np.cos(0.5 * angle)
    # sin(angle/2)/angle = sinc(angle/(2 pi))/2 with numpy's normalised sinc, exact at zero.
    out[..., 1:] = aa * (0.5 * np.sinc(angle / (2 * np.pi)))
    return out


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) for quaternions (..., 4); the input need not be normalised."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    out = np.empty((*q.shape[:-1], 3, 3))
    out[..., 0, 0] = 1 - 2 * (y * y + z * z)
    out[..., 0, 1] = 2 * (x * y - w * z)
    out[..., 0, 2] = 2 * (x * z + w * y)
    out[..., 1, 0] = 2 * (x * y + w * z)
    out[..., 1, 1] = 1 - 2 * (x * x + z * z)
    out[..., 1, 2] = 2 * (y * z - w * x)
    out[..., 2, 0] = 2 * (x * z - w * y)
    out[..., 2, 1] = 2 * (y * z + w * x)
    out[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return out


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) for axis-angle vectors (..., 3)."""
    return quat_to_matrix(axis_angle_to_quat(aa))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Unit quaternions (..., 4) with w >= 0 for rotation matrices (..., 3, 3), stable for every angle."""
    m = np.asarray(m, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four candidate solutions; pick, per matrix, the one with the largest (best conditioned) denominator.
    cand = np.stack(
        [
            np.stack(
                [
                    1 + m00 + m11 + m22,
                    m[..., 2, 1] - m[..., 1, 2],
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 1, 0] - m[..., 0, 1],
                ],
                -1,
            ),
            np.stack(
                [
                    m[..., 2, 1] - m[..., 1, 2],
                    1 + m00 - m11 - m22,
                    m[..., 0, 1] + m[..., 1, 0],
                    m[..., 0, 2] + m[..., 2, 0],
                ],
                -1,
            ),
            np.stack(
                [
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 0, 1] + m[..., 1, 0],
                    1 - m00 + m11 - m22,
                    m[..., 1, 2] + m[..., 2, 1],
                ],
                -1,
            ),
            np.stack(
                [
                    m[..., 1, 0] - m[..., 0, 1],
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 1, 2] + m[..., 2, 1],
                    1 - m00 - m11 + m22,
                ],
                -1,
            ),
        ],
        axis=-2,
    )
    diag = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = np.argmax(diag, axis=-1)
    q = np.take_along_axis(cand, best[..., None, None], axis=-2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., :1] < 0, -q, q)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b of quaternions (..., 4), broadcasting."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, np.float64), -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_continuous(q: np.ndarray) -> np.ndarray:
    """Flip signs along axis 0 (time) so neighbouring quaternions (T, ..., 4) lie in the same hemisphere.

    q and -q are the same rotation; consistent signs keep the curves from jumping between frames.
    """
    q = np.array(q, copy=True)
    if q.shape[0] < 2:
        return q
    flips = np.cumsum(np.einsum("...i,...i->...", q[1:], q[:-1]) < 0, axis=0) % 2
    q[1:] *= (1 - 2 * flips)[..., None].astype(q.dtype)
    return q


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation matrix (3, 3) that turns direction `a` onto direction `b`."""
    a = np.asarray(a, np.float64) / np.linalg.norm(a)
    b = np.asarray(b, np.float64) / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1 + 1e-9:
        # Opposite directions: half a turn about any axis perpendicular to a.
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx / (1 + c)
