"""Rotation conversions in torch (axis-angle, matrices, 6D, quaternions) with arbitrary leading batch dims."""

from __future__ import annotations

import torch
from torch import Tensor

_EPS = 1e-8


def axis_angle_to_matrix(aa: Tensor) -> Tensor:
    """Rodrigues' formula as cos(t) I + sin(t)/t [v]x + (1 - cos(t))/t^2 v v^T, written out entry by entry (fits
    call it on whole clips every iteration; a batched 3x3 product costs more than the 9 entries); stable at zero
    angle (Taylor terms below 1e-4 rad)."""
    theta2 = (aa * aa).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2.clamp_min(_EPS * _EPS))
    small = theta2 < 1e-8
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / theta2.clamp_min(_EPS * _EPS))
    c = (1.0 - b * theta2)[..., 0]
    x, y, z = aa.unbind(-1)
    ax, ay, az = (a * aa).unbind(-1)
    bx, by, bz = (b * aa).unbind(-1)
    bxy, bxz, byz = bx * y, bx * z, by * z
    return torch.stack([c + bx * x, bxy - az, bxz + ay,
                        bxy + az, c + by * y, byz - ax,
                        bxz - ay, byz + ax, c + bz * z], dim=-1).reshape(*aa.shape[:-1], 3, 3)


def matrix_to_quaternion(m: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) as (w, x, y, z) with w >= 0."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    q_abs = torch.sqrt(
        torch.stack(
            [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1
        ).clamp_min(0.0)
    )
    m21_m12 = m[..., 2, 1] - m[..., 1, 2]
    m02_m20 = m[..., 0, 2] - m[..., 2, 0]
    m10_m01 = m[..., 1, 0] - m[..., 0, 1]
    m10p01 = m[..., 1, 0] + m[..., 0, 1]
    m02p20 = m[..., 0, 2] + m[..., 2, 0]
    m21p12 = m[..., 2, 1] + m[..., 1, 2]
    cands = torch.stack(
        [
            torch.stack([q_abs[..., 0] ** 2, m21_m12, m02_m20, m10_m01], -1),
            torch.stack([m21_m12, q_abs[..., 1] ** 2, m10p01, m02p20], -1),
            torch.stack([m02_m20, m10p01, q_abs[..., 2] ** 2, m21p12], -1),
            torch.stack([m10_m01, m02p20, m21p12, q_abs[..., 3] ** 2], -1),
        ],
        dim=-2,
    ) / (2.0 * q_abs[..., None].clamp_min(0.1))
    best = q_abs.argmax(-1)
    q = torch.gather(cands, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_matrix(q: Tensor) -> Tensor:
    """Quaternions (..., 4) as (w, x, y, z), normalised first -> rotation matrices (..., 3, 3)."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(_EPS)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*q.shape[:-1], 3, 3)


def quaternion_to_axis_angle(q: Tensor) -> Tensor:
    """Quaternions (..., 4) (w, x, y, z) -> axis-angle (..., 3) with angle in [0, pi]."""
    q = torch.where(q[..., :1] < 0, -q, q)
    xyz = q[..., 1:]
    s = xyz.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(s, q[..., :1])
    small = s < 1e-6
    scale = torch.where(small, 2.0 / q[..., :1].clamp_min(_EPS), angle / s.clamp_min(_EPS))
    return xyz * scale


def matrix_to_axis_angle(m: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) -> axis-angle (..., 3) via quaternions (robust near pi)."""
    return quaternion_to_axis_angle(matrix_to_quaternion(m))


def axis_angle_to_quaternion(aa: Tensor) -> Tensor:
    """Axis-angle (..., 3) -> unit quaternions (..., 4) as (w, x, y, z)."""
    theta = aa.norm(dim=-1, keepdim=True)
    half = 0.5 * theta
    small = theta < 1e-6
    k = torch.where(small, 0.5 - theta * theta / 48.0, torch.sin(half) / theta.clamp_min(_EPS))
    return torch.cat([torch.cos(half), aa * k], dim=-1)


def matrix_to_rot6d(m: Tensor) -> Tensor:
    """Rotation matrices (..., 3, 3) -> the continuous 6D representation: the first two columns."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)


def rot6d_to_matrix(d6: Tensor) -> Tensor:
    """6D (..., 6) -> rotation matrices by Gram-Schmidt on the two columns (Zhou et al. 2019)."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def quat_slerp(q0: Tensor, q1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation of quaternions (..., 4) at fractions t (...), shortest path."""
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    dot = dot.abs().clamp(max=1.0)
    t = t[..., None]
    omega = torch.acos(dot)
    so = torch.sin(omega)
    near = so < 1e-6
    w0 = torch.where(near, 1.0 - t, torch.sin((1.0 - t) * omega) / so.clamp_min(_EPS))
    w1 = torch.where(near, t, torch.sin(t * omega) / so.clamp_min(_EPS))
    out = w0 * q0 + w1 * q1
    return out / out.norm(dim=-1, keepdim=True)


def geodesic_angle(m0: Tensor, m1: Tensor) -> Tensor:
    """Angle (radians) of the relative rotation between matrices (..., 3, 3)."""
    tr = (m0.transpose(-1, -2) @ m1).diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.acos(((tr - 1.0) * 0.5).clamp(-1.0 + 1e-7, 1.0 - 1e-7))
