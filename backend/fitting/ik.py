"""Analytic inverse kinematics: SMPL-X joint rotations from mediapipe's metric 3D landmarks, every frame at once.

Works in whatever frame the landmarks are given (mediapipe's world landmarks are camera-oriented: x right, y down,
z away), so the root orientation comes out in that frame. Rest directions come from the same landmarks on the
body model at rest (`LandmarkRig`), so model-specific landmark placement cancels out. Per bone:
- pelvis from the hip line and the torso's up direction; the chest from the shoulder line and the same up,
  its rotation relative to the pelvis spread evenly over spine1..3; the head from the ears and the nose, its
  rotation relative to the chest spread over neck and head; collars stay at rest;
- shoulders and hips: the swing aligning the upper bone, with the twist fixed by the elbow / knee hinge: the
  plane of the upper and lower bone must contain the joint's flexion axis (blended out as the limb straightens);
- elbows and knees: the turn about that flexion axis bringing the lower bone closest, then any residual swing;
  ankles from heel->toe and heel->ankle;
- wrists from the hand landmarks (wrist->middle knuckle, index->pinky knuckle), or from the body's hand points;
- fingers: the swing of each phalanx from its parent's frame, along the 21-point chains.
Everything is vectorised over frames (torch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from backend.geometry.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from protocol.skeleton import JOINT_INDEX as J
from protocol.skeleton import NUM_JOINTS, PARENTS

from . import mapping as mp
from .rig import LandmarkRig

HAND_OFFSET = 33  # hand landmarks follow the 33 body landmarks in LandmarkRig.rest()
# Flexion axes of the hinges at rest (world-aligned frames): elbows bend the forearm forward (+z), knees the shin
# backward (-z); the axis is cross(upper bone, lower bone) of a bent limb.
HINGE_AXIS = {"left_elbow": (0.0, -1.0, 0.0), "right_elbow": (0.0, 1.0, 0.0),
              "left_knee": (1.0, 0.0, 0.0), "right_knee": (1.0, 0.0, 0.0)}
HINGE_BLEND_DEG = (8.0, 25.0)  # below the first bend angle the hinge plane is ignored, above the second trusted


@dataclass
class IKResult:
    """Per-frame local rotations of all 55 joints (index 0 = root orientation in the landmarks' frame)."""

    local_rot: Tensor  # (T,55,3,3)
    global_rot: Tensor  # (T,55,3,3)

    def axis_angle(self) -> Tensor:
        """(T,55,3) axis-angle pose."""
        return matrix_to_axis_angle(self.local_rot)


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def frame(a: Tensor, b: Tensor) -> Tensor:
    """Orthonormal frames (...,3,3) with columns: a, b made orthogonal to a, and their cross product."""
    e1 = _unit(a)
    e2 = _unit(b - (b * e1).sum(-1, keepdim=True) * e1)
    return torch.stack([e1, e2, torch.cross(e1, e2, dim=-1)], dim=-1)


def align(a_rest: Tensor, b_rest: Tensor, a_obs: Tensor, b_obs: Tensor) -> Tensor:
    """The rotation taking a_rest onto a_obs exactly and the (a_rest, b_rest) plane onto (a_obs, b_obs)."""
    return frame(a_obs, b_obs) @ frame(a_rest, b_rest).transpose(-1, -2)


def swing(u: Tensor, v: Tensor) -> Tensor:
    """The smallest rotation (...,3,3) taking direction u onto direction v."""
    u, v = _unit(u), _unit(v)
    w = torch.cross(u, v, dim=-1)
    c = (u * v).sum(-1)
    x, y, z = w.unbind(-1)
    o = torch.zeros_like(x)
    k = torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).reshape(*w.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=u.dtype, device=u.device).expand(k.shape)
    return eye + k + (k @ k) / (1.0 + c).clamp_min(1e-6)[..., None, None]


def rotation_about(axis: Tensor, u: Tensor, v: Tensor) -> Tensor:
    """The rotation about unit `axis` that best turns u towards v (their projections on the plane normal to it)."""
    pu = u - (u * axis).sum(-1, keepdim=True) * axis
    pv = v - (v * axis).sum(-1, keepdim=True) * axis
    angle = torch.atan2((torch.cross(pu, pv, dim=-1) * axis).sum(-1), (pu * pv).sum(-1))
    return axis_angle_to_matrix(axis * angle[..., None])


def _mv(m: Tensor, v: Tensor) -> Tensor:
    """Matrix (...,3,3) times vector (...,3)."""
    return (m @ v[..., None]).squeeze(-1)


