"""The whole-clip solve's variables and loss: temporally smoothed per-frame offsets from the IK start, robust data
terms and priors, scored on every frame or on one phase of a coarse frame grid (every other frame, alternating),
which costs half as much a step. `solve.py` builds it and runs its stages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from backend.fitting import mapping as mp
from backend.fitting.interp import smooth_vectors
from backend.fitting.limits import limit_penalty
from backend.fitting.losses import (
    gmof,
    image_residual,
    mean_or_zero,
    normalised,
    position_steps,
    rotation_distance,
    rotation_smoothness,
    shape_prior,
    to_camera,
)
from backend.fitting.rig import HeldPose, LandmarkRig, RigOutput
from backend.geometry.rotations import axis_angle_to_matrix
from protocol.skeleton import JOINT_INDEX

from .settings import FitSettings

BODY = slice(1, 22)
JAW = JOINT_INDEX["jaw"]
LEGS = [JOINT_INDEX[f"{side}_{part}"] for part in ("hip", "knee", "ankle", "foot") for side in ("left", "right")]
FOOT_POINTS = [*mp.FOOT_LANDMARKS, mp.L_ANKLE, mp.R_ANKLE]  # heels and toes first, then the ankles
Posed = tuple[Tensor, Tensor, RigOutput]  # local axis-angle (T,55,3), matrices (T,55,3,3), the rig's points
Mover = Callable[[int | None], Posed]  # the pose on one coarse phase's frames (None: every frame)


@dataclass
class FrameData:
    """What the loss reads per frame (first axis: frames) and the frame rate they are sampled at."""

    init_aa: Tensor  # (T,55,3) the IK start, joint 0 = world orientation
    root_pos0: Tensor  # (T,3) the start's world pelvis
    kp2d: Tensor  # (T,75,2) pixels: 33 body, 21 left hand, 21 right hand
    conf2d: Tensor  # (T,33) body keypoint weights (0 on frames without a body)
    hconf: Tensor  # (T,42) hand keypoint weights (wrist-gated)
    obs_rel: Tensor  # (T,33,3) mediapipe's metric body landmarks about the hips
    vis3d: Tensor  # (T,33)
    obs_h: Tensor  # (T,2,21,3) mediapipe's metric hand landmarks about the wrist
    hweight: Tensor  # (T,2,21)
    hand_3d_scale: Tensor  # (T,2,1) how much more a hand's 3D landmarks count for its size in the image (>= 1)
    hand_prior_w: Tensor  # (T,2) weight of the relaxed-hand prior (higher where a hand is unseen)
    r_w2c: Tensor  # (T,3,3)
    t_w2c: Tensor  # (T,3) metres
    contacts: Tensor  # (T,4) planted left heel, left toe, right heel, right toe: they hold still
    grounded: Tensor  # (T,4) those of them seen planted: held at ground height (unseen planted feet only
    # robustly, see FitSettings.unseen_ground_sigma)
    ground: Tensor  # (T,) ground height under the body (world y)
    pinned: Tensor  # (T,) bool: frames whose pose the user pinned
    pin_rot: Tensor  # (P,55,3,3) the pinned poses, in the order of the pinned frames
    fps: float

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.init_aa.shape[0])

    def rows(self, rows: np.ndarray) -> FrameData:
        """These frames only (rows into the clip, evenly spaced), at the frame rate of their spacing."""
        idx = torch.as_tensor(rows, device=self.init_aa.device)
        per_frame = {f.name: getattr(self, f.name)[idx] for f in fields(self) if f.name not in ("pin_rot", "fps")}
        which = torch.cumsum(self.pinned.long(), 0) - 1  # the pose of each pinned frame in pin_rot
        pins = self.pin_rot[which[idx][per_frame["pinned"]]]
        step = float(rows[1] - rows[0]) if len(rows) > 1 else 1.0
        return FrameData(**per_frame, pin_rot=pins, fps=self.fps / step)


@dataclass
class DataWeights:
    """The data terms' per-point weights, each divided by its sum: a term is then one product and sum a step."""

    body_2d: Tensor  # (T,33)
    hand_2d: Tensor  # (T,42)
    body_3d: Tensor  # (T,33)
    hand_3d: Tensor  # (T,2,21), times each hand's 3D scale after the normalisation

    @staticmethod
    def of(d: FrameData) -> DataWeights:
        """The weights of these frames."""
        return DataWeights(normalised(d.conf2d), normalised(d.hconf), normalised(d.vis3d),
                           normalised(d.hweight) * d.hand_3d_scale)


