"""Robust data terms, projection and temporal smoothness terms shared by the optimisation-based methods."""

from __future__ import annotations

import torch
from torch import Tensor


def gmof(residual: Tensor, sigma: float) -> Tensor:
    """Geman-McClure robust penalty sigma^2 r^2 / (sigma^2 + r^2) of residual norms (any shape).

    Quadratic (r^2) for |r| << sigma, saturating at sigma^2 for outliers; rho(sigma) = sigma^2 / 2.
    """
    r2 = residual * residual
    s2 = sigma * sigma
    return s2 * r2 / (s2 + r2)


def weighted_mean(values: Tensor, weights: Tensor, eps: float = 1e-8) -> Tensor:
    """Sum(w * v) / sum(w): a data term that does not grow with the number of observed points."""
    return (values * weights).sum() / (weights.sum() + eps)


def to_camera(points_w: Tensor, r_w2c: Tensor, t_w2c: Tensor) -> Tensor:
    """World points (T,N,3) -> camera frame with per-frame rotation (T,3,3) and translation (T,3)."""
    return torch.einsum("tij,tnj->tni", r_w2c, points_w) + t_w2c[:, None, :]


def project(points_c: Tensor, k: Tensor, min_depth: float = 1e-3) -> Tensor:
    """Pinhole projection (OpenCV) of camera-frame points (...,3) with intrinsics K (3,3) -> pixels (...,2)."""
    z = points_c[..., 2:3].clamp_min(min_depth)
    xy = points_c[..., :2] / z
    return torch.stack([k[0, 0] * xy[..., 0] + k[0, 1] * xy[..., 1] + k[0, 2], k[1, 1] * xy[..., 1] + k[1, 2]], -1)


def image_residual(points_c: Tensor, kp2d: Tensor, k: Tensor) -> Tensor:
    """Per-point 2D error (...,N) of camera-frame points, converted to metres at the point's depth:
    |pixel error| / focal * depth.

    Expressing image errors in metres makes one robust scale and one weight work at any resolution and distance.
    """
    err_px = (project(points_c, k) - kp2d).norm(dim=-1)
    focal = 0.5 * (k[0, 0] + k[1, 1])
    return err_px / focal * points_c[..., 2].detach().clamp_min(0.1)


def finite_difference(x: Tensor, order: int) -> Tensor:
    """Forward finite differences of `order` along the first (time) axis."""
    for _ in range(order):
        x = x[1:] - x[:-1]
    return x


def position_smoothness(x: Tensor, order: int = 2, fps: float = 30.0) -> Tensor:
    """Mean squared velocity (order 1) or acceleration (order 2) of positions (T,...,3), scaled to 30 fps units."""
    if x.shape[0] <= order:
        return x.sum() * 0.0
    d = finite_difference(x, order) * (fps / 30.0) ** order
    return (d * d).sum(-1).mean()


def rotation_smoothness(rot: Tensor, order: int = 1, fps: float = 30.0) -> Tensor:
    """Mean squared Frobenius velocity (order 1) or acceleration (order 2) of rotation matrices (T,...,3,3)."""
    if rot.shape[0] <= order:
        return rot.sum() * 0.0
    d = finite_difference(rot, order) * (fps / 30.0) ** order
    return (d * d).sum((-1, -2)).mean()


def shape_prior(betas: Tensor) -> Tensor:
    """Squared norm of the shape coefficients (unit-variance shape space)."""
    return (betas * betas).sum()


def rotation_distance(r0: Tensor, r1: Tensor) -> Tensor:
    """Squared Frobenius distance between rotation matrices (...,3,3) -> (...): 8 sin^2(angle/2)."""
    d = r0 - r1
    return (d * d).sum((-1, -2))