def hinge_axis(cos_u: Tensor, cos_v: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """The posed flexion axis of a hinge between bones u and v (...,3), and the angle between the bones.

    A hinge keeps the angles between its axis and each bone: axis . u = cos_u and axis . v = cos_v (the rest
    values, unit bones). With axis = a u + b v + c (u x v) those two equations give a and b, and c > 0 (the
    positive flexion side) makes it unit.
    """
    u, v = _unit(u), _unit(v)
    c = (u * v).sum(-1, keepdim=True)
    n = torch.cross(u, v, dim=-1)
    sin2 = (1.0 - c * c).clamp_min(1e-6)
    a = (cos_u - c * cos_v) / sin2
    b = (cos_v - c * cos_u) / sin2
    p = a * u + b * v
    gamma = (1.0 - (p * p).sum(-1, keepdim=True)).clamp_min(0.0).sqrt()
    return _unit(p + gamma * _unit(n)), torch.atan2(n.norm(dim=-1), c[..., 0])


def _fraction_power(rot: Tensor, fraction: float) -> Tensor:
    """rot^fraction: the same axis, a fraction of the angle."""
    return axis_angle_to_matrix(matrix_to_axis_angle(rot) * fraction)


def solve_ik(
    rig: LandmarkRig,
    body: Tensor,
    hands: Tensor | None = None,
    hand_valid: Tensor | None = None,
    betas: Tensor | None = None,
    relaxed_hands: Tensor | None = None,
) -> IKResult:
    """Joint rotations for every frame from 3D landmarks.

    body (T,33,3) metres; hands (T,2,21,3) metres (index 0 = left; any origin, same orientation as body);
    hand_valid (T,2) bool, hands without landmarks take `relaxed_hands` (2,15,3) axis-angle or stay flat.
    """
    dt, dev = body.dtype, body.device
    t = body.shape[0]
    _, rest_lm = rig.rest(betas)
    rest_lm = rest_lm.to(dt)
    rb = rest_lm[:33]
    eye = torch.eye(3, dtype=dt, device=dev)
    g: list[Tensor] = [eye.expand(t, 3, 3)] * NUM_JOINTS

    def vec(a: int, b: int) -> tuple[Tensor, Tensor]:
        """Rest and observed vectors from body landmark a to b."""
        return rb[b] - rb[a], body[:, b] - body[:, a]

    mid_hip_o = 0.5 * (body[:, mp.L_HIP] + body[:, mp.R_HIP])
    mid_sh_o = 0.5 * (body[:, mp.L_SHOULDER] + body[:, mp.R_SHOULDER])
    mid_hip_r = 0.5 * (rb[mp.L_HIP] + rb[mp.R_HIP])
    mid_sh_r = 0.5 * (rb[mp.L_SHOULDER] + rb[mp.R_SHOULDER])
    up_r, up_o = mid_sh_r - mid_hip_r, mid_sh_o - mid_hip_o
    hips_r, hips_o = vec(mp.R_HIP, mp.L_HIP)
    shoulders_r, shoulders_o = vec(mp.R_SHOULDER, mp.L_SHOULDER)
    g[0] = align(hips_r.expand_as(hips_o), up_r.expand_as(up_o), hips_o, up_o)
    chest = align(shoulders_r.expand_as(shoulders_o), up_r.expand_as(up_o), shoulders_o, up_o)
    spine_step = _fraction_power(g[0].transpose(-1, -2) @ chest, 1.0 / 3.0)
    for j in (J["spine1"], J["spine2"], J["spine3"]):
        g[j] = g[PARENTS[j]] @ spine_step
    ears_r, ears_o = vec(mp.R_EAR, mp.L_EAR)
    mid_ear_r = 0.5 * (rb[mp.L_EAR] + rb[mp.R_EAR])
    mid_ear_o = 0.5 * (body[:, mp.L_EAR] + body[:, mp.R_EAR])
    head = align(ears_r.expand_as(ears_o), (rb[mp.NOSE] - mid_ear_r).expand_as(ears_o), ears_o,
                 body[:, mp.NOSE] - mid_ear_o)
    neck_step = _fraction_power(g[J["spine3"]].transpose(-1, -2) @ head, 0.5)
    g[J["neck"]] = g[J["spine3"]] @ neck_step
    g[J["head"]] = g[J["neck"]] @ neck_step
    for j in (J["jaw"], J["left_eye_smplhf"], J["right_eye_smplhf"]):
        g[j] = g[J["head"]]
    for side in mp.SIDES:
        g[J[f"{side}_collar"]] = g[J["spine3"]]

    lo, hi = (math.radians(d) for d in HINGE_BLEND_DEG)

    def limb(upper: str, lower: str, a: int, b: int, c: int) -> None:
        """Upper joint with hinge-fixed twist, lower joint by swing (landmarks a -> b -> c)."""
        ju, jl = J[upper], J[lower]
        par = g[PARENTS[ju]]
        u_r, u_o = vec(a, b)
        v_r, v_o = vec(b, c)
        sw = swing(_mv(par, u_r.expand_as(u_o)), u_o) @ par
        axis_r = torch.tensor(HINGE_AXIS[lower], dtype=dt, device=dev)
        fallback = _mv(sw, axis_r.expand_as(u_o))
        observed, bend = hinge_axis(_unit(u_r) @ axis_r, _unit(v_r) @ axis_r, u_o, v_o)
        w = ((bend - lo) / (hi - lo)).clamp(0.0, 1.0)[..., None]
        axis = _unit(w * observed + (1 - w) * fallback)
        g[ju] = align(u_r.expand_as(u_o), axis_r.expand_as(u_o), u_o, axis)
        hinged = rotation_about(axis, _mv(g[ju], v_r.expand_as(v_o)), v_o) @ g[ju]
        g[jl] = swing(_mv(hinged, v_r.expand_as(v_o)), v_o) @ hinged

    for side, (sh, el, wr, hip, kn, an, heel, toe, pinky, index) in zip(
        mp.SIDES,
        ((mp.L_SHOULDER, mp.L_ELBOW, mp.L_WRIST, mp.L_HIP, mp.L_KNEE, mp.L_ANKLE, mp.L_HEEL, mp.L_TOE,
          mp.L_PINKY, mp.L_INDEX),
         (mp.R_SHOULDER, mp.R_ELBOW, mp.R_WRIST, mp.R_HIP, mp.R_KNEE, mp.R_ANKLE, mp.R_HEEL, mp.R_TOE,
          mp.R_PINKY, mp.R_INDEX)),
        strict=True,
    ):
        limb(f"{side}_shoulder", f"{side}_elbow", sh, el, wr)
        limb(f"{side}_hip", f"{side}_knee", hip, kn, an)
        foot_r, foot_o = vec(heel, toe)
        heel_r, heel_o = vec(heel, an)
        g[J[f"{side}_ankle"]] = align(foot_r.expand_as(foot_o), heel_r.expand_as(heel_o), foot_o, heel_o)
        g[J[f"{side}_foot"]] = g[J[f"{side}_ankle"]]
        knuckles_r = 0.5 * (rb[pinky] + rb[index]) - rb[wr]
        knuckles_o = 0.5 * (body[:, pinky] + body[:, index]) - body[:, wr]
        across_r, across_o = vec(pinky, index)
        g[J[f"{side}_wrist"]] = align(knuckles_r.expand_as(knuckles_o), across_r.expand_as(across_o), knuckles_o,
                                      across_o)

    local = _locals(g)
    if hands is not None:
        _hands_ik(g, local, hands, hand_valid, rest_lm, relaxed_hands)
    return IKResult(local, torch.stack(g, dim=1))


def _locals(g: list[Tensor]) -> Tensor:
    """Local rotations (T,55,3,3) from global ones."""
    out = [g[0]]
    for j in range(1, NUM_JOINTS):
        out.append(g[PARENTS[j]].transpose(-1, -2) @ g[j])
    return torch.stack(out, dim=1)


def _hands_ik(
    g: list[Tensor],
    local: Tensor,
    hands: Tensor,
    hand_valid: Tensor | None,
    rest_lm: Tensor,
    relaxed: Tensor | None,
) -> None:
    """Wrist orientation and finger chains from the 21 hand landmarks, written into g and local in place."""
    t = hands.shape[0]
    valid = torch.ones(t, 2, dtype=torch.bool, device=hands.device) if hand_valid is None else hand_valid.bool()
    for s, side in enumerate(mp.SIDES):
        rh = rest_lm[HAND_OFFSET + 21 * s: HAND_OFFSET + 21 * (s + 1)]
        h = hands[:, s]
        wj = J[f"{side}_wrist"]
        palm = align((rh[9] - rh[0]).expand_as(h[:, 0]), (rh[5] - rh[17]).expand_as(h[:, 0]),
                     h[:, 9] - h[:, 0], h[:, 5] - h[:, 17])
        keep = valid[:, s][:, None, None]
        g[wj] = torch.where(keep, palm, g[wj])
        local[:, wj] = g[PARENTS[wj]].transpose(-1, -2) @ g[wj]
        for f, finger in enumerate(mp.FINGER_ORDER):
            start = mp.MP_FINGER_START[finger]
            chain = [0, start, start + 1, start + 2, start + 3] if finger != "thumb" else [0, 1, 2, 3, 4]
            prev = g[wj]
            for k in range(3):
                a, b = chain[k + 1], chain[k + 2]
                joint = J[f"{side}_{finger}{k + 1}"]
                cur = swing(_mv(prev, (rh[b] - rh[a]).expand_as(h[:, a])), h[:, b] - h[:, a]) @ prev
                loc = prev.transpose(-1, -2) @ cur
                if relaxed is not None:
                    fallback = axis_angle_to_matrix(relaxed[s, 3 * f + k].to(hands.dtype)).expand_as(loc)
                else:
                    fallback = torch.eye(3, dtype=hands.dtype, device=hands.device).expand_as(loc)
                loc = torch.where(keep, loc, fallback)
                cur = prev @ loc
                local[:, joint] = loc
                g[joint] = cur
                prev = cur