class WholeBodyProblem:
    """Per-frame offsets from the IK start (smoothed over time, so updates of neighbouring frames share gradients)
    and the loss they are scored by. With `step` > 1 the loss can also be scored on phase p of the coarse grid
    (frames p, p + step, ...), with temporal terms over its spacing."""

    def __init__(self, rig: LandmarkRig, data: FrameData, settings: FitSettings, *, k: Tensor, relaxed: Tensor,
                 limits: tuple[Tensor, Tensor], step: int = 1):
        self.rig, self.data, self.w, self.k, self.relaxed = rig, data, settings, k, relaxed
        self.lo, self.hi = limits
        self.sigma = settings.update_smooth
        t = data.n_frames
        z = data.init_aa.new_zeros
        self.betas = z(10)
        self.d_root, self.d_body, self.d_jaw, self.d_hands, self.d_pos = (
            z(t, 1, 3), z(t, 21, 3), z(t, 1, 3), z(t, 30, 3), z(t, 3))
        self.d_legs = z(t, len(LEGS), 3)  # the foot lock's (0 until then)
        self._legs_moved = False  # whether the foot lock has begun (until then d_legs is 0 and costs nothing)
        self._eyes = z(t, 2, 3)
        self._leg_idx = torch.as_tensor(LEGS, device=data.init_aa.device)
        self._foot_points = torch.as_tensor(FOOT_POINTS, device=data.init_aa.device)
        self.phases = [(torch.as_tensor(rows, device=data.init_aa.device), data.rows(rows))
                       for rows in (np.arange(p, t, step) for p in range(step))] if step > 1 else []
        self.lock: dict[str, Tensor] = {}  # the foot lock's anchors (T,4,3) and weights (T,4), once it starts
        self._data_weights = {None: DataWeights.of(data)} | {
            p: DataWeights.of(phase) for p, (_, phase) in enumerate(self.phases)}

    @property
    def lock_sigma(self) -> float:
        """The legs' corrections spread wider, so holds starting and ending do not jerk."""
        return 2.0 * self.sigma

    @property
    def global_params(self) -> list[Tensor]:
        """What the global stage moves: root orientation, pelvis position and the clip's shape."""
        return [self.d_root, self.d_pos, self.betas]

    @property
    def pose_params(self) -> list[Tensor]:
        """What the main stage moves: the global ones, then body, jaw and hands."""
        return [*self.global_params, self.d_body, self.d_jaw, self.d_hands]

    def current(self) -> tuple[Tensor, Tensor]:
        """The pose (T,55,3) axis-angle and pelvis positions (T,3) for the present offsets."""
        delta = torch.cat([self.d_root, self.d_body, self.d_jaw, self._eyes, self.d_hands, self.d_pos[:, None]], 1)
        smoothed = smooth_vectors(delta, self.sigma)  # one smoothing for all: fewer operations a step
        pose = self.data.init_aa + smoothed[:, :-1]
        if self._legs_moved:
            pose = pose.index_add(1, self._leg_idx, smooth_vectors(self.d_legs, self.lock_sigma))
        return pose, self.data.root_pos0 + smoothed[:, -1]

    def posed(self, phase: int | None = None) -> Posed:
        """Every joint free: local rotations as axis-angle and matrices, and the rig's points, on every frame or
        on coarse phase `phase`."""
        aa, root_pos = self.current()
        if phase is not None:
            rows = self.phases[phase][0]
            aa, root_pos = aa.index_select(0, rows), root_pos.index_select(0, rows)
        rot = axis_angle_to_matrix(aa)
        return aa, rot, self.rig(rot, root_pos, self.betas)

    def root_mover(self) -> Mover:
        """`posed` for a stage that moves only the root and the shape: the joints below the root are held as
        they are now, so each evaluation turns one rotation per frame instead of running forward kinematics."""
        with torch.no_grad():
            aa_now, _ = self.current()
            rot_now = axis_angle_to_matrix(aa_now)
            every = self.rig.held_below_root(rot_now)
            held = [HeldPose(every.base[rows], every.shape_dirs[:, rows]) for rows, _ in self.phases] + [every]

        def posed_root(phase: int | None) -> Posed:
            smoothed = smooth_vectors(torch.cat([self.d_root, self.d_pos[:, None]], 1), self.sigma)
            aa_root = self.data.init_aa[:, :1] + smoothed[:, :1]
            root_pos = self.data.root_pos0 + smoothed[:, 1]
            aa_rest, rot_rest = aa_now[:, 1:], rot_now[:, 1:]
            if phase is not None:
                rows = self.phases[phase][0]
                aa_root, root_pos = aa_root.index_select(0, rows), root_pos.index_select(0, rows)
                aa_rest, rot_rest = aa_rest[rows], rot_rest[rows]  # held: no gradient to scatter back
            r_root = axis_angle_to_matrix(aa_root)
            aa = torch.cat([aa_root, aa_rest], dim=1)
            rot = torch.cat([r_root, rot_rest], dim=1)
            return aa, rot, held[-1 if phase is None else phase].place(r_root[:, 0], root_pos, self.betas)
        return posed_root

    def legs_mover(self) -> Mover:
        """`posed` for the foot lock, which moves only the legs: everything else is held as it is now, and each
        evaluation runs forward kinematics of the 8 leg joints only (on every frame)."""
        leg_idx = self._leg_idx
        with torch.no_grad():
            aa_now, root_now = self.current()
            rot_now = axis_angle_to_matrix(aa_now)
            held = self.rig.held_except(rot_now, root_now, self.betas, LEGS)
            legs_without = aa_now[:, leg_idx] - smooth_vectors(self.d_legs, self.lock_sigma)
        self._legs_moved = True

        def posed_legs(phase: int | None) -> Posed:
            if phase is not None:
                raise ValueError("the foot lock is scored on every frame")
            aa_legs = legs_without + smooth_vectors(self.d_legs, self.lock_sigma)
            r_legs = axis_angle_to_matrix(aa_legs)
            aa = aa_now.index_copy(1, leg_idx, aa_legs)
            rot = rot_now.index_copy(1, leg_idx, r_legs)
            return aa, rot, held.place(r_legs)
        return posed_legs

    def loss(self, pose: Mover, phase: int | None = None) -> tuple[Tensor, dict[str, float]]:
        """The total loss of the pose `pose` gives, on every frame or on coarse phase `phase`, and each named
        term's value."""
        d, w = self.data if phase is None else self.phases[phase][1], self.w
        t, fps = d.n_frames, d.fps
        aa, rot, out = pose(phase)
        body_aa, hands_aa = aa[:, BODY], aa[:, 25:].reshape(t, 2, 15, 3)
        lm_c = to_camera(out.landmarks, d.r_w2c, d.t_w2c)  # (T,75,3): body, left hand, right hand
        fit_2d = gmof(image_residual(lm_c, d.kp2d, self.k), w.sigma_2d)
        terms: dict[str, tuple[float, Tensor]] = {}  # name: (weight, unweighted value)
        dw = self._data_weights[phase]
        terms["body_2d"] = (w.w_body_2d, (fit_2d[:, :33] * dw.body_2d).sum())
        terms["hand_2d"] = (w.w_hand_2d, (fit_2d[:, 33:] * dw.hand_2d).sum())
        # Root-relative 3D terms: the camera's translation cancels, its rotation turns the body into mediapipe's.
        lmb_c, lmh_c = lm_c[:, :33], lm_c[:, 33:].reshape(t, 2, 21, 3)
        rel = lmb_c - 0.5 * (lmb_c[:, mp.L_HIP:mp.L_HIP + 1] + lmb_c[:, mp.R_HIP:mp.R_HIP + 1])
        terms["body_3d"] = (w.w_body_3d, (gmof((rel - d.obs_rel).norm(dim=-1), w.sigma_3d) * dw.body_3d).sum())
        rel_h = lmh_c - lmh_c[:, :, :1]
        terms["hand_3d"] = (w.w_hand_3d, (gmof((rel_h - d.obs_h).norm(dim=-1), w.sigma_3d) * dw.hand_3d).sum())
        joint_acc = position_steps(out.joints, 2, fps)  # (T-2,55): one difference for all joints and the pelvis
        terms["smooth_joints"] = (w.w_smooth_joints, mean_or_zero(joint_acc))
        terms["smooth_rot"] = (w.w_smooth_rot, rotation_smoothness(rot, 2, fps))
        terms["smooth_root"] = (w.w_smooth_root, mean_or_zero(joint_acc[:, 0]))
        terms["limits"] = (w.w_limits, limit_penalty(body_aa, self.lo, self.hi).mean())
        # body and jaw towards rest, hands towards relaxed (weighted per frame and hand): mean squares per frame
        terms["pose_prior"] = (w.w_pose_prior, aa[:, BODY.start:JAW + 1].square().sum() / t)
        terms["hand_prior"] = (w.w_hand_prior,
                               ((hands_aa - self.relaxed).square().sum((-1, -2)) * d.hand_prior_w).sum() / t)
        terms["shape"] = (w.w_shape, shape_prior(self.betas))
        feet = out.landmarks_body.index_select(1, self._foot_points)
        pts = feet[:, :4]
        if t > 1:
            planted = d.contacts[1:] * d.contacts[:-1]
            slide = ((pts[1:] - pts[:-1]) ** 2).sum(-1) * planted * (fps / 30.0) ** 2
            height = pts[..., 1] - d.ground[:, None]
            unseen = (d.contacts - d.grounded) * gmof(height, w.unseen_ground_sigma)
            terms["contact"] = (w.w_contact, slide.mean() + (d.grounded * height ** 2 + unseen).mean())
        terms["ground"] = (w.w_ground, (torch.relu(d.ground[:, None] - feet[..., 1]) ** 2).mean())
        if self.lock:
            held = (self.lock["weights"] * ((pts - self.lock["anchors"]) ** 2).sum(-1)).sum()
            terms["foot_lock"] = (w.w_foot_lock, held / self.lock["weights"].sum().clamp_min(1.0))
        if len(d.pin_rot):
            terms["pins"] = (w.w_pins, rotation_distance(rot[d.pinned], d.pin_rot).mean())
        # one stacked product and sum (and one read-back of the values): a step pays per operation
        weights = torch.tensor([k for k, _ in terms.values()], dtype=aa.dtype, device=aa.device)
        weighted = torch.stack([v for _, v in terms.values()]) * weights
        return weighted.sum(), dict(zip(terms, weighted.detach().tolist(), strict=True))
