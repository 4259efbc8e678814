"""Robust data terms, projection and temporal smoothness terms shared by the optimisation-based methods."""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from torch import Tensor


def gmof_squared(r2: Tensor, sigma: float) -> Tensor:
    """Geman-McClure robust penalty sigma^2 r^2 / (sigma^2 + r^2) of squared residual norms r2 (any shape).

    Quadratic (r^2) for |r| << sigma, saturating at sigma^2 for outliers; rho(sigma) = sigma^2 / 2. It takes
    squares so a data term takes no square root for a norm that this would square again (solves call it every
    step and pay per operation).
    """
    s2 = sigma * sigma
    return s2 * r2 / (s2 + r2)


def normalised(weights: Tensor, eps: float = 1e-8) -> Tensor:
    """Weights divided by their sum: sum(v * normalised(w)) is the weighted mean of v, a data term that does not
    grow with the number of observed points (normalised once, each step pays one product and sum)."""
    return weights / (weights.sum() + eps)


def to_camera(points_w: Tensor, r_w2c: Tensor, t_w2c: Tensor) -> Tensor:
    """World points (T,N,3) -> camera frame with per-frame rotation (T,3,3) and translation (T,3): one fused
    batched product and add (solves call this every step and pay per operation)."""
    return torch.baddbmm(t_w2c[:, None, :], points_w, r_w2c.transpose(1, 2))


def project(points_c: Tensor, k: Tensor, min_depth: float = 1e-3) -> Tensor:
    """Pinhole projection (OpenCV) of camera-frame points (...,3) with intrinsics K (3,3) -> pixels (...,2)."""
    xy = points_c[..., :2] / points_c[..., 2:3].clamp_min(min_depth)
    return xy @ k[:2, :2].T + k[:2, 2]


def image_residual_squared(points_c: Tensor, kp2d: Tensor, k: Tensor) -> Tensor:
    """Squared per-point 2D error (...,N) of camera-frame points, converted to metres at the point's depth:
    (|pixel error| / focal * depth)^2.

    Expressing image errors in metres makes one robust scale and one weight work at any resolution and distance.
    """
    err_px = project(points_c, k) - kp2d
    focal = 0.5 * (k[0, 0] + k[1, 1])
    return (err_px * err_px).sum(-1) * (points_c[..., 2].detach().clamp_min(0.1) / focal).square()


@functools.lru_cache(maxsize=64)
def _difference_operator(t: int, order: int, scale: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(T-order, T) sparse matrix of `scale` times the forward differences of `order` (binomial stencil)."""
    stencil = np.array([(-1) ** (order - i) * math.comb(order, i) for i in range(order + 1)], np.float64) * scale
    rows = np.repeat(np.arange(t - order), order + 1)
    cols = rows + np.tile(np.arange(order + 1), t - order)
    index = torch.as_tensor(np.stack([rows, cols]), device=device)
    values = torch.as_tensor(np.tile(stencil, t - order), dtype=dtype, device=device)
    return torch.sparse_coo_tensor(index, values, (t - order, t), check_invariants=True).coalesce()


def finite_difference(x: Tensor, order: int, scale: float = 1.0) -> Tensor:
    """Forward finite differences of `order` along the first (time) axis, times `scale`: one sparse product,
    where slices and subtractions would cost a solve several operations a step forwards and backwards."""
    t = x.shape[0]
    if t <= order:
        return x[:0] * scale
    op = _difference_operator(t, order, float(scale), x.device, x.dtype)
    return torch.sparse.mm(op, x.reshape(t, -1)).view(t - order, *x.shape[1:])


def position_steps(x: Tensor, order: int = 2, fps: float = 30.0) -> Tensor:
    """Squared velocity (order 1) or acceleration (order 2) (T-order,...) of positions (T,...,3), in 30 fps units."""
    d = finite_difference(x, order, (fps / 30.0) ** order)
    return (d * d).sum(-1)


def mean_or_zero(x: Tensor) -> Tensor:
    """The mean of x, 0 (still differentiable) when x is empty (a clip too short for a temporal term)."""
    return x.mean() if x.numel() else x.sum()


def rotation_smoothness(rot: Tensor, order: int = 1, fps: float = 30.0) -> Tensor:
    """Mean squared Frobenius velocity (order 1) or acceleration (order 2) of rotation matrices (T,...,3,3)."""
    d = finite_difference(rot, order, (fps / 30.0) ** order)
    return mean_or_zero((d * d).sum((-1, -2)))


def shape_prior(betas: Tensor) -> Tensor:
    """Squared norm of the shape coefficients (unit-variance shape space)."""
    return (betas * betas).sum()


def rotation_distance(r0: Tensor, r1: Tensor) -> Tensor:
    """Squared Frobenius distance between rotation matrices (...,3,3) -> (...): 8 sin^2(angle/2)."""
    d = r0 - r1
    return (d * d).sum((-1, -2))
