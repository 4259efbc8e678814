"""The whole-clip solve behind `fit`: IK initialisation, camera-frame placement, world lift (pitched by the upright
body where the camera showed no ground plane and so assumed itself level, `backend.fitting.gravity`), robust
optimisation (root and shape, then every joint; most steps score one phase of a coarse frame grid in turn, every
other frame by default, and the last ones every frame), then a foot lock (leg-only IK holding planted feet; feet out
of view count as planted while the hips stay put).

Independent of jobs and video so tests and other methods can call it on any Observations + CameraSolve.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from backend.camera.types import CameraSolve
from backend.fitting import mapping as mp
from backend.fitting.contact import (
    CameraMotion,
    body_height,
    body_scale_px,
    contact_anchors,
    detect_foot_contacts,
    ground_height,
    ground_track,
    unseen_feet_standing,
)
from backend.fitting.gravity import body_pitch, pitch_correction
from backend.fitting.ik import solve_ik
from backend.fitting.interp import fill_rotations, fill_vectors, smooth_rotations, smooth_vectors
from backend.fitting.limits import limit_table
from backend.fitting.optim import OptimTrace, optimise
from backend.fitting.placement import camera_scale, camera_translation
from backend.fitting.priors import relaxed_hand_pose
from backend.fitting.rig import LandmarkRig
from backend.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from backend.perception.observations import Observations
from protocol.errors import BadRequest, NoPerson
from protocol.skeleton import JOINT_INDEX, LEFT_HAND_JOINTS, NUM_JOINTS, RIGHT_HAND_JOINTS

from .problem import FrameData, Mover, WholeBodyProblem
from .settings import FitSettings

Progress = Callable[[str, float, str], None]
FINGERS = (LEFT_HAND_JOINTS, RIGHT_HAND_JOINTS)
WRISTS = (JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"])
INIT_SHARE = 0.03  # share of the stage's progress bar taken by the initialisation
GROUND_SECONDS = 1.0  # time scale (Gaussian sigma, s) of the ground height under the body
GROUND_TRUST = 0.25  # metres the body's lowest foot may sit (10th percentile) off the camera's ground plane


@dataclass
class FitOutput:
    """The solved clip: world-frame SMPL-X parameters, the same body in the camera, and the metric camera."""

    full_pose: np.ndarray  # (T,55,3) axis-angle; joint 0 = world orientation
    betas: np.ndarray  # (10,)
    transl: np.ndarray  # (T,3) SMPL-X world translation
    root_pos: np.ndarray  # (T,3) world pelvis position
    global_orient_c: np.ndarray  # (T,3)
    transl_c: np.ndarray  # (T,3)
    r_w2c: np.ndarray  # (T,3,3)
    t_w2c: np.ndarray  # (T,3) metres, the world shifted so that the ground is y = 0
    scale: float  # metres per camera-solve unit applied to t_w2c and the scene points
    world_rotation: np.ndarray  # (3,3) camera solve's world -> this world (identity unless the body's pitch
    # corrected a camera assumed level): scene points turn by it before scaling
    ground_shift: float  # metres the world was lowered by so the ground sits at y = 0
    contacts: np.ndarray  # (T,4) left heel, left toe, right heel, right toe
    confidence: np.ndarray  # (T,55)
    init_pose: np.ndarray  # (T,55,3) the IK initialisation in the same world (for diagnostics and tests)
    init_root_pos: np.ndarray  # (T,3)
    losses: list[float]


def _wrist_gate(obs: Observations, share: float) -> np.ndarray:
    """(T,2) weight of each hand observation: 1 when its wrist meets the body's wrist in the image (within `share`
    of the body's height), fading to 0 at twice that. Hands of someone else or swapped sides are dropped this way."""
    scale = np.maximum(body_scale_px(obs.body_kp2d), 1.0)
    out = np.ones((len(obs), 2), np.float32)
    for s, wrist in enumerate((mp.L_WRIST, mp.R_WRIST)):
        d = np.linalg.norm(obs.hand_kp2d[:, s, 0, :2] - obs.body_kp2d[:, wrist, :2], axis=-1) / scale
        gate = np.clip(2.0 - d / share, 0.0, 1.0)
        known = obs.body_valid & (obs.body_kp2d[:, wrist, 2] > 0.3)
        out[:, s] = np.where(known, gate, 1.0)
    return out * obs.hand_valid


def hand_3d_scale(obs: Observations, settings: FitSettings) -> np.ndarray:
    """(T,2) how many times its weight each hand's 3D landmarks get: its wrist-to-middle-knuckle length in the
    image over `hand_3d_share` of the longer side, between 1 and `hand_3d_max`. mediapipe's 3D hand of a hand
    a few pixels long turns with its noise; a large one gives the hand's orientation better than the arm does."""
    length = np.linalg.norm(obs.hand_kp2d[:, :, 9, :2] - obs.hand_kp2d[:, :, 0, :2], axis=-1)
    share = length / max(obs.width, obs.height, 1)
    return np.clip(share / settings.hand_3d_share, 1.0, settings.hand_3d_max).astype(np.float32)


