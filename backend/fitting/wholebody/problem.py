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
from backend.fitting.limits import limit_excess
from backend.fitting.losses import (
    finite_difference,
    gmof_squared,
    image_residual_squared,
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

JAW = JOINT_INDEX["jaw"]
POSE_PARTS = (1, JAW, 2, 30)  # the pose's joints as split in the loss: root, body with jaw, eyes, hands
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
    obs_rel: Tensor  # (T,75,3) mediapipe's metric landmarks: body about the hips, each hand about its wrist
    vis3d: Tensor  # (T,33)
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
class TermWeights:
    """Per-point weights of the terms on a set of frames, each with its normalisation (and the data terms' and the
    feet's own term weights) folded in: a term is then one product and sum a step."""

    data: Tensor  # (2,T,75): image, then 3D; body points, then hands
    hand_prior: Tensor  # (T,30,1) per finger joint: its hand's prior weight over the frame count
    slide: Tensor  # (T-1,6) foot points planted on both frames of a step (the ankles 0), per step counted
    grounded: Tensor  # (T,6) foot points seen planted: held at ground height
    unseen: Tensor  # (T,6) foot points planted but not seen: pulled to the ground robustly

    @staticmethod
    def of(d: FrameData, w: FitSettings) -> TermWeights:
        """The weights of these frames."""
        t = d.n_frames
        image = torch.cat([w.w_body_2d * normalised(d.conf2d), w.w_hand_2d * normalised(d.hconf)], dim=1)
        hands_3d = (normalised(d.hweight) * d.hand_3d_scale).reshape(t, 42)
        metric = torch.cat([w.w_body_3d * normalised(d.vis3d), w.w_hand_3d * hands_3d], dim=1)
        hand_prior = d.hand_prior_w[..., None, None].expand(t, 2, 15, 1).reshape(t, 30, 1) / t
        ankles = d.contacts.new_zeros(t, 2)
        planted = d.contacts[1:] * d.contacts[:-1] / max(4 * (t - 1), 1)
        return TermWeights(torch.stack([image, metric]), hand_prior, torch.cat([planted, ankles[1:]], dim=1),
                       torch.cat([d.grounded, ankles], dim=1) / (4 * t),
                       torch.cat([d.contacts - d.grounded, ankles], dim=1) / (4 * t))


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
        self._weights = {None: TermWeights.of(data, settings)} | {
            p: TermWeights.of(phase, settings) for p, (_, phase) in enumerate(self.phases)}
        dev, dt = data.init_aa.device, data.init_aa.dtype
        # what each landmark's 3D position is taken about: the body's about its hips' midpoint, each hand's about its
        # wrist (the midpoint of the points of both rows; a mean over a pair axis costs a step several times more)
        self._anchors = (torch.tensor([mp.L_HIP] * 33 + [33] * 21 + [54] * 21, device=dev),
                         torch.tensor([mp.R_HIP] * 33 + [33] * 21 + [54] * 21, device=dev))
        self._relaxed = relaxed.reshape(30, 3)  # per finger joint, left hand then right
        self._parts = torch.zeros(75, 2, dtype=dt, device=dev)  # sums body points (first 33) and hand points apart
        self._parts[:33, 0], self._parts[33:, 1] = 1.0, 1.0
        self._joint_mix = torch.zeros(55, 2, dtype=dt, device=dev)  # mean over the joints, and the pelvis alone
        self._joint_mix[:, 0], self._joint_mix[0, 1] = 1.0 / 55, 1.0
        # the body joints' ranges, then the jaw's (free): one split of the pose serves the limits and the prior
        free = torch.full_like(self.lo[:1], 1e6)
        self.lo, self.hi = torch.cat([self.lo, -free]), torch.cat([self.hi, free])

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
        term's weighted value. Terms are few, large operations: a solve pays per operation, forwards and back."""
        d, s, w = self.data if phase is None else self.phases[phase][1], self._weights[phase], self.w
        t, fps, n_acc = d.n_frames, d.fps, max(d.n_frames - 2, 1)
        aa, rot, out = pose(phase)
        names: list[str] = []
        values: list[Tensor] = []  # 1-D tensors, one entry per name
        weights: list[float] = []

        def add(term_names: tuple[str, ...], value: Tensor, *term_weights: float) -> None:
            names.extend(term_names)
            values.append(value.reshape(-1))
            weights.extend(term_weights)

        lm_c = to_camera(out.landmarks, d.r_w2c, d.t_w2c)  # (T,75,3): body, left hand, right hand
        fit_2d = gmof_squared(image_residual_squared(lm_c, d.kp2d, self.k), w.sigma_2d)
        # 3D about the body's hips and each hand's wrist: the camera's translation cancels, its rotation turns the
        # body into mediapipe's
        first, second = self._anchors
        err_3d = lm_c - 0.5 * (lm_c.index_select(1, first) + lm_c.index_select(1, second)) - d.obs_rel
        fit_3d = gmof_squared((err_3d * err_3d).sum(-1), w.sigma_3d)
        add(("body_2d", "hand_2d", "body_3d", "hand_3d"),
            (torch.stack([fit_2d, fit_3d]) * s.data).sum(1) @ self._parts, 1.0, 1.0, 1.0, 1.0)
        joint_acc = position_steps(out.joints, 2, fps)  # (T-2,55): one difference for all joints and the pelvis
        add(("smooth_joints", "smooth_root"), joint_acc.sum(0) @ self._joint_mix,
            w.w_smooth_joints / n_acc, w.w_smooth_root / n_acc)
        add(("smooth_rot",), rotation_smoothness(rot, 2, fps), w.w_smooth_rot)
        _, body, _, hands = aa.split(POSE_PARTS, dim=1)
        # excess beyond the joint ranges, and body and jaw towards rest
        off_body = torch.stack([limit_excess(body, self.lo, self.hi), body])
        add(("limits", "pose_prior"), (off_body * off_body).sum((1, 2, 3)), w.w_limits / t, w.w_pose_prior / t)
        # hands towards relaxed, weighted per frame and hand
        off_hands = hands - self._relaxed
        add(("hand_prior",), (off_hands * off_hands * s.hand_prior).sum(), w.w_hand_prior)
        add(("shape",), shape_prior(self.betas), w.w_shape)
        feet = out.landmarks.index_select(1, self._foot_points)  # (T,6,3): heels and toes, then ankles
        height = feet[..., 1] - d.ground[:, None]
        if t > 1:
            step = finite_difference(feet, 1, fps / 30.0)
            h2 = height * height
            held = h2 * s.grounded + gmof_squared(h2, w.unseen_ground_sigma) * s.unseen
            add(("contact",), ((step * step).sum(-1) * s.slide).sum() + held.sum(), w.w_contact)
        below = torch.relu(-height)
        add(("ground",), (below * below).sum(), w.w_ground / (6 * t))
        if self.lock:
            lock = (self.lock["weights"] * (feet[:, :4] - self.lock["anchors"]).square().sum(-1)).sum()
            add(("foot_lock",), lock / self.lock["weights"].sum().clamp_min(1.0), w.w_foot_lock)
        if len(d.pin_rot):
            add(("pins",), rotation_distance(rot[d.pinned], d.pin_rot).sum(), w.w_pins / (55 * len(d.pin_rot)))
        # one weighting and sum (and one read-back of the values)
        weighted = torch.cat(values) * torch.tensor(weights, dtype=aa.dtype, device=aa.device)
        return weighted.sum(), dict(zip(names, weighted.detach().tolist(), strict=True))
