"""Numpy side of the renders: cameras (OpenCV, Y-up world), clothing regions, contacts and visibility."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter1d

from protocol.errors import BadRequest
from protocol.skeleton import JOINT_INDEX, LEFT_HAND_JOINTS, NUM_JOINTS, RIGHT_HAND_JOINTS

Setup = Literal["static", "high", "pan", "closeup", "hand"]
SETUPS: tuple[Setup, ...] = ("static", "high", "pan", "closeup", "hand")

REGION_SKIN, REGION_SHIRT, REGION_TROUSERS, REGION_SHOES, REGION_HAIR = range(5)
_J = JOINT_INDEX
_SHIRT = {"spine1", "spine2", "spine3", "left_collar", "right_collar", "left_shoulder", "right_shoulder"}
_TROUSERS = {"pelvis", "left_hip", "right_hip", "left_knee", "right_knee"}
_SHOES = {"left_ankle", "right_ankle", "left_foot", "right_foot"}
HAND_WITH_WRIST = ((_J["left_wrist"], *LEFT_HAND_JOINTS), (_J["right_wrist"], *RIGHT_HAND_JOINTS))


@dataclass(frozen=True)
class CameraTrack:
    """A pinhole camera per frame: intrinsics K (3,3) and world-to-camera R (T,3,3), t (T,3), OpenCV axes."""

    K: np.ndarray
    R_w2c: np.ndarray
    t_w2c: np.ndarray
    width: int
    height: int


def intrinsics(width: int, height: int, hfov_deg: float) -> np.ndarray:
    """K for square pixels, principal point at the image centre, horizontal field of view `hfov_deg`."""
    f = (width / 2) / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[f, 0.0, width / 2], [0.0, f, height / 2], [0.0, 0.0, 1.0]])


def look_at(eye: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World-to-camera (R (...,3,3), t (...,3)) of OpenCV cameras at `eye` looking at `target`, world Y up."""
    fwd = target - eye
    fwd = fwd / np.linalg.norm(fwd, axis=-1, keepdims=True)
    right = np.cross(fwd, np.array([0.0, 1.0, 0.0]))
    right = right / np.linalg.norm(right, axis=-1, keepdims=True)
    down = np.cross(fwd, right)
    rot = np.stack([right, down, fwd], axis=-2)
    return rot, -np.einsum("...ij,...j->...i", rot, eye)


def project(points: np.ndarray, cam: CameraTrack) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (T,N,2) and camera depth (T,N) of world points (T,N,3)."""
    pc = np.einsum("tij,tnj->tni", cam.R_w2c, points) + cam.t_w2c[:, None]
    uv = np.einsum("ij,tnj->tni", cam.K, pc)
    return uv[..., :2] / uv[..., 2:3], pc[..., 2]


def _inside(uv: np.ndarray, depth: np.ndarray, cam: CameraTrack, margin: float = 0.0) -> np.ndarray:
    """(T,N) bool: in front of the camera and inside the image shrunk by `margin` (fraction per side)."""
    mx, my = margin * cam.width, margin * cam.height
    return ((depth > 0.05) & (uv[..., 0] >= mx) & (uv[..., 0] <= cam.width - mx)
            & (uv[..., 1] >= my) & (uv[..., 1] <= cam.height - my))


def facing(joint_rotations: np.ndarray) -> np.ndarray:
    """Unit horizontal direction (T,3) the pelvis faces (SMPL-X bodies face +Z at rest)."""
    f = joint_rotations[:, 0] @ np.array([0.0, 0.0, 1.0])
    f[:, 1] = 0.0
    return f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-9)


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along time, edges held."""
    return gaussian_filter1d(x, sigma, axis=0, mode="nearest")


def _fit_distance(points: np.ndarray, make: Callable[[float], CameraTrack], margin: float, start: float) -> CameraTrack:
    """Move the camera back (distance from `start` in 0.1 m steps) until every point is inside the image."""
    dist = start
    for _ in range(200):
        cam = make(dist)
        uv, depth = project(points, cam)
        if _inside(uv, depth, cam, margin).all():
            return cam
        dist += 0.1
    raise BadRequest("could not frame the person: the motion leaves every camera distance tried")


