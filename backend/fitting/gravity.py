"""The world's pitch where the camera cannot tell it, from the person's own vertical.

A static or purely rotating camera shows no ground plane, and the camera stage then assumes its first camera level
(no pitch, no roll). A phone on a shelf or a wall camera looks down 15-30 degrees, and a level assumption tips the
person by as much in the world: the rig leans in Blender and walks up or down a slope. A person standing or walking
keeps the shoulders over the ankles within a few degrees, so over the frames where the body is upright (each leg
straight, the torso in line with the legs) the median of that direction in mediapipe's metric landmarks, turned into
the world, gives the world's pitch. Roll stays zero: cameras are held level far more reliably than at a given pitch,
and the body's sideways lean is the noisier of the two (on the rendered static and panning clips the body's roll
came out 2-12 degrees off, its pitch 0-4).
"""

from __future__ import annotations

import math

import numpy as np

from backend.fitting.mapping import L_ANKLE, L_HIP, L_KNEE, L_SHOULDER, R_ANKLE, R_HIP, R_KNEE, R_SHOULDER

MIN_UPRIGHT_FRAMES = 15  # upright frames needed (half a second at 30 fps)
MIN_VISIBILITY = 0.5  # landmarks of shoulders, hips, knees and ankles at least this visible
STRAIGHT_LEG = 0.9  # hip-ankle span as a share of thigh + shin length: a straight leg (knee bent < 50 deg)
IN_LINE_DEG = 20.0  # torso within this angle of the legs' direction
MAX_PITCH_DEG = 45.0  # a larger answer means the person is not upright after all: keep the world as it is


def _unit(v: np.ndarray) -> np.ndarray:
    """Vectors (...,3) scaled to unit length (zero vectors stay zero)."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def upright_frames(kp3d: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(T,) bool: frames whose body stands upright, from mediapipe's metric landmarks (T,33,4: x, y, z,
    visibility): shoulders, hips, knees and ankles visible, both legs straight and the torso in line with them."""
    points, vis = kp3d[..., :3], kp3d[..., 3]
    joints = [L_SHOULDER, R_SHOULDER, L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE]
    seen = np.asarray(valid, bool) & (vis[:, joints] >= MIN_VISIBILITY).all(axis=1)
    straight = np.ones(len(kp3d), bool)
    for hip, knee, ankle in ((L_HIP, L_KNEE, L_ANKLE), (R_HIP, R_KNEE, R_ANKLE)):
        span = np.linalg.norm(points[:, hip] - points[:, ankle], axis=-1)
        length = (np.linalg.norm(points[:, hip] - points[:, knee], axis=-1)
                  + np.linalg.norm(points[:, knee] - points[:, ankle], axis=-1))
        straight &= span >= STRAIGHT_LEG * np.maximum(length, 1e-9)
    shoulders = 0.5 * (points[:, L_SHOULDER] + points[:, R_SHOULDER])
    hips = 0.5 * (points[:, L_HIP] + points[:, R_HIP])
    ankles = 0.5 * (points[:, L_ANKLE] + points[:, R_ANKLE])
    in_line = (_unit(shoulders - hips) * _unit(hips - ankles)).sum(-1) >= math.cos(math.radians(IN_LINE_DEG))
    return seen & straight & in_line


def body_pitch(kp3d: np.ndarray, valid: np.ndarray, r_w2c: np.ndarray) -> float | None:
    """The world's pitch (radians about its x axis) that the person's upright vertical shows: the median angle of
    the ankles-to-shoulders direction from world +y towards +z, over upright frames. kp3d (T,33,4) mediapipe metric
    landmarks (camera axes), r_w2c (T,3,3). None with too few upright frames or an implausible angle."""
    upright = upright_frames(kp3d, valid)
    if upright.sum() < MIN_UPRIGHT_FRAMES:
        return None
    points = kp3d[upright, :, :3]
    vertical_c = 0.5 * (points[:, L_SHOULDER] + points[:, R_SHOULDER] - points[:, L_ANKLE] - points[:, R_ANKLE])
    vertical_w = np.einsum("tji,tj->ti", np.asarray(r_w2c, np.float64)[upright], vertical_c)
    angle = float(np.median(np.arctan2(vertical_w[:, 2], vertical_w[:, 1])))
    return angle if abs(angle) <= math.radians(MAX_PITCH_DEG) else None


def pitch_correction(angle: float) -> np.ndarray:
    """(3,3) rotation about world x by -angle: turns a vertical pitched by `angle` (0, cos, sin) onto +y."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])
