"""HMP-style fitting of hands to 2D keypoints: per-frame inverse kinematics, then two optimisation stages,
the second one in the latent space of the hand motion prior.

Stage 1 optimises the wrist orientation, translation and shape against the reprojected landmarks, staying
close to the per-frame initialisation and smooth in time; stage 2 adds one latent code per 128-frame window
(windows overlap by 16 frames and are blended with linear ramps, so there are no seams) and decodes the whole
clip's finger motion from the prior, plus (our addition) a small, smooth per-frame residual and a term on
mediapipe's metric landmarks. Frames without a detection drop out of every data term; the prior fills them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from backend.geometry.rotations import (
    axis_angle_to_matrix,
    axis_angle_to_quaternion,
    geodesic_angle,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    quat_slerp,
    quaternion_to_axis_angle,
    rot6d_to_matrix,
)
from backend.models.base import NUM_BETAS, HandModel, HandPose

from .model import HandMotionPrior
from .skeleton import FINGERS, MEDIAPIPE_FROM_HAND, limit_violation, mirror_hand_pose

_MIRROR = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))  # X mirror: left <-> right hand local rotations
_PALM = (0, 5, 9, 13, 17)  # mediapipe wrist and the four finger MCPs


@dataclass
class FitConfig:
    """Iterations, learning-rate schedule, loss weights and robust-loss scale of the fitting."""

    ik_iters: int = 120  # per-frame inverse kinematics onto mediapipe's metric landmarks
    stage1_iters: int = 120
    stage2_iters: int = 200
    lr: float = 0.05  # Adam
    lr_decay: float = 0.7  # multiplied in every `lr_step` iterations
    lr_step: int = 60
    grad_clip: float = 5.0
    overlap: int = 16  # frames shared by consecutive windows (the window length is the prior's)
    gm_sigma_px: float = 100.0  # Geman-McClure scale of the 2D residual (pixels)
    gm_sigma_cm: float = 2.0  # Geman-McClure scale of the 3D landmark residual (cm); 0 = plain squares
    outlier_window: int = 4  # frames each side a detection's wrist orientation is checked against; 0 = no check
    outlier_deg: float = 60.0  # a neighbour disagrees beyond this angle plus outlier_deg_per_frame per frame apart
    outlier_deg_per_frame: float = 10.0
    # stage 1
    w1_orient: float = 3.0
    w1_transl: float = 1.0
    w1_orient_smooth: float = 1.0
    w1_transl_smooth: float = 5.0
    w1_shape: float = 3.0
    w1_kp2d: float = 0.05
    # stage 2
    w2_orient: float = 2.0
    w2_transl: float = 1.0
    w2_orient_smooth: float = 1.0
    w2_transl_smooth: float = 5.0
    w2_shape: float = 10.0
    w2_kp2d: float = 0.05
    w2_prior: float = 100.0  # on 0.5 * mean(z^2); HMP's 300 over-smooths with this normalisation
    w2_kp3d: float = 10.0  # ours, not HMP's: mediapipe's metric landmarks, root-relative, squared cm
    # ours, not HMP's: a per-frame rotation residual on top of the decoded motion, for motions the prior cannot
    # represent exactly; penalised (squared radians) and kept smooth, so gaps still follow the prior
    w2_residual: float = 3.0
    w2_residual_smooth: float = 3000.0
    # ours, not HMP's, both stages: squared second difference of the wrist orientation (6D). HMP's first-difference
    # term alone leaves the per-frame wrist jitter in, and that jitter swings every fingertip (most of RA-ACC)
    w_orient_accel: float = 3000.0


@dataclass
class HandTrack:
    """One hand's observations: 2D keypoints (pixels + confidence), mediapipe metric landmarks, detections."""

    side: str  # "left" | "right"
    kp2d: np.ndarray  # (T,21,3)
    kp3d: np.ndarray  # (T,21,3) camera-aligned axes, metres, origin near the hand centre
    valid: np.ndarray  # (T,) bool


@dataclass
class CameraTrack:
    """The camera the keypoints were seen through: intrinsics and world-to-camera poses per frame."""

    K: np.ndarray  # (3,3)
    R_w2c: np.ndarray  # (T,3,3)
    t_w2c: np.ndarray  # (T,3)


@dataclass
class Wrist:
    """A wrist motion imposed from a body fit: the hand's world orientation, translation and shape are held."""

    global_orient: np.ndarray  # (T,3)
    transl: np.ndarray  # (T,3)
    betas: np.ndarray  # (10,)


