"""Putting a root-relative metric body into the camera and the world: depth from 2D vs 3D size, camera scale."""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from torch import Tensor

GROUND_SMOOTH_DISAGREE = 10.0  # ground-plane and smoothness scales further apart than this: trust the smaller


def camera_translation(points_rel: Tensor, kp2d: Tensor, weights: Tensor, k: Tensor, min_depth: float = 0.3) -> Tensor:
    """(T,3) camera-frame translation per frame placing root-relative points so they project onto kp2d.

    points_rel (T,N,3) metres in camera orientation, kp2d (T,N,2) pixels, weights (T,N). For each point
    (x - cx)/fx * (Z + tz) = X + tx (and the same in y): linear in t, solved by weighted least squares. The
    metric size of the 3D points against their pixel size fixes the depth. Frames with too little evidence get NaN.
    """
    xn = (kp2d[..., 0] - k[0, 2]) / k[0, 0]
    yn = (kp2d[..., 1] - k[1, 2]) / k[1, 1]
    one, zero = torch.ones_like(xn), torch.zeros_like(xn)
    rows_x = torch.stack([one, zero, -xn], -1)
    rows_y = torch.stack([zero, one, -yn], -1)
    a = torch.cat([rows_x, rows_y], 1)  # (T,2N,3)
    b = torch.cat([xn * points_rel[..., 2] - points_rel[..., 0], yn * points_rel[..., 2] - points_rel[..., 1]], 1)
    w = torch.cat([weights, weights], 1)
    ata = torch.einsum("tni,tn,tnj->tij", a, w, a) + 1e-9 * torch.eye(3, dtype=a.dtype, device=a.device)
    atb = torch.einsum("tni,tn,tn->ti", a, w, b)
    t = torch.linalg.solve(ata, atb)
    enough = (weights > 0).sum(1) >= 4
    t = torch.where(enough[:, None], t, torch.full_like(t, float("nan")))
    t[..., 2] = torch.where(torch.isnan(t[..., 2]), t[..., 2], t[..., 2].clamp_min(min_depth))
    return t


def camera_scale(
    pelvis_c: np.ndarray,
    feet_c: np.ndarray,
    r_w2c: np.ndarray,
    t_w2c: np.ndarray,
    ground_known: bool,
    valid: np.ndarray,
) -> float:
    """Metres per camera-solve unit, from the body's metric placement in the camera frames.

    With a ground plane (y = 0 in the camera solve's world), the camera's height above it in solve units is set
    against the metric height of the camera above the body's lowest foot point. Otherwise the scale that makes the
    body's world trajectory smoothest (least squared acceleration of the pelvis, a closed form) is used. When both
    exist and disagree by more than GROUND_SMOOTH_DISAGREE times, the smaller wins: a camera path solved at a wrong
    scale in a stretch would otherwise fling the body tens of metres. Returns 1 when neither is well determined (a
    static or rotating camera, where the scale does not matter).
    pelvis_c (T,3) and feet_c (T,F,3) metres in the camera frames; r_w2c (T,3,3), t_w2c (T,3) from the solve.
    """
    valid = np.asarray(valid, bool)
    if valid.sum() < 3:
        return 1.0
    rt = np.transpose(r_w2c, (0, 2, 1))
    smooth = _smoothest_scale(pelvis_c, rt, t_w2c, valid)
    if ground_known:
        centres = -np.einsum("tij,tj->ti", rt, t_w2c)
        height_units = centres[:, 1]
        feet_w_rel = np.einsum("tij,tfj->tfi", rt, feet_c)  # metric offsets from the camera, world orientation
        height_m = -feet_w_rel[..., 1].min(axis=1)
        ok = valid & (height_units > 1e-3) & (height_m > 0.2)
        if ok.sum() >= 3:
            ground = float(np.median(height_m[ok] / height_units[ok]))
            if smooth is not None and ground > GROUND_SMOOTH_DISAGREE * smooth:
                return smooth
            return ground
    return 1.0 if smooth is None else smooth


def _smoothest_scale(pelvis_c: np.ndarray, rt: np.ndarray, t_w2c: np.ndarray, valid: np.ndarray) -> float | None:
    """The scale giving the pelvis the least squared world acceleration (closed form); None when the camera does
    not move enough to tell or the answer is implausible."""
    a = np.einsum("tij,tj->ti", rt, pelvis_c)[valid]
    b = np.einsum("tij,tj->ti", rt, t_w2c)[valid]
    a = gaussian_filter1d(a, 2.0, axis=0, mode="nearest")
    b = gaussian_filter1d(b, 2.0, axis=0, mode="nearest")
    da = a[2:] - 2 * a[1:-1] + a[:-2]
    db = b[2:] - 2 * b[1:-1] + b[:-2]
    energy = float((db * db).sum())
    travel = float(np.linalg.norm(b[-1] - b[0]) + np.abs(np.diff(b, axis=0)).sum())
    if energy < 1e-10 or travel < 1e-6:
        return None
    s = float((da * db).sum() / energy)
    return s if 0.02 <= s <= 50.0 else None