def make_camera(setup: Setup, joints: np.ndarray, joint_rotations: np.ndarray, points: np.ndarray,
                width: int, height: int) -> CameraTrack:
    """The camera track of one setup for a motion: SMPL-X joints (T,55,3), their rotations (T,55,3,3) and
    surface points (T,N,3) (a vertex subset) in the world frame.

    static: fixed camera, 55 deg hfov, side-on to the path (front-on when the person stays put), pulled
    back until the whole body stays inside the image on every frame. high: the static camera raised to look
    down about 20 deg (a phone on a shelf, a wall camera), a tilt no ground plane reveals to a static camera.
    pan: follows the smoothed pelvis while orbiting 40 deg around it (translation and pan). closeup: 1.1 m in
    front of the smoothed chest, 50 deg hfov, so extended arms and hands leave and re-enter the frame. hand:
    0.55 m from the smoothed right hand on the side away from the chest and above it, 45 deg hfov.
    """
    frames = joints.shape[0]
    if joints.shape[1:] != (NUM_JOINTS, 3):
        raise BadRequest(f"joints must be (T,{NUM_JOINTS},3), got {joints.shape}")
    face = facing(joint_rotations)
    mean_face = face.mean(axis=0)
    mean_face /= max(float(np.linalg.norm(mean_face)), 1e-9)
    pelvis = joints[:, 0]
    if setup in ("static", "high"):
        k = intrinsics(width, height, 55.0)
        rise = 0.35 if setup == "static" else 1.5
        travel = pelvis[-1] - pelvis[0]
        travel[1] = 0.0
        if np.linalg.norm(travel) > 0.5:
            side = np.cross(np.array([0.0, 1.0, 0.0]), travel / np.linalg.norm(travel))
            view = side if np.dot(side, mean_face) >= 0 else -side
            view = view + 0.5 * mean_face
        else:
            view = mean_face + np.array([0.3, 0.0, 0.0])
        view /= np.linalg.norm(view)
        centre = 0.5 * (pelvis.min(axis=0) + pelvis.max(axis=0))
        target = np.array([centre[0], 0.9, centre[2]])

        def make(d: float) -> CameraTrack:
            eye = target + view * d + np.array([0.0, rise, 0.0])
            r, t = look_at(eye, target)
            return CameraTrack(k, np.repeat(r[None], frames, 0), np.repeat(t[None], frames, 0), width, height)

        return _fit_distance(points, make, 0.04, 2.5)
    if setup == "pan":
        k = intrinsics(width, height, 50.0)
        target = _smooth(pelvis, 10.0) + np.array([0.0, 0.05, 0.0])
        ang0 = np.arctan2(mean_face[0], mean_face[2]) + np.radians(30.0)
        ang = ang0 + np.radians(40.0) * np.linspace(0.0, 1.0, frames)
        direction = np.stack([np.sin(ang), np.zeros(frames), np.cos(ang)], axis=-1)

        def make(d: float) -> CameraTrack:
            eye = target + direction * d + np.array([0.0, 0.45, 0.0])
            r, t = look_at(eye, target)
            return CameraTrack(k, r, t, width, height)

        return _fit_distance(points, make, 0.03, 2.8)
    if setup == "closeup":
        k = intrinsics(width, height, 50.0)
        chest = _smooth(joints[:, _J["spine3"]], 6.0) + np.array([0.0, 0.05, 0.0])
        front = _smooth(face, 8.0)
        front /= np.linalg.norm(front, axis=-1, keepdims=True)
        eye = chest + 1.1 * front + np.array([0.0, 0.1, 0.0])
        r, t = look_at(eye, chest)
        return CameraTrack(k, r, t, width, height)
    if setup == "hand":
        k = intrinsics(width, height, 45.0)
        hand = _smooth(joints[:, _J["right_middle1"]], 4.0)
        out = _smooth(joints[:, _J["right_middle1"]] - joints[:, _J["spine3"]], 8.0)  # away from the chest
        out[:, 1] = 0.0
        out /= np.maximum(np.linalg.norm(out, axis=-1, keepdims=True), 1e-9)
        view = out + np.array([0.0, 0.6, 0.0])
        view /= np.linalg.norm(view, axis=-1, keepdims=True)
        r, t = look_at(hand + 0.55 * view, hand)
        return CameraTrack(k, r, t, width, height)
    raise BadRequest(f"unknown camera setup {setup!r}; choose one of {SETUPS}")