# the pose model's own points of each hand: wrist, pinky and index knuckles, thumb
POSE_HAND_POINTS = ((mp.L_WRIST, mp.L_PINKY, mp.L_INDEX, mp.L_THUMB), (mp.R_WRIST, mp.R_PINKY, mp.R_INDEX, mp.R_THUMB))


def pose_hand_trust(gate: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(T,33) weights of the body landmarks: 1 but for the pose's own hand points (wrist, knuckles, thumb) of a
    hand the hand tracker sees, which count 1/scale as much as the hand's 3D landmarks gain (`hand_3d_scale`).
    The pose model places them coarsely; a hand large in the image is better told by its own 21 landmarks."""
    out = np.ones((len(gate), 33), np.float32)
    for s, points in enumerate(POSE_HAND_POINTS):
        out[:, list(points)] = (1.0 - gate[:, s] * (1.0 - 1.0 / scale[:, s]))[:, None]
    return out


def fps_of(obs: Observations) -> float:
    """The clip's frame rate (30 when unknown)."""
    return float(obs.fps) if obs.fps > 0 else 30.0


def solve_fit(
    obs: Observations,
    cam: CameraSolve,
    rig: LandmarkRig,
    settings: FitSettings,
    *,
    pins: tuple[np.ndarray, np.ndarray] | None = None,
    device: str = "cpu",
    progress: Progress | None = None,
    check_cancelled: Callable[[], None] | None = None,
) -> FitOutput:
    """Solve the whole clip. pins: (rows (P,) into the clip, poses (P,55,3) world axis-angle) or None."""
    t = len(obs)
    if cam.n_frames != t:
        raise BadRequest(f"camera has {cam.n_frames} frames but the observations have {t}")
    body_valid = np.asarray(obs.body_valid, bool)
    if not body_valid.any():
        raise NoPerson("fit: no body was detected in any frame of the clip")
    report = progress or (lambda stage, fraction, message: None)
    dt = torch.float32

    def tt(a: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=dt, device=device)

    report("fit", 0.0, "inverse kinematics")
    gate = _wrist_gate(obs, settings.wrist_gate)
    hand_scale = hand_3d_scale(obs, settings)
    pose_hands = pose_hand_trust(gate, hand_scale)
    kp2d, conf2d = tt(obs.body_kp2d[..., :2]), tt(obs.body_kp2d[..., 2] * body_valid[:, None] * pose_hands)
    kp3d, vis3d = tt(obs.body_kp3d[..., :3]), tt(obs.body_kp3d[..., 3] * body_valid[:, None] * pose_hands)
    hk2d, hconf = tt(obs.hand_kp2d[..., :2]), tt(obs.hand_kp2d[..., 2] * gate[..., None])
    hk3d, hweight = tt(obs.hand_kp3d), tt(gate)
    k = tt(cam.K)
    relaxed = torch.stack([relaxed_hand_pose("left"), relaxed_hand_pose("right")]).to(device=device, dtype=dt)

    with torch.no_grad():
        ik = solve_ik(rig, kp3d, hk3d, torch.as_tensor(gate > 0, device=device), relaxed_hands=relaxed)
        local = fill_rotations(ik.local_rot, body_valid)
        for s in range(2):
            seen = body_valid & (gate[:, s] > 0)
            if seen.any():
                idx = [WRISTS[s], *FINGERS[s]]
                local[:, idx] = fill_rotations(local[:, idx], seen)
        rest_out = rig(local, torch.zeros(t, 3, dtype=dt, device=device))
        tr = camera_translation(rest_out.landmarks_body, kp2d, conf2d, k)
        placed = body_valid & ~torch.isnan(tr[:, 0]).cpu().numpy()
        if not placed.any():
            raise NoPerson("fit: too few confident body keypoints to place the person in any frame")
        pelvis_c = smooth_vectors(fill_vectors(torch.nan_to_num(tr), placed), settings.init_smooth)
        local = smooth_rotations(local, settings.init_smooth)
        feet_c = pelvis_c[:, None] + rest_out.landmarks_body[:, list(mp.FOOT_LANDMARKS)]
    ground_known = bool(np.isfinite(cam.ground_plane).all())
    r_np = np.asarray(cam.R_w2c, np.float64)
    world_rot = np.eye(3)  # camera world -> this world: turned where the body corrects a level assumption
    if not ground_known and settings.pitch_from_body:
        pitch = body_pitch(obs.body_kp3d, body_valid, r_np)
        if pitch is not None:
            world_rot = pitch_correction(pitch)
            r_np = r_np @ world_rot.T
    scale = 1.0
    if not cam.scale_known and not cam.static:
        scale = camera_scale(pelvis_c.cpu().double().numpy(), feet_c.cpu().double().numpy(), r_np,
                             np.asarray(cam.t_w2c, np.float64), ground_known, placed)
    r_w2c, t_w2c = tt(r_np), tt(np.asarray(cam.t_w2c) * scale)
    rt = r_w2c.transpose(-1, -2)
    local[:, 0] = rt @ local[:, 0]
    root_pos0 = torch.einsum("tij,tj->ti", rt, pelvis_c - t_w2c)
    pin_rows = np.zeros(0, np.int64)
    pin_rot = torch.zeros(0, NUM_JOINTS, 3, 3, dtype=dt, device=device)
    if pins is not None:
        pin_rows = np.asarray(pins[0], np.int64)
        if pin_rows.size and (pin_rows.min() < 0 or pin_rows.max() >= t):
            raise BadRequest(f"refine pins name frames outside the clip's {t} frames")
        pin_rot = axis_angle_to_matrix(tt(np.asarray(pins[1], np.float32).reshape(-1, NUM_JOINTS, 3)))
        last = {int(r): i for i, r in enumerate(pin_rows)}  # a frame pinned twice keeps its last pose
        pin_rows = np.array(sorted(last), np.int64)
        pin_rot = pin_rot[[last[r] for r in sorted(last)]]
        local[pin_rows] = pin_rot
    init_pose = matrix_to_axis_angle(local)
    with torch.no_grad():
        init_out = rig(local, root_pos0)
    feet_y0 = init_out.landmarks_body[:, list(mp.FOOT_LANDMARKS), 1].cpu().numpy()
    if ground_known and abs(ground_height(feet_y0, body_valid)) > GROUND_TRUST:
        # the camera's plane is not where the body stands (a wall, or a scale it disagrees with): held to it, the
        # feet would drag the whole body off its image evidence, so the body's own feet tell the ground instead
        ground_known = False
    # a moving camera's own motion, at the depths the body was placed at, is taken out of the feet's image motion
    moving = None if cam.static else CameraMotion(r_np, np.asarray(cam.t_w2c, np.float64) * scale,
                                                  np.asarray(cam.K, np.float64))
    feet_depth, pelvis_depth = feet_c[..., 2].cpu().double().numpy(), pelvis_c[:, 2].cpu().double().numpy()
    # ... and the IK start's foot heights, in body heights, tell which feet are low where the image cannot
    heights = feet_y0 / np.maximum(body_height(init_out.landmarks_body.cpu().double().numpy()), 0.1)[:, None]
    contacts_np = detect_foot_contacts(obs.body_kp2d, body_valid, obs.fps, speed_thresh=settings.contact_speed,
                                       height_thresh=settings.contact_height, camera=moving, depth=feet_depth,
                                       heights=heights)
    grounded = tt(contacts_np)  # feet seen planted: on the ground as well as still
    if ground_known:
        ground = np.zeros(t)
    else:  # the ground under the body, following a floor the world has on a slope (a static camera looking down)
        ground = ground_track(feet_y0, contacts_np, body_valid, fps_of(obs), GROUND_SECONDS)
    if settings.unseen_feet_stand:
        contacts_np = unseen_feet_standing(obs.body_kp2d, body_valid, obs.fps, (obs.width, obs.height), contacts_np,
                                           speed_thresh=settings.contact_speed, camera=moving, depth=pelvis_depth)
    report("fit", INIT_SHARE, "initialised")

    hand_obs = torch.as_tensor(gate, dtype=dt, device=device).clamp(0, 1)
    pinned = torch.zeros(t, dtype=torch.bool, device=device)
    pinned[torch.as_tensor(pin_rows, device=device)] = True
    frames = FrameData(
        init_aa=init_pose.detach(), root_pos0=root_pos0, kp2d=torch.cat([kp2d, hk2d.reshape(t, 42, 2)], dim=1),
        conf2d=conf2d, hconf=hconf.reshape(t, 42),
        obs_rel=torch.cat([kp3d - 0.5 * (kp3d[:, mp.L_HIP:mp.L_HIP + 1] + kp3d[:, mp.R_HIP:mp.R_HIP + 1]),
                           (hk3d - hk3d[:, :, :1]).reshape(t, 42, 3)], dim=1), vis3d=vis3d,
        hweight=hweight[..., None].expand(t, 2, 21).contiguous(),
        hand_3d_scale=tt(hand_scale)[..., None],
        hand_prior_w=1.0 + 19.0 * (1.0 - hand_obs), r_w2c=r_w2c, t_w2c=t_w2c, contacts=tt(contacts_np),
        grounded=grounded, ground=tt(ground), pinned=pinned, pin_rot=pin_rot, fps=fps_of(obs))
    adam = settings.optimiser == "adam"  # L-BFGS needs one objective throughout: no coarse phases
    step = settings.coarse_step if adam and t >= 4 * settings.coarse_step else 1
    problem = WholeBodyProblem(rig, frames, settings, k=k, relaxed=relaxed, limits=limit_table(device, dt),
                               step=step)
    lock_iterations = settings.foot_lock_iterations if (contacts_np > 0.5).any() else 0
    stages = [settings.global_iterations, settings.iterations, lock_iterations]
    n_total = max(sum(stages), 1)
    lr = settings.lr if adam else 1.0  # L-BFGS steps are scaled by its line search
    traces: list[OptimTrace] = []

    def run(stage: int, params: list[Tensor], pose: Mover, scales: list[float], fine: int) -> None:
        """Optimise `params` for the stage's iterations; all but the last `fine` score one coarse phase each
        (in turn), which costs 1/step as much and still moves every frame through the shared offsets."""
        offset, n = sum(stages[:stage]), stages[stage]
        done = itertools.count()

        def loss() -> tuple[Tensor, dict[str, float]]:
            i = next(done)
            return problem.loss(pose, i % step if step > 1 and i < n - fine else None)

        def cb(i: int, _: int) -> None:
            report("fit", INIT_SHARE + (1.0 - INIT_SHARE) * ((offset + i) / n_total),
                   f"iteration {offset + i} of {n_total}")
        traces.append(optimise(params, loss, n, lr=lr, lr_scales=scales, method=settings.optimiser, progress=cb,
                               check_cancelled=check_cancelled))

    # Root and shape first, then every joint, each mostly on alternating coarse phases of the clip, then on every
    # frame to settle the detail between them.
    pose_scales = [1.0, 1.0, settings.shape_lr_scale, 1.0, 1.0, 1.0]
    run(0, problem.global_params, problem.root_mover(), pose_scales[:3], fine=0)
    run(1, problem.pose_params, problem.posed, pose_scales, fine=settings.fine_iterations)

    # Last, inverse kinematics of the legs only: each planted foot point holds its mean position over its contact
    # while every other term keeps the pose (sliding feet come from leg pose more than from the root).
    if lock_iterations > 0:
        lock_pose = problem.legs_mover()
        with torch.no_grad():
            planted = lock_pose(None)[2].landmarks_body[:, list(mp.FOOT_LANDMARKS)]
        anchors, weights = contact_anchors(planted.cpu().numpy(), contacts_np)
        problem.lock["anchors"], problem.lock["weights"] = tt(anchors), tt(weights)
        run(2, [problem.d_legs], lock_pose, [1.0], fine=lock_iterations)

    betas = problem.betas
    with torch.no_grad():
        offsets_pose, root_pos = problem.current()
        rot = axis_angle_to_matrix(offsets_pose)
        full_pose = matrix_to_axis_angle(rot)  # canonical: angles in [0, pi]
        out = rig(rot, root_pos, betas)
        feet_y = out.landmarks_body[:, list(mp.FOOT_LANDMARKS), 1].cpu().numpy()
        shift = 0.0 if ground_known else ground_height(feet_y, body_valid)
        up = torch.tensor([0.0, 1.0, 0.0], dtype=dt, device=device)
        root_w = root_pos - shift * up
        t_final = t_w2c + shift * r_w2c[:, :, 1]
        rest_pelvis = rig.rest(betas)[0][0]
        go_c = matrix_to_axis_angle(r_w2c @ rot[:, 0])
        pelvis_cam = torch.einsum("tij,tj->ti", r_w2c, root_w) + t_final
        init_root = root_pos0 - shift * up
    conf = mp.joint_confidence(obs.body_kp2d[..., 2] * body_valid[:, None],
                               obs.hand_kp2d[..., 2] * gate[..., None])

    def npf(x: Tensor) -> np.ndarray:
        return x.detach().cpu().numpy().astype(np.float32)

    return FitOutput(
        full_pose=npf(full_pose), betas=npf(betas), transl=npf(root_w - rest_pelvis), root_pos=npf(root_w),
        global_orient_c=npf(go_c), transl_c=npf(pelvis_cam - rest_pelvis),
        r_w2c=r_np, t_w2c=t_final.detach().cpu().double().numpy(), scale=float(scale), world_rotation=world_rot,
        ground_shift=float(shift),
        contacts=contacts_np, confidence=conf, init_pose=npf(init_pose), init_root_pos=npf(init_root),
        losses=[x for trace in traces for x in trace.losses],
    )
