"""Bundle adjustment of keyframe poses and points with scipy least_squares, a sparse Jacobian and a robust loss."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import lil_matrix
from scipy.spatial.transform import Rotation

FOCAL_RANGE = (0.6, 1.7)  # a refined focal length stays within these factors of the initial guess
FOCAL_PRIOR_LOG_SIGMA = 0.3  # weak prior on log(f / f0), so that motion that cannot reveal f leaves it alone


class _Stopped(Exception):
    """Raised inside the solver's thread when the caller stopped waiting (cancellation)."""


@dataclass
class BAProblem:
    """Cameras as (n_c,6) [rotvec, t] world->camera, points (n_p,3), and pixel observations linking them."""

    cams: np.ndarray
    points: np.ndarray
    cam_idx: np.ndarray  # (n_o,) int
    pt_idx: np.ndarray  # (n_o,) int
    uv: np.ndarray  # (n_o,2) pixels
    fixed: np.ndarray  # (n_c,) bool: cameras held still (gauge)
    rotation_only: bool = False  # translations pinned at zero, points are directions of unit length
    scale_pair: tuple[int, int, float] | None = None  # keep |C_i - C_j| at this distance (scale gauge)
    refine_focal: bool = False  # also solve one focal-length factor for every camera
    focal_scale: float = 1.0  # solved focal length / the K passed in


def _project(cams: np.ndarray, pts: np.ndarray, prob: BAProblem, K: np.ndarray, fs: float) -> np.ndarray:
    Xc = Rotation.from_rotvec(cams[prob.cam_idx, :3]).apply(pts[prob.pt_idx]) + cams[prob.cam_idx, 3:]
    z = np.maximum(Xc[:, 2], 1e-6)
    u = fs * K[0, 0] * Xc[:, 0] / z + K[0, 2]
    v = fs * K[1, 1] * Xc[:, 1] / z + K[1, 2]
    return np.column_stack([u, v])


def reprojection_errors(prob: BAProblem, K: np.ndarray) -> np.ndarray:
    """(n_o,) pixel reprojection error of every observation at the problem's current values."""
    return np.linalg.norm(_project(prob.cams, prob.points, prob, K, prob.focal_scale) - prob.uv, axis=1)


def _sparsity(prob: BAProblem, col_of_cam: np.ndarray, ncp: int, n_cam_cols: int, n_res: int, n_x: int):
    """Which parameters each residual depends on (observations, scale gauge, unit directions, focal prior)."""
    n_o, n_p = len(prob.cam_idx), len(prob.points)
    A = lil_matrix((n_res, n_x), dtype=np.int8)
    rows = np.arange(n_o)
    cc = col_of_cam[prob.cam_idx]
    has = cc >= 0
    for k in range(ncp):
        A[2 * rows[has], cc[has] + k] = 1
        A[2 * rows[has] + 1, cc[has] + k] = 1
    for k in range(3):
        A[2 * rows, n_cam_cols + 3 * prob.pt_idx + k] = 1
        A[2 * rows + 1, n_cam_cols + 3 * prob.pt_idx + k] = 1
    r = 2 * n_o
    if prob.scale_pair is not None and not prob.rotation_only:
        for c in prob.scale_pair[:2]:
            if col_of_cam[c] >= 0:
                A[r, col_of_cam[c] : col_of_cam[c] + ncp] = 1
        r += 1
    if prob.rotation_only:
        for k in range(3):
            A[r + np.arange(n_p), n_cam_cols + 3 * np.arange(n_p) + k] = 1
        r += n_p
    if prob.refine_focal:
        A[: 2 * n_o, n_x - 1] = 1
        A[r, n_x - 1] = 1
    return A.tocsr()


def bundle_adjust(
    prob: BAProblem,
    K: np.ndarray,
    *,
    f_scale: float,
    max_nfev: int,
    tick: Callable[[], None] | None = None,
) -> BAProblem:
    """Refine cameras, points (and optionally the focal length) by minimising soft-L1 reprojection error.

    The solve runs in a worker thread so that the caller's thread keeps calling `tick` (progress, cancel).
    """
    n_c, n_p = len(prob.cams), len(prob.points)
    free = np.flatnonzero(~prob.fixed)
    ncp = 3 if prob.rotation_only else 6
    col_of_cam = -np.ones(n_c, int)
    col_of_cam[free] = np.arange(len(free)) * ncp
    n_cam_cols = len(free) * ncp
    n_o = len(prob.cam_idx)
    pair = prob.scale_pair if not prob.rotation_only else None
    n_x = n_cam_cols + 3 * n_p + (1 if prob.refine_focal else 0)
    n_res = 2 * n_o + (pair is not None) + (n_p if prob.rotation_only else 0) + prob.refine_focal

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        cams = prob.cams.copy()
        cams[free, :ncp] = x[:n_cam_cols].reshape(-1, ncp)
        pts = x[n_cam_cols : n_cam_cols + 3 * n_p].reshape(-1, 3)
        return cams, pts, float(np.exp(x[-1])) if prob.refine_focal else prob.focal_scale

    stop = threading.Event()

    def fun(x: np.ndarray) -> np.ndarray:
        if stop.is_set():
            raise _Stopped
        cams, pts, fs = unpack(x)
        res = [(_project(cams, pts, prob, K, fs) - prob.uv).ravel()]
        if pair is not None:
            i, j, d = pair
            ci = -Rotation.from_rotvec(cams[i, :3]).inv().apply(cams[i, 3:])
            cj = -Rotation.from_rotvec(cams[j, :3]).inv().apply(cams[j, 3:])
            res.append(np.array([100.0 * (np.linalg.norm(ci - cj) - d)]))
        if prob.rotation_only:
            res.append(100.0 * (np.linalg.norm(pts, axis=1) - 1.0))
        if prob.refine_focal:
            res.append(np.array([f_scale * x[-1] / FOCAL_PRIOR_LOG_SIGMA]))
        return np.concatenate(res)

    x0 = np.concatenate([prob.cams[free, :ncp].ravel(), prob.points.ravel()])
    lower = np.full(n_x, -np.inf)
    upper = np.full(n_x, np.inf)
    if prob.refine_focal:
        x0 = np.append(x0, np.log(prob.focal_scale))
        lower[-1], upper[-1] = np.log(FOCAL_RANGE[0]), np.log(FOCAL_RANGE[1])
    box: list[object] = []

    def work() -> None:
        try:
            box.append(
                least_squares(
                    fun,
                    x0,
                    jac_sparsity=_sparsity(prob, col_of_cam, ncp, n_cam_cols, n_res, n_x),
                    bounds=(lower, upper) if prob.refine_focal else (-np.inf, np.inf),
                    loss="soft_l1",
                    f_scale=f_scale,
                    x_scale="jac",
                    method="trf",
                    tr_solver="lsmr",
                    max_nfev=max_nfev,
                    xtol=1e-10,
                    ftol=1e-6,
                )
            )
        except BaseException as exc:  # handed back to the calling thread below
            box.append(exc)

    worker = threading.Thread(target=work, name="vidrig-bundle-adjust", daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.1)
            if tick is not None:
                tick()
    except BaseException:
        stop.set()
        worker.join()
        raise
    if isinstance(box[0], BaseException):
        raise box[0]
    cams, pts, fs = unpack(box[0].x)  # type: ignore[attr-defined]
    return replace(prob, cams=cams, points=pts, focal_scale=fs)