def face_regions(faces: np.ndarray, skin_indices: np.ndarray, skin_weights: np.ndarray,
                 rest_vertices: np.ndarray, rest_joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Clothing region per face (skin, shirt, trousers, shoes, hair) and hand label per face (0 none,
    1 left hand, 2 right hand), from each face's dominant skinning joint.

    Shirt: spine, collars, upper arms (short sleeves); trousers: pelvis, thighs, shins; shoes: ankles
    and toes; skin: head, neck, forearms, hands; hair: head faces above the eyes and behind the ears.
    """
    v_count = rest_vertices.shape[0]
    dense = np.zeros((v_count, NUM_JOINTS))
    np.add.at(dense, (np.repeat(np.arange(v_count), skin_indices.shape[1]), skin_indices.ravel()),
              skin_weights.ravel())
    face_w = dense[faces].sum(axis=1)
    dominant = face_w.argmax(axis=1)
    names = {i: n for n, i in _J.items()}
    region = np.full(faces.shape[0], REGION_SKIN, dtype=np.uint8)
    hand = np.zeros(faces.shape[0], dtype=np.int8)
    for f, j in enumerate(dominant):
        n = names[int(j)]
        if n in _SHIRT:
            region[f] = REGION_SHIRT
        elif n in _TROUSERS:
            region[f] = REGION_TROUSERS
        elif n in _SHOES:
            region[f] = REGION_SHOES
    for side, joints in enumerate(HAND_WITH_WRIST):
        hand[np.isin(dominant, joints)] = side + 1
    centre = rest_vertices[faces].mean(axis=1)
    eye_y = rest_joints[_J["left_eye_smplhf"], 1]
    head_z = rest_joints[_J["head"], 2]
    is_head = np.isin(dominant, [_J["head"], _J["left_eye_smplhf"], _J["right_eye_smplhf"]])
    hair = is_head & ((centre[:, 1] > eye_y + 0.03) | ((centre[:, 2] < head_z - 0.02) & (centre[:, 1] > eye_y - 0.06)))
    region[hair] = REGION_HAIR
    return region, hand


def foot_contacts(joints: np.ndarray, fps: float, height_margin: float = 0.05,
                  speed_threshold: float = 0.35) -> np.ndarray:
    """Ground-truth contact (T,4) for left heel, left toe, right heel, right toe (ankle and foot joints):
    within `height_margin` m of that joint's lowest height in the clip and slower than
    `speed_threshold` m/s (central differences)."""
    idx = [_J["left_ankle"], _J["left_foot"], _J["right_ankle"], _J["right_foot"]]
    p = joints[:, idx]
    vel = np.gradient(p, axis=0) * fps if p.shape[0] > 1 else np.zeros_like(p)
    speed = np.linalg.norm(vel, axis=-1)
    low = p[..., 1] <= p[..., 1].min(axis=0, keepdims=True) + height_margin
    return low & (speed < speed_threshold)


def hand_visibility(joints: np.ndarray, cam: CameraTrack, unoccluded: np.ndarray,
                    min_inside: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint (T,2,16) and per-hand (T,2) visibility, index 0 = the person's left hand.

    A joint is visible when it projects inside the image and the ray from the camera meets that hand's
    own skin first (`unoccluded`, from the renderer). A hand is visible when at least `min_inside` of its
    16 joints are inside the image and at least one of them is visible (not fully occluded).
    """
    idx = np.array(HAND_WITH_WRIST)
    uv, depth = project(joints[:, idx.ravel()], cam)
    inside = _inside(uv, depth, cam).reshape(joints.shape[0], 2, -1)
    per_joint = inside & unoccluded
    per_hand = (inside.mean(axis=-1) >= min_inside) & per_joint.any(axis=-1)
    return per_joint, per_hand