@dataclass
class HandFit:
    """A fitted (or initial) hand motion in the world frame, MANO-style parameters."""

    global_orient: np.ndarray  # (T,3)
    hand_pose: np.ndarray  # (T,15,3)
    betas: np.ndarray  # (10,)
    transl: np.ndarray  # (T,3)
    valid: np.ndarray  # (T,) frames between the first and the last detection


class HandKinematics:
    """Fast landmarks of a HandModel for many frames: its rest joints and landmarks for one shape, chained by
    forward kinematics (exact for the joints of any LBS hand; fingertips ride rigidly on their distal joint).
    Joints of one depth in the tree are posed together, so a five-finger hand takes four batched steps."""

    def __init__(self, model: HandModel) -> None:
        self.model = model
        self.parents = tuple(model.parents)
        distal = {f: 3 + 3 * i for i, f in enumerate(FINGERS)}
        self.attach = [idx if kind == 0 else distal[FINGERS[idx]] for kind, idx in MEDIAPIPE_FROM_HAND]
        depth = [0] * len(self.parents)
        for j, p in enumerate(self.parents):
            depth[j] = 0 if p < 0 else depth[p] + 1
        self.levels = [[j for j in range(len(depth)) if depth[j] == d] for d in range(1, max(depth) + 1)]
        order = [j for j in range(len(depth)) if depth[j] == 0] + [j for lv in self.levels for j in lv]
        self.slot = {j: i for i, j in enumerate(order)}  # joint -> position in the level-ordered stack
        self.unorder = [self.slot[j] for j in range(len(depth))]

    def rest(self, betas: Tensor) -> tuple[Tensor, Tensor]:
        """Rest joints (16,3) and landmarks (21,3) of shape `betas` (1,10)."""
        z = betas.new_zeros
        out = self.model(HandPose(z(1, 3), z(1, 15, 3), betas, z(1, 3)))
        return out.joints[0], out.landmarks[0]

    def landmarks(self, orient: Tensor, pose: Tensor, betas: Tensor, transl: Tensor) -> Tensor:
        """Landmarks (B,21,3): wrist rotations (B,3,3), local rotations (B,15,3,3), betas (1,10), transl (B,3)."""
        joints, lms = self.rest(betas)
        root = self.parents.index(-1)
        glob = orient[:, None]
        pos = (joints[root] + transl)[:, None]
        for level in self.levels:
            par = [self.slot[self.parents[j]] for j in level]
            g_par = glob[:, par]
            offset = joints[level] - joints[[self.parents[j] for j in level]]
            glob = torch.cat([glob, g_par @ pose[:, [j - 1 for j in level]]], dim=1)
            pos = torch.cat([pos, pos[:, par] + (g_par @ offset[..., None])[..., 0]], dim=1)
        glob, pos = glob[:, self.unorder], pos[:, self.unorder]
        a = self.attach
        return pos[:, a] + (glob[:, a] @ (lms - joints[a])[..., None])[..., 0]


def geman_mcclure(residual_sq: Tensor, sigma: float) -> Tensor:
    """Robust Geman-McClure penalty of squared residuals: sigma^2 r^2 / (sigma^2 + r^2)."""
    s2 = sigma * sigma
    return s2 * residual_sq / (s2 + residual_sq)


