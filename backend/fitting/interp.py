"""Filling frames without observations by interpolating between the nearest observed ones (hold at the ends)."""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import Tensor

from backend.geometry.rotations import (
    matrix_to_quaternion,
    quat_slerp,
    quaternion_to_matrix,
)


def _brackets(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every frame, the previous and next valid frame and the fraction between them."""
    t = len(valid)
    idx = np.arange(t)
    vi = idx[valid]
    nxt = np.searchsorted(vi, idx).clip(0, len(vi) - 1)
    prv = (np.searchsorted(vi, idx, side="right") - 1).clip(0, len(vi) - 1)
    a, b = vi[prv], vi[nxt]
    span = np.maximum(b - a, 1)
    frac = np.where(b > a, (idx - a) / span, 0.0)
    return a, b, np.clip(frac, 0.0, 1.0)


def fill_vectors(x: Tensor, valid: np.ndarray) -> Tensor:
    """Linearly interpolate x (T,...) over frames where valid is False; unchanged when all or none are valid."""
    valid = np.asarray(valid, bool)
    if valid.all() or not valid.any():
        return x
    a, b, f = _brackets(valid)
    fr = torch.as_tensor(f, dtype=x.dtype, device=x.device).reshape(-1, *([1] * (x.dim() - 1)))
    return x[a] * (1 - fr) + x[b] * fr


def fill_rotations(rot: Tensor, valid: np.ndarray) -> Tensor:
    """Slerp rotation matrices rot (T,...,3,3) over frames where valid is False."""
    valid = np.asarray(valid, bool)
    if valid.all() or not valid.any():
        return rot
    a, b, f = _brackets(valid)
    q = matrix_to_quaternion(rot)
    fr = torch.as_tensor(f, dtype=rot.dtype, device=rot.device).reshape(-1, *([1] * (q.dim() - 2)))
    filled = quaternion_to_matrix(quat_slerp(q[a], q[b], fr.expand(q.shape[:-1])))
    keep = torch.as_tensor(valid, device=rot.device).reshape(-1, *([1] * (rot.dim() - 1)))
    return torch.where(keep, rot, filled)


@functools.lru_cache(maxsize=64)
def _smoothing_operator(t: int, sigma: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """(T,T) sparse Gaussian smoothing matrix (sigma in frames, edges held): row i weights frames i-3sigma..i+3sigma,
    those beyond either end counting as the end frame."""
    radius = int(3 * sigma + 0.5)
    offs = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offs / sigma) ** 2)
    weights /= weights.sum()
    rows = np.repeat(np.arange(t), len(offs))
    cols = np.clip(rows + np.tile(offs, t), 0, t - 1)
    index = torch.as_tensor(np.stack([rows, cols]), device=device)
    values = torch.as_tensor(np.tile(weights, t), dtype=dtype, device=device)
    return torch.sparse_coo_tensor(index, values, (t, t), check_invariants=True).coalesce()


def smooth_vectors(x: Tensor, sigma: float) -> Tensor:
    """Gaussian smoothing of x (T,...) along time (edges held); sigma in frames, 0 returns x.

    One sparse banded matrix product: a single operation forwards and backwards, which a solve calling this every
    step pays far less for than a sum of shifted copies (2-3x less on CPU at 60-3000 frames).
    """
    t = x.shape[0]
    if sigma <= 0 or t < 2:
        return x
    op = _smoothing_operator(t, float(sigma), x.device, x.dtype)
    return torch.sparse.mm(op, x.reshape(t, -1)).reshape(x.shape)


def smooth_rotations(rot: Tensor, sigma: float) -> Tensor:
    """Gaussian smoothing of rotation matrices (T,...,3,3) along time via sign-aligned quaternions."""
    if sigma <= 0 or rot.shape[0] < 2:
        return rot
    q = matrix_to_quaternion(rot)
    signs = torch.ones(q.shape[:-1], dtype=q.dtype, device=q.device)
    dots = (q[1:] * q[:-1]).sum(-1)
    signs[1:] = torch.cumprod(torch.where(dots < 0, -1.0, 1.0).to(q.dtype), dim=0)
    q = smooth_vectors(q * signs[..., None], sigma)
    return quaternion_to_matrix(q)
