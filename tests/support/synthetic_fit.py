"""A synthetic walking clip with known SMPL-X motion, observed as perception would: noisy 2D/3D keypoints, gaps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from backend.camera.types import CameraSolve
from backend.models.base import BodyModel, BodyPose
from backend.perception.observations import Observations

CAMERA_HEIGHT = 1.5  # metres above the ground of the static camera (the fit's world puts the ground at y = 0)
STATIC_R = np.diag([1.0, -1.0, -1.0])  # the camera stage's static camera: world = camera rotated, Y up


@dataclass
class SyntheticClip:
    """Observations and camera of the clip, and its ground truth (world of the static camera: ground y = -1.5)."""

    obs: Observations
    cam: CameraSolve
    full_pose: np.ndarray  # (T,55,3)
    transl: np.ndarray  # (T,3)
    joints_world: np.ndarray  # (T,55,3)


def walking_pose(t: int, fps: float, seed: int = 0) -> BodyPose:
    """A person walking along world +x (facing it) at 1 m/s in front of the static camera, 4 m away."""
    gen = torch.Generator().manual_seed(seed)
    time = torch.arange(t, dtype=torch.float32) / fps
    w = 2 * torch.pi * 1.0
    s, c = torch.sin(w * time), torch.cos(w * time)
    pose = BodyPose.zeros(t)
    yaw = torch.pi / 2 + 0.1 * torch.sin(0.5 * w * time)
    pose.global_orient = torch.stack([0.05 * s, yaw, torch.zeros(t)], -1)
    bp = torch.zeros(t, 21, 3)
    bp[:, 0, 0], bp[:, 1, 0] = -0.5 * s - 0.1, 0.5 * s - 0.1  # hips
    bp[:, 3, 0] = 0.35 * (1 + torch.sin(w * time + 1.2)) + 0.1  # knees
    bp[:, 4, 0] = 0.35 * (1 - torch.sin(w * time + 1.2)) + 0.1
    bp[:, 6, 0], bp[:, 7, 0] = 0.2 * c, -0.2 * c  # ankles
    for j in (2, 5, 8):
        bp[:, j] = torch.stack([0.05 * torch.ones(t), 0.08 * s, 0.02 * c], -1)  # spine
    bp[:, 11] = torch.stack([0.1 * c, 0.3 * torch.sin(0.4 * w * time), torch.zeros(t)], -1)  # neck
    bp[:, 14] = bp[:, 11]
    bp[:, 15] = torch.stack([0.4 * s, 0.1 * torch.ones(t), -1.2 * torch.ones(t)], -1)  # shoulders, arms down
    bp[:, 16] = torch.stack([-0.4 * s, -0.1 * torch.ones(t), 1.2 * torch.ones(t)], -1)
    bp[:, 17, 1] = -(0.5 + 0.3 * s)  # elbows
    bp[:, 18, 1] = 0.5 - 0.3 * s
    bp[:, 19] = torch.stack([0.2 * s, torch.zeros(t), -0.2 * torch.ones(t)], -1)  # wrists
    bp[:, 20] = torch.stack([-0.2 * s, torch.zeros(t), 0.2 * torch.ones(t)], -1)
    pose.body_pose = bp
    curl = 0.4 + 0.3 * torch.sin(0.7 * w * time)[:, None] + 0.05 * torch.randn(1, 15, generator=gen)
    for side, sign in (("left_hand_pose", -1.0), ("right_hand_pose", 1.0)):
        hand = torch.zeros(t, 15, 3)
        hand[:, :12, 2] = sign * curl[:, :12]
        hand[:, 12:, 2] = sign * 0.1 * curl[:, 12:]
        setattr(pose, side, hand)
    pose.transl = torch.stack([-1.0 + time, -CAMERA_HEIGHT + 0.02 * c, -4.0 * torch.ones(t)], -1)  # ground -1.5
    return pose


def synthetic_clip(
    model: BodyModel,
    t: int = 90,
    fps: float = 30.0,
    seed: int = 0,
    noise_px: float = 3.0,
    noise_3d: float = 0.03,
    body_gap: tuple[int, int] = (40, 50),
    hand_gap: tuple[int, int] = (20, 35),
    camera_units: float | None = None,
    betas: np.ndarray | None = None,
    pitch_deg: float = 0.0,
) -> SyntheticClip:
    """Render the walking motion into perception-style observations (1280x720, f = 1000 px).

    Frames in body_gap have no body (and no hands); the left hand is missing in hand_gap. Missing parts are
    zeros with valid False, as perception writes them. With `camera_units` the camera travels (sideways sway,
    an accelerating rise and a push in) and the camera solve reports its path in units of that many metres,
    as a monocular solve of unknown scale would; otherwise the camera is static. `betas` shapes the body.
    `pitch_deg` tips the camera down by that much while the camera solve still reports it level, as the camera
    stage does where it sees no ground plane.
    """
    if pitch_deg and camera_units is not None:
        raise ValueError("only the static camera is pitched")
    rng = np.random.default_rng(seed)
    pose = walking_pose(t, fps, seed)
    if betas is not None:
        pose.betas = torch.as_tensor(np.asarray(betas, np.float32)).reshape(1, -1)
    with torch.no_grad():
        rest = model(BodyPose(*[getattr(BodyPose.zeros(1), n) for n in
                                ("global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose",
                                 "left_hand_pose", "right_hand_pose")], pose.betas[:1], torch.zeros(1, 3)))
    sole = float(rest.landmarks_body[0, [29, 30, 31, 32], 1].min())
    pose.transl[:, 1] -= sole  # the rest pose's soles on the ground
    with torch.no_grad():
        out = model(pose)
    k = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
    p = np.radians(pitch_deg)
    r = np.array([[1.0, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]]) @ STATIC_R  # true camera

    time = np.arange(t) / fps
    centres = np.zeros((t, 3))
    if camera_units is not None:
        centres = np.stack([0.5 * np.sin(np.pi * time), 0.15 * time**2, -0.3 * time], -1)
    t_w2c = -centres @ r.T

    def cam(x: np.ndarray) -> np.ndarray:
        return x @ r.T + t_w2c.reshape(t, *([1] * (x.ndim - 2)), 3)

    def proj(xc: np.ndarray) -> np.ndarray:
        uv = xc[..., :2] / xc[..., 2:3]
        return uv * np.array([k[0, 0], k[1, 1]]) + k[:2, 2]

    body_c = cam(out.landmarks_body.numpy().astype(np.float64))
    hands_c = cam(out.landmarks_hands.numpy().astype(np.float64))
    obs = Observations.empty(t, fps, 1280, 720)
    obs.frame_indices[:] = np.arange(t)
    obs.times[:] = np.arange(t) / fps
    obs.body_kp2d[..., :2] = proj(body_c) + rng.normal(0, noise_px, (t, 33, 2))
    obs.body_kp2d[..., 2] = 0.9
    hip_mid = 0.5 * (body_c[:, 23:24] + body_c[:, 24:25])
    obs.body_kp3d[..., :3] = body_c - hip_mid + rng.normal(0, noise_3d, (t, 33, 3))
    obs.body_kp3d[..., 3] = 0.9
    obs.body_valid[:] = True
    obs.hand_kp2d[..., :2] = proj(hands_c) + rng.normal(0, noise_px, (t, 2, 21, 2))
    obs.hand_kp2d[..., 2] = 0.9
    obs.hand_kp3d[:] = hands_c - hands_c.mean(axis=2, keepdims=True) + rng.normal(0, noise_3d / 3, (t, 2, 21, 3))
    obs.hand_valid[:] = True
    obs.bbox[:] = np.array([0, 0, 1280, 720])
    a, b = body_gap
    obs.body_kp2d[a:b] = 0
    obs.body_kp3d[a:b] = 0
    obs.body_valid[a:b] = False
    obs.hand_kp2d[a:b] = 0
    obs.hand_kp3d[a:b] = 0
    obs.hand_valid[a:b] = False
    a, b = hand_gap
    obs.hand_kp2d[a:b, 0] = 0
    obs.hand_kp3d[a:b, 0] = 0
    obs.hand_valid[a:b, 0] = False
    camera = CameraSolve(
        K=k, R_w2c=np.repeat(STATIC_R[None], t, 0), t_w2c=t_w2c / (camera_units or 1.0), static=camera_units is None,
        scale_known=False,
        angvel=np.zeros((t, 3)), up=np.array([0.0, 1.0, 0.0]), frame_indices=np.arange(t),
        times=np.arange(t) / fps,
    )
    return SyntheticClip(obs, camera, pose.full_pose().numpy(), pose.transl.numpy(), out.joints.numpy())


def joints_of(model: BodyModel, full_pose: np.ndarray, transl: np.ndarray, betas: np.ndarray) -> np.ndarray:
    """(T,55,3) joints of a solved motion under `model`."""
    pose = BodyPose.from_full_pose(torch.as_tensor(full_pose, dtype=torch.float32),
                                   torch.as_tensor(betas, dtype=torch.float32).reshape(1, -1),
                                   torch.as_tensor(transl, dtype=torch.float32))
    with torch.no_grad():
        return model(pose).joints.numpy()