def project(points: Tensor, cam: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """World points (T,N,3) -> pixels (T,N,2) through K (3,3), R_w2c (T,3,3), t_w2c (T,3)."""
    k, r, t = cam
    pc = torch.einsum("tij,tnj->tni", r, points) + t[:, None]
    z = pc[..., 2:].clamp_min(1e-3)
    uv = pc[..., :2] / z
    return uv * torch.stack([k[0, 0], k[1, 1]]) + torch.stack([k[0, 2], k[1, 2]])


def _to_model_side(rot: Tensor, side: str) -> Tensor:
    """Right-hand (prior) local rotations (...,3,3) -> the given side's, by the X mirror for the left hand."""
    if side == "right":
        return rot
    m = _MIRROR.to(rot)
    return m @ rot @ m


def _kabsch(src: Tensor, dst: Tensor) -> Tensor:
    """Rotations (B,3,3) best taking centred point sets src (B,N,3) onto dst (B,N,3)."""
    s = src - src.mean(1, keepdim=True)
    d = dst - dst.mean(1, keepdim=True)
    u, _, vt = torch.linalg.svd(d.transpose(1, 2) @ s)
    sign = torch.sign(torch.linalg.det(u @ vt))
    fix = torch.diag_embed(torch.stack([torch.ones_like(sign), torch.ones_like(sign), sign], -1))
    return u @ fix @ vt


def _solve_translation(lm: Tensor, kp2d: Tensor, cam: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """World translation (B,3) making landmarks lm (B,21,3, transl 0) reproject onto kp2d (B,21,3) best (linear LS)."""
    k, r, t = cam
    c = torch.einsum("bij,bnj->bni", r, lm) + t[:, None]  # camera frame without the unknown offset d = R tau
    u, v, w = kp2d[..., 0], kp2d[..., 1], kp2d[..., 2].clamp_min(1e-3)
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    zero = torch.zeros_like(u)
    # fx (x + dx) + (cx - u)(z + dz) = 0 and fy (y + dy) + (cy - v)(z + dz) = 0, linear in d
    a = torch.cat([torch.stack([fx.expand_as(u), zero, cx - u], -1),
                   torch.stack([zero, fy.expand_as(v), cy - v], -1)], 1)
    b = torch.cat([-(fx * c[..., 0] + (cx - u) * c[..., 2]), -(fy * c[..., 1] + (cy - v) * c[..., 2])], 1)
    ww = torch.cat([w, w], 1)[..., None]
    ata = (a * ww).transpose(1, 2) @ a + 1e-6 * torch.eye(3)
    d = torch.linalg.solve(ata, ((a * ww).transpose(1, 2) @ b[..., None]))[..., 0]
    return torch.einsum("bji,bj->bi", r, d)


def _slerp_fill(rot_aa: Tensor, valid: np.ndarray) -> Tensor:
    """Fill invalid frames of axis-angle (T,J,3) by slerp between the nearest valid frames (held at the ends)."""
    idx = np.flatnonzero(valid)
    t_all = np.arange(len(valid))
    right = np.clip(np.searchsorted(idx, t_all), 0, len(idx) - 1)
    left = np.clip(right - 1, 0, len(idx) - 1)
    left = np.where(idx[right] <= t_all, right, left)
    i0, i1 = idx[left], idx[right]
    frac = np.where(i1 > i0, (t_all - i0) / np.maximum(i1 - i0, 1), 0.0)
    q = axis_angle_to_quaternion(rot_aa)
    fr = torch.as_tensor(frac, dtype=rot_aa.dtype)[:, None].expand(-1, rot_aa.shape[1])
    return quaternion_to_axis_angle(quat_slerp(q[i0], q[i1], fr))


def _linear_fill(x: Tensor, valid: np.ndarray) -> Tensor:
    """Fill invalid frames of (T,3) by linear interpolation between valid ones (held at the ends)."""
    idx = np.flatnonzero(valid)
    t_all = np.arange(len(valid))
    cols = [np.interp(t_all, idx, x[idx, c].numpy()) for c in range(x.shape[1])]
    return torch.as_tensor(np.stack(cols, 1), dtype=x.dtype)


def _detection_span(valid: np.ndarray) -> np.ndarray:
    """(T,) true from the first to the last detected frame."""
    idx = np.flatnonzero(valid)
    span = np.zeros_like(valid, dtype=bool)
    span[idx[0] : idx[-1] + 1] = True
    return span


def initial_fit(track: HandTrack, camera: CameraTrack, kin: HandKinematics, cfg: FitConfig) -> HandFit:
    """Per-frame IK of the hand onto mediapipe's metric landmarks, translation from the 2D keypoints, slerp infill."""
    valid = np.asarray(track.valid, bool)
    if not valid.any():
        raise ValueError(f"the {track.side} hand is never detected")
    idx = np.flatnonzero(valid)
    r_w2c = torch.as_tensor(camera.R_w2c[idx], dtype=torch.float32)
    target = torch.einsum("bji,bnj->bni", r_w2c, torch.as_tensor(track.kp3d[idx], dtype=torch.float32))
    target = target - target.mean(1, keepdim=True)
    betas = torch.zeros(1, NUM_BETAS)
    n = len(idx)
    with torch.no_grad():
        rest = kin.landmarks(torch.eye(3).expand(n, 3, 3), torch.eye(3).expand(n, 15, 3, 3), betas, torch.zeros(n, 3))
        palm = list(_PALM)
        orient0 = _kabsch(rest[:, palm], target[:, palm])
        palm_size = (target[:, palm] - target[:, palm].mean(1, keepdim=True)).norm(dim=-1).mean(1)
        rest_size = (rest[:, palm] - rest[:, palm].mean(1, keepdim=True)).norm(dim=-1).mean(1)
    o6 = matrix_to_rot6d(orient0).clone().requires_grad_(True)
    pose = torch.zeros(n, 15, 3, requires_grad=True)
    log_scale = torch.log(palm_size / rest_size)[:, None, None].clone().requires_grad_(True)
    # the palm's Kabsch orientation is exact for a rigid palm: hold it while the fingers settle, then refine all
    opt = torch.optim.Adam([pose, log_scale], lr=cfg.lr)
    for it in range(cfg.ik_iters):
        if it == cfg.ik_iters // 2:
            opt = torch.optim.Adam([o6, pose, log_scale], lr=cfg.lr * 0.3)
        rot = axis_angle_to_matrix(pose)
        lm = kin.landmarks(rot6d_to_matrix(o6), rot, betas, torch.zeros(n, 3))
        lm = (lm - lm.mean(1, keepdim=True)) * log_scale.exp()
        right_pose = pose if track.side == "right" else mirror_hand_pose(pose)
        loss = ((lm - target) ** 2).sum(-1).mean() * 1e4 + limit_violation(right_pose).pow(2).sum((-1, -2)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        orient = rot6d_to_matrix(o6)
        lm = kin.landmarks(orient, axis_angle_to_matrix(pose), betas, torch.zeros(n, 3))
        cam = (torch.as_tensor(camera.K, dtype=torch.float32), r_w2c,
               torch.as_tensor(camera.t_w2c[idx], dtype=torch.float32))
        transl = _solve_translation(lm, torch.as_tensor(track.kp2d[idx], dtype=torch.float32), cam)
        t_len = len(valid)
        full_orient = torch.zeros(t_len, 3)
        full_pose = torch.zeros(t_len, 15, 3)
        full_transl = torch.zeros(t_len, 3)
        full_orient[idx] = matrix_to_axis_angle(orient)
        full_pose[idx] = pose.detach()
        full_transl[idx] = transl
    return refill(HandFit(full_orient.numpy(), full_pose.numpy(), np.zeros(NUM_BETAS, np.float32),
                          full_transl.numpy(), _detection_span(valid)), valid)


def orientation_outliers(orient: Tensor, valid: np.ndarray, cfg: FitConfig) -> np.ndarray:
    """(T,) detections whose wrist orientation (T,3 axis-angle) disagrees with most detections within
    `outlier_window` frames: mediapipe's flipped or mirrored hands, which no smoothness term can undo."""
    out = np.zeros(len(valid), bool)
    idx = np.flatnonzero(valid)
    if cfg.outlier_window <= 0 or len(idx) < 3:
        return out
    rot = axis_angle_to_matrix(orient[idx]).double()
    angle = np.degrees(geodesic_angle(rot[:, None], rot[None]).numpy())
    gap = np.abs(idx[:, None] - idx[None, :])
    near = (gap <= cfg.outlier_window) & (gap > 0)
    disagree = angle > cfg.outlier_deg + cfg.outlier_deg_per_frame * gap
    n_near = near.sum(1)
    out[idx] = (n_near >= 2) & ((disagree & near).sum(1) * 2 > n_near)
    return out


def refill(fit: HandFit, keep: np.ndarray) -> HandFit:
    """The fit with every frame outside `keep` refilled from the kept ones (slerp, linear translation)."""
    return HandFit(_slerp_fill(torch.as_tensor(fit.global_orient)[:, None], keep)[:, 0].numpy(),
                   _slerp_fill(torch.as_tensor(fit.hand_pose), keep).numpy(), fit.betas,
                   _linear_fill(torch.as_tensor(fit.transl), keep).numpy(), fit.valid)


def window_starts(n_frames: int, window: int, overlap: int) -> list[int]:
    """Start frames of the windows covering n_frames with at least `overlap` frames shared (last one flush)."""
    if n_frames <= window:
        return [0]
    starts = list(range(0, n_frames - window, window - overlap))
    return [*starts, n_frames - window]


def blend_weights(n_frames: int, starts: list[int], window: int, overlap: int) -> Tensor:
    """(n_windows, n_frames) weights summing to 1 per frame: linear ramps over `overlap` frames where windows meet."""
    w = torch.zeros(len(starts), n_frames)
    length = min(window, n_frames)
    ramp = torch.arange(1, length + 1, dtype=torch.float32) / (overlap + 1)
    for i, s in enumerate(starts):
        up = ramp if i > 0 else torch.ones(length)
        down = ramp.flip(0) if i < len(starts) - 1 else torch.ones(length)
        w[i, s : s + length] = torch.minimum(torch.minimum(up, down), torch.ones(length))
    return w / w.sum(0, keepdim=True)


def decode_clip(prior: HandMotionPrior, z: Tensor, starts: list[int], weights: Tensor, n_frames: int) -> Tensor:
    """Right-hand local rotations (T,15,3,3) of the whole clip from per-window codes z (n_windows, latent)."""
    length = min(prior.cfg.window, n_frames)
    rots = prior.decode(z, prior.times(length, z.device))  # (n_windows, length, 15, 3, 3)
    d6 = matrix_to_rot6d(rots)
    acc = z.new_zeros(n_frames, 15, 6)
    for i, s in enumerate(starts):
        acc = acc.index_add(0, torch.arange(s, s + length), d6[i] * weights[i, s : s + length, None, None])
    return rot6d_to_matrix(acc)


def _smooth(x: Tensor) -> Tensor:
    """Mean squared difference of consecutive frames (0 for a single frame)."""
    return ((x[1:] - x[:-1]) ** 2).sum(-1).mean() if x.shape[0] > 1 else x.new_zeros(())


def _accel(x: Tensor) -> Tensor:
    """Mean squared second difference of consecutive frames (0 for fewer than three frames)."""
    return ((x[2:] - 2 * x[1:-1] + x[:-2]) ** 2).sum(-1).mean() if x.shape[0] > 2 else x.new_zeros(())


def fit_hand(track: HandTrack, camera: CameraTrack, model: HandModel, prior: HandMotionPrior, cfg: FitConfig,
             tick: Callable[[float], None] = lambda f: None,
             wrist: Wrist | None = None) -> tuple[HandFit, HandFit, dict[str, float]]:
    """Fit one hand to its keypoints: returns (HMP fit, per-frame initialisation, timings in seconds).

    `tick(fraction)` is called every iteration (progress and cancellation). With `wrist` (from a body fit) the
    hand's orientation, translation and shape are those of the body's wrist: stage 1 is skipped and stage 2
    solves the fingers only.
    """
    t0 = time.perf_counter()
    kin = HandKinematics(model)
    init = initial_fit(track, camera, kin, cfg)
    start, used = init, np.asarray(track.valid, bool)
    outliers = orientation_outliers(torch.as_tensor(start.global_orient), used, cfg)
    if outliers.any() and (used & ~outliers).any():  # the outliers become gaps: out of the data, refilled
        used = used & ~outliers
        start = refill(init, used)
    if wrist is not None:
        start = HandFit(np.asarray(wrist.global_orient, np.float32), start.hand_pose,
                        np.asarray(wrist.betas, np.float32), np.asarray(wrist.transl, np.float32), start.valid)
    t_init = time.perf_counter() - t0
    valid = torch.as_tensor(used)
    kp = torch.as_tensor(track.kp2d, dtype=torch.float32)
    conf = kp[..., 2] * valid[:, None]
    n_valid = valid.sum().clamp_min(1)
    cam = (torch.as_tensor(camera.K, dtype=torch.float32), torch.as_tensor(camera.R_w2c, dtype=torch.float32),
           torch.as_tensor(camera.t_w2c, dtype=torch.float32))
    kp3d_c = torch.as_tensor(track.kp3d, dtype=torch.float32)
    kp3d_c = kp3d_c - kp3d_c.mean(1, keepdim=True)
    n = kp.shape[0]
    o6_init = matrix_to_rot6d(axis_angle_to_matrix(torch.as_tensor(start.global_orient)))
    tr_init = torch.as_tensor(start.transl)
    pose_init = axis_angle_to_matrix(torch.as_tensor(start.hand_pose))
    o6 = o6_init.clone().requires_grad_(True)
    transl = tr_init.clone().requires_grad_(True)
    betas = torch.as_tensor(start.betas, dtype=torch.float32)[None].clone().requires_grad_(True)
    residual = torch.zeros(n, 15, 3, requires_grad=True)
    starts = window_starts(n, prior.cfg.window, cfg.overlap)
    weights = blend_weights(n, starts, prior.cfg.window, cfg.overlap)
    with torch.no_grad():
        right_init = _to_model_side(pose_init, track.side)
        z0 = prior.encode_pose(torch.stack([matrix_to_axis_angle(right_init[s : s + prior.cfg.window])
                                            for s in starts]))
    z = z0.clone().requires_grad_(True)
    stage1_iters = 0 if wrist is not None else cfg.stage1_iters
    total_iters = stage1_iters + cfg.stage2_iters

    def fingers() -> Tensor:
        right = decode_clip(prior, z, starts, weights, n) @ axis_angle_to_matrix(residual)
        return _to_model_side(right, track.side)

    def data_terms(pose: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """2D, 3D, orientation and translation closeness, orientation smoothness (first and second differences,
        weighted) and translation smoothness."""
        lm = kin.landmarks(rot6d_to_matrix(o6), pose, betas, transl)
        r2 = ((project(lm, cam) - kp[..., :2]) ** 2).sum(-1)
        kp2d = (conf * geman_mcclure(r2, cfg.gm_sigma_px)).sum() / (n_valid * lm.shape[1])
        lm_c = torch.einsum("tij,tnj->tni", cam[1], lm)
        lm_c = lm_c - lm_c.mean(1, keepdim=True)
        r3 = (((lm_c - kp3d_c) * 100.0) ** 2).sum(-1)
        if cfg.gm_sigma_cm > 0:
            r3 = geman_mcclure(r3, cfg.gm_sigma_cm)
        kp3d = (r3.mean(-1) * valid).sum() / n_valid
        orient_close = ((o6 - o6_init) ** 2).sum(-1).mean()  # all frames: in gaps it holds the slerp infill
        transl_close = ((transl - tr_init) ** 2).sum(-1).mean()
        orient_smooth = _smooth(o6) + cfg.w_orient_accel * _accel(o6)
        return kp2d, kp3d, orient_close, transl_close, orient_smooth, _smooth(transl)

    def run(params: list[Tensor], iters: int, loss_fn: Callable[[], Tensor], offset: int) -> None:
        opt = torch.optim.Adam(params, lr=cfg.lr)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_decay)
        for it in range(iters):
            loss = loss_fn()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            tick((offset + it + 1) / total_iters)

    def stage1() -> Tensor:
        kp2d, _, oc, tc, osm, tsm = data_terms(pose_init)
        return (cfg.w1_kp2d * kp2d + cfg.w1_orient * oc + cfg.w1_transl * tc + cfg.w1_orient_smooth * osm
                + cfg.w1_transl_smooth * tsm + cfg.w1_shape * (betas**2).sum())

    def stage2() -> Tensor:
        kp2d, kp3d, oc, tc, osm, tsm = data_terms(fingers())
        nll = 0.5 * (z**2).mean()
        res = (residual**2).sum(-1).mean()
        res_smooth = ((residual[1:] - residual[:-1]) ** 2).sum(-1).mean() if n > 1 else res * 0.0
        return (cfg.w2_kp2d * kp2d + cfg.w2_kp3d * kp3d + cfg.w2_orient * oc + cfg.w2_transl * tc
                + cfg.w2_orient_smooth * osm + cfg.w2_transl_smooth * tsm + cfg.w2_shape * (betas**2).sum()
                + cfg.w2_prior * nll + cfg.w2_residual * res + cfg.w2_residual_smooth * res_smooth)

    t1 = time.perf_counter()
    run([o6, transl, betas], stage1_iters, stage1, 0)
    t2 = time.perf_counter()
    run([z, residual] if wrist is not None else [o6, transl, betas, z, residual], cfg.stage2_iters, stage2,
        stage1_iters)
    t3 = time.perf_counter()
    with torch.no_grad():
        pose = fingers()
        fit = HandFit(
            global_orient=matrix_to_axis_angle(rot6d_to_matrix(o6)).numpy(),
            hand_pose=matrix_to_axis_angle(pose).numpy(),
            betas=betas[0].numpy().copy(),
            transl=transl.numpy().copy(),
            valid=init.valid.copy(),
        )
    return fit, init, {"init": t_init, "stage1": t2 - t1, "stage2": t3 - t2}
