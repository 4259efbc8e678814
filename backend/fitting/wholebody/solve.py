"""The whole-clip solve behind `fit`: IK initialisation, camera-frame placement, world lift, robust optimisation,
then a foot lock (leg-only IK holding planted feet; feet out of view count as planted while the hips stay put).

Independent of jobs and video so tests and other methods can call it on any Observations + CameraSolve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from backend.camera.types import CameraSolve
from backend.fitting import mapping as mp
from backend.fitting.contact import body_scale_px, contact_anchors, detect_foot_contacts, unseen_feet_standing
from backend.fitting.ik import solve_ik
from backend.fitting.interp import fill_rotations, fill_vectors, smooth_rotations, smooth_vectors
from backend.fitting.limits import limit_penalty, limit_table
from backend.fitting.losses import (
    gmof,
    image_residual,
    position_smoothness,
    rotation_distance,
    rotation_smoothness,
    shape_prior,
    to_camera,
    weighted_mean,
)
from backend.fitting.optim import OptimTrace, optimise
from backend.fitting.placement import camera_scale, camera_translation
from backend.fitting.priors import quadratic_prior, relaxed_hand_pose
from backend.fitting.rig import LandmarkRig, RigOutput
from backend.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from backend.perception.observations import Observations
from protocol.errors import BadRequest, NoPerson
from protocol.skeleton import JOINT_INDEX, LEFT_HAND_JOINTS, NUM_JOINTS, RIGHT_HAND_JOINTS

from .settings import FitSettings

Progress = Callable[[str, float, str], None]
FINGERS = (LEFT_HAND_JOINTS, RIGHT_HAND_JOINTS)
WRISTS = (JOINT_INDEX["left_wrist"], JOINT_INDEX["right_wrist"])
BODY = slice(1, 22)
LEGS = [JOINT_INDEX[f"{side}_{part}"] for part in ("hip", "knee", "ankle", "foot") for side in ("left", "right")]
JAW = JOINT_INDEX["jaw"]
INIT_SHARE = 0.03  # share of the stage's progress bar taken by the initialisation


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


def _ground_height(feet_y: np.ndarray, valid: np.ndarray) -> float:
    """Ground height from foot-point heights (T,F): the 10th percentile of each frame's lowest point."""
    low = feet_y.min(axis=1)[valid]
    return float(np.percentile(low, 10.0)) if low.size else 0.0


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
    kp2d, conf2d = tt(obs.body_kp2d[..., :2]), tt(obs.body_kp2d[..., 2] * body_valid[:, None])
    kp3d, vis3d = tt(obs.body_kp3d[..., :3]), tt(obs.body_kp3d[..., 3] * body_valid[:, None])
    gate = _wrist_gate(obs, settings.wrist_gate)
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
        local[pin_rows] = pin_rot
    init_pose = matrix_to_axis_angle(local)
    with torch.no_grad():
        init_out = rig(local, root_pos0)
    feet_y0 = init_out.landmarks_body[:, list(mp.FOOT_LANDMARKS), 1].cpu().numpy()
    ground = 0.0 if ground_known else _ground_height(feet_y0, body_valid)
    contacts_np = detect_foot_contacts(obs.body_kp2d, body_valid, obs.fps, speed_thresh=settings.contact_speed,
                                       height_thresh=settings.contact_height)
    if settings.unseen_feet_stand:
        contacts_np = unseen_feet_standing(obs.body_kp2d, body_valid, obs.fps, (obs.width, obs.height), contacts_np,
                                           speed_thresh=settings.contact_speed)
    contacts = tt(contacts_np)
    report("fit", INIT_SHARE, "initialised")

    # The solve moves the start by temporally smoothed offsets: updates of neighbouring frames share gradients,
    # so per-frame noise in the data does not become per-frame noise in the motion, and slow errors fix fast.
    d_root = torch.zeros(t, 1, 3, dtype=dt, device=device)
    d_body = torch.zeros(t, 21, 3, dtype=dt, device=device)
    d_jaw = torch.zeros(t, 1, 3, dtype=dt, device=device)
    d_hands = torch.zeros(t, 30, 3, dtype=dt, device=device)
    d_pos = torch.zeros(t, 3, dtype=dt, device=device)
    init_aa = init_pose.detach()
    betas = torch.zeros(10, dtype=dt, device=device)
    lo, hi = limit_table(device, dt)
    hand_obs = torch.as_tensor(gate, dtype=dt, device=device).clamp(0, 1)
    hand_prior_w = 1.0 + 19.0 * (1.0 - hand_obs)  # (T,2)
    fps = float(obs.fps) if obs.fps > 0 else 30.0
    eyes = torch.zeros(t, 2, 3, dtype=dt, device=device)
    sigma = settings.update_smooth
    foot_idx = [*mp.FOOT_LANDMARKS, mp.L_ANKLE, mp.R_ANKLE]
    leg_idx = torch.as_tensor(LEGS, device=device)
    lock_sigma = 2.0 * sigma  # the legs' corrections spread wider, so holds starting and ending do not jerk
    lock: dict[str, Tensor] = {}  # the foot-lock stage's anchors (T,4,3) and weights (T,4), once it starts
    w = settings
    d_legs = torch.zeros(t, len(LEGS), 3, dtype=dt, device=device)  # foot lock's (0 until then)
    kp2d_all = torch.cat([kp2d, hk2d.reshape(t, 42, 2)], dim=1)
    hconf_flat = hconf.reshape(t, 42)
    obs_rel = kp3d - 0.5 * (kp3d[:, mp.L_HIP:mp.L_HIP + 1] + kp3d[:, mp.R_HIP:mp.R_HIP + 1])
    obs_h = hk3d - hk3d[:, :, :1]
    hweight_21 = hweight[..., None].expand(t, 2, 21)

    def current() -> tuple[Tensor, Tensor]:
        """The pose (T,55,3) axis-angle and pelvis positions (T,3) for the present offsets."""
        delta = torch.cat([d_root, d_body, d_jaw, eyes, d_hands], dim=1)
        pose = (init_aa + smooth_vectors(delta, sigma)).index_add(1, leg_idx, smooth_vectors(d_legs, lock_sigma))
        return pose, root_pos0 + smooth_vectors(d_pos, sigma)

    def posed() -> tuple[Tensor, Tensor, RigOutput]:
        """Every joint free: local rotations as axis-angle (T,55,3) and matrices, and the rig's points."""
        aa, root_pos = current()
        rot = axis_angle_to_matrix(aa)
        return aa, rot, rig(rot, root_pos, betas)

    def root_mover() -> Callable[[], tuple[Tensor, Tensor, RigOutput]]:
        """`posed` for a stage that moves only the root and the shape: the joints below the root are held as
        they are now, so each evaluation turns one rotation per frame instead of running forward kinematics."""
        with torch.no_grad():
            aa_now, _ = current()
            rot_now = axis_angle_to_matrix(aa_now)
            held = rig.held_below_root(rot_now)

        def posed_root() -> tuple[Tensor, Tensor, RigOutput]:
            aa_root = init_aa[:, :1] + smooth_vectors(d_root, sigma)
            r_root = axis_angle_to_matrix(aa_root)
            aa = torch.cat([aa_root, aa_now[:, 1:]], dim=1)
            rot = torch.cat([r_root, rot_now[:, 1:]], dim=1)
            return aa, rot, held.place(r_root[:, 0], root_pos0 + smooth_vectors(d_pos, sigma), betas)
        return posed_root

    def legs_mover() -> Callable[[], tuple[Tensor, Tensor, RigOutput]]:
        """`posed` for the foot lock, which moves only the legs: everything else is held as it is now, and each
        evaluation runs forward kinematics of the 8 leg joints only."""
        with torch.no_grad():
            aa_now, root_now = current()
            rot_now = axis_angle_to_matrix(aa_now)
            held = rig.held_except(rot_now, root_now, betas, LEGS)
            legs_without = aa_now[:, leg_idx] - smooth_vectors(d_legs, lock_sigma)

        def posed_legs() -> tuple[Tensor, Tensor, RigOutput]:
            aa_legs = legs_without + smooth_vectors(d_legs, lock_sigma)
            r_legs = axis_angle_to_matrix(aa_legs)
            aa = aa_now.index_copy(1, leg_idx, aa_legs)
            rot = rot_now.index_copy(1, leg_idx, r_legs)
            return aa, rot, held.place(r_legs)
        return posed_legs

    def loss_fn(pose: Callable[[], tuple[Tensor, Tensor, RigOutput]]) -> tuple[Tensor, dict[str, float]]:
        aa, rot, out = pose()
        body_aa, jaw_aa, hands_aa = aa[:, BODY], aa[:, JAW], aa[:, 25:].reshape(t, 2, 15, 3)
        lmb = out.landmarks_body
        lm_c = to_camera(out.landmarks, r_w2c, t_w2c)  # (T,75,3): body, left hand, right hand
        fit_2d = gmof(image_residual(lm_c, kp2d_all, k), w.sigma_2d)
        terms: dict[str, Tensor] = {}
        terms["body_2d"] = w.w_body_2d * weighted_mean(fit_2d[:, :33], conf2d)
        terms["hand_2d"] = w.w_hand_2d * weighted_mean(fit_2d[:, 33:], hconf_flat)
        # Root-relative 3D terms: the camera's translation cancels, its rotation turns the body into mediapipe's.
        lmb_c, lmh_c = lm_c[:, :33], lm_c[:, 33:].reshape(t, 2, 21, 3)
        rel = lmb_c - 0.5 * (lmb_c[:, mp.L_HIP:mp.L_HIP + 1] + lmb_c[:, mp.R_HIP:mp.R_HIP + 1])
        terms["body_3d"] = w.w_body_3d * weighted_mean(gmof((rel - obs_rel).norm(dim=-1), w.sigma_3d), vis3d)
        rel_h = lmh_c - lmh_c[:, :, :1]
        terms["hand_3d"] = w.w_hand_3d * weighted_mean(gmof((rel_h - obs_h).norm(dim=-1), w.sigma_3d), hweight_21)
        terms["smooth_joints"] = w.w_smooth_joints * position_smoothness(out.joints, 2, fps)
        terms["smooth_rot"] = w.w_smooth_rot * rotation_smoothness(rot, 2, fps)
        terms["smooth_root"] = w.w_smooth_root * position_smoothness(out.joints[:, 0], 2, fps)  # the pelvis
        terms["limits"] = w.w_limits * limit_penalty(body_aa, lo, hi).mean()
        terms["pose_prior"] = w.w_pose_prior * (quadratic_prior(body_aa, torch.zeros_like(body_aa))
                                                + quadratic_prior(jaw_aa, torch.zeros_like(jaw_aa)))
        terms["hand_prior"] = w.w_hand_prior * sum(
            quadratic_prior(hands_aa[:, s], relaxed[s], hand_prior_w[:, s]) for s in range(2))
        terms["shape"] = w.w_shape * shape_prior(betas)
        feet = lmb[:, foot_idx]
        pts = feet[:, :4]
        if t > 1:
            slide = ((pts[1:] - pts[:-1]) ** 2).sum(-1) * (contacts[1:] * contacts[:-1]) * (fps / 30.0) ** 2
            terms["contact"] = w.w_contact * (slide.mean() + (contacts * (pts[..., 1] - ground) ** 2).mean())
        terms["ground"] = w.w_ground * (torch.relu(ground - feet[..., 1]) ** 2).mean()
        if lock:
            held = (lock["weights"] * ((pts - lock["anchors"]) ** 2).sum(-1)).sum()
            terms["foot_lock"] = w.w_foot_lock * held / lock["weights"].sum().clamp_min(1.0)
        if pin_rows.size:
            terms["pins"] = w.w_pins * rotation_distance(rot[pin_rows], pin_rot).mean()
        total = sum(terms.values())
        return total, {name: float(v.detach()) for name, v in terms.items()}  # type: ignore[return-value]

    lock_iterations = settings.foot_lock_iterations if (contacts_np > 0.5).any() else 0
    n_total = max(settings.global_iterations + settings.iterations + lock_iterations, 1)
    lr = 1.0 if settings.optimiser == "lbfgs" else settings.lr  # L-BFGS steps are scaled by its line search

    def stage_progress(offset: int) -> Callable[[int, int], None]:
        def cb(i: int, n: int) -> None:
            report("fit", INIT_SHARE + (1.0 - INIT_SHARE) * ((offset + i) / n_total),
                   f"iteration {offset + i} of {n_total}")
        return cb

    global_pose = root_mover()
    trace_a = optimise([d_root, d_pos, betas], lambda: loss_fn(global_pose), settings.global_iterations, lr=lr,
                       lr_scales=[1.0, 1.0, settings.shape_lr_scale],
                       method=settings.optimiser, progress=stage_progress(0), check_cancelled=check_cancelled)
    trace_b = optimise([d_root, d_pos, betas, d_body, d_jaw, d_hands], lambda: loss_fn(posed), settings.iterations,
                       lr=lr, lr_scales=[1.0, 1.0, settings.shape_lr_scale, 1.0, 1.0, 1.0],
                       method=settings.optimiser, progress=stage_progress(settings.global_iterations),
                       check_cancelled=check_cancelled)

    # Last, inverse kinematics of the legs only: each planted foot point holds its mean position over its contact
    # while every other term keeps the pose (sliding feet come from leg pose more than from the root).
    trace_c = OptimTrace()
    if lock_iterations > 0:
        lock_pose = legs_mover()
        with torch.no_grad():
            planted = lock_pose()[2].landmarks_body[:, list(mp.FOOT_LANDMARKS)]
        anchors, weights = contact_anchors(planted.cpu().numpy(), contacts_np)
        lock["anchors"], lock["weights"] = tt(anchors), tt(weights)
        trace_c = optimise([d_legs], lambda: loss_fn(lock_pose), lock_iterations, lr=lr, method=settings.optimiser,
                           progress=stage_progress(settings.global_iterations + settings.iterations),
                           check_cancelled=check_cancelled)

    with torch.no_grad():
        offsets_pose, root_pos = current()
        rot = axis_angle_to_matrix(offsets_pose)
        full_pose = matrix_to_axis_angle(rot)  # canonical: angles in [0, pi]
        out = rig(rot, root_pos, betas)
        feet_y = out.landmarks_body[:, list(mp.FOOT_LANDMARKS), 1].cpu().numpy()
        shift = 0.0 if ground_known else _ground_height(feet_y, body_valid)
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
        r_w2c=r_np, t_w2c=t_final.detach().cpu().double().numpy(), scale=float(scale), ground_shift=float(shift),
        contacts=contacts_np, confidence=conf, init_pose=npf(init_pose), init_root_pos=npf(init_root),
        losses=trace_a.losses + trace_b.losses + trace_c.losses,
    )
