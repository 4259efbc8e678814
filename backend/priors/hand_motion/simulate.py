"""Simulated observations of a known hand motion, for evaluating fitting: a camera, projected 2D keypoints with
pixel noise and confidences, noisy metric 3D landmarks as mediapipe gives them, and occluded stretches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.models.base import NUM_BETAS, HandModel, HandPose

from .fitting import CameraTrack, HandFit, HandTrack
from .skeleton import mirror_hand_pose
from .synthetic import generate_sequence


@dataclass
class SimulatedHand:
    """A ground-truth hand motion and what a detector would have reported of it."""

    truth: HandFit
    track: HandTrack
    camera: CameraTrack
    joints: np.ndarray  # (T,16,3) ground-truth joints in the world frame


def wrist_motion(rng: np.random.Generator, n: int, fps: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth wrist orientation (T,3) axis-angle and translation (T,3) about 0.45 m in front of a camera at
    the origin looking down +Z (world = camera frame), the palm turned towards the camera."""
    t = np.arange(n) / fps
    f = rng.uniform(0.1, 0.4, (2, 3))
    ph = rng.uniform(0, 2 * np.pi, (2, 3))
    wobble = 0.35 * np.sin(2 * np.pi * f[0] * t[:, None] + ph[0])
    base = np.array([np.pi / 2, 0.0, 0.0])  # palm (-Y at rest) turned towards the camera (-Z)
    orient = base + wobble
    transl = np.array([0.0, 0.0, 0.45]) + 0.06 * np.sin(2 * np.pi * f[1] * t[:, None] + ph[1])
    return orient.astype(np.float32), transl.astype(np.float32)


def occlusion_mask(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """(T,) bool detections with about `share` of the frames missing in stretches of 4 to 20 frames."""
    valid = np.ones(n, bool)
    while 1.0 - valid.mean() < share:
        length = int(rng.integers(4, 21))
        start = int(rng.integers(1, max(2, n - length - 1)))
        valid[start : start + length] = False
    valid[0] = True
    return valid


def simulate(model: HandModel, seed: int, n_frames: int, occluded: float = 0.0, pixel_noise: float = 3.0,
             landmark_noise_m: float = 0.006, pose: np.ndarray | None = None) -> SimulatedHand:
    """A finger motion on a moving wrist, seen by a 1280x720 camera (f = 900 px) with noise.

    The finger motion is `pose` (T,15,3) in the model's side convention when given, else a synthetic one.
    """
    rng = np.random.default_rng(seed)
    if pose is None:
        pose = generate_sequence(rng, n_frames)
        if model.side == "left":
            pose = mirror_hand_pose(pose)
    else:
        pose = np.asarray(pose, np.float32)
        if pose.shape != (n_frames, 15, 3):
            raise ValueError(f"pose must be ({n_frames}, 15, 3), got {pose.shape}")
    orient, transl = wrist_motion(rng, n_frames)
    betas = np.zeros(NUM_BETAS, np.float32)
    with torch.no_grad():
        out = model(HandPose(torch.as_tensor(orient), torch.as_tensor(pose), torch.as_tensor(betas)[None],
                             torch.as_tensor(transl)))
    lm = out.landmarks.numpy()
    k = np.array([[900.0, 0, 640.0], [0, 900.0, 360.0], [0, 0, 1]])
    uv = lm @ k.T
    uv = uv[..., :2] / uv[..., 2:]
    kp2d = np.concatenate([uv + rng.normal(0, pixel_noise, uv.shape), np.full((*uv.shape[:2], 1), 0.9)], -1)
    kp3d = lm - lm.mean(1, keepdims=True) + rng.normal(0, landmark_noise_m, lm.shape)
    valid = occlusion_mask(rng, n_frames, occluded) if occluded > 0 else np.ones(n_frames, bool)
    kp2d[~valid] = 0.0
    kp3d[~valid] = 0.0
    eye = np.broadcast_to(np.eye(3), (n_frames, 3, 3)).copy()
    camera = CameraTrack(K=k, R_w2c=eye, t_w2c=np.zeros((n_frames, 3)))
    truth = HandFit(orient, pose, betas, transl, np.ones(n_frames, bool))
    track = HandTrack(model.side, kp2d.astype(np.float32), kp3d.astype(np.float32), valid)
    return SimulatedHand(truth, track, camera, out.joints.numpy())
