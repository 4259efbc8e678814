"""Bundle adjustment of keyframe poses and points: Levenberg-Marquardt on the Schur complement of the points,
with analytic Jacobians and a robust (soft-L1) loss.

The points' normal equations are block-diagonal (3x3 per point), so each step eliminates them and solves only
the small dense system of the cameras (and the focal length); a step costs a few vectorised passes over the
observations and two sparse products instead of an iterative sparse solve. The camera-point coupling is kept
sparse, so memory grows with the observations, not with how many keyframes see each point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse
from scipy.spatial.transform import Rotation

from backend.camera.geometry import center

FOCAL_RANGE = (0.6, 1.7)  # a refined focal length stays within these factors of the initial guess
FOCAL_PRIOR_LOG_SIGMA = 0.3  # weak prior on log(f / f0), so that motion that cannot reveal f leaves it alone
PAIR_WEIGHT = 100.0  # residual scale of the scale gauge |C_i - C_j| = d
NORM_WEIGHT = 100.0  # residual scale of the unit length of a rotation-only solve's point directions
FTOL = 1e-6  # an accepted step that lowers the cost by less than this share ends the solve
MIN_DEPTH_SHARE = 1e-3  # observations whose depth is under this share of the median leave the linear system
LAMBDA0 = 1e-3  # initial Marquardt damping (relative to the diagonal of the normal equations)


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


def _skew(v: np.ndarray) -> np.ndarray:
    """(n,3,3) cross-product matrices of (n,3) vectors."""
    out = np.zeros((*v.shape[:-1], 3, 3))
    out[..., 0, 1], out[..., 0, 2], out[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    out[..., 1, 0], out[..., 2, 0], out[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    return out


def left_jacobian(rotvec: np.ndarray) -> np.ndarray:
    """(n,3,3) left Jacobian of SO(3): R(w + d) = Exp(J_l(w) d) R(w) to first order in d."""
    theta = np.linalg.norm(rotvec, axis=-1)
    small = theta < 1e-6
    th = np.where(small, 1.0, theta)
    a = np.where(small, 0.5, (1.0 - np.cos(th)) / th**2)
    b = np.where(small, 1.0 / 6.0, (th - np.sin(th)) / th**3)
    W = _skew(rotvec)
    return np.eye(3) + a[:, None, None] * W + b[:, None, None] * (W @ W)


def _soft_l1_cost(r: np.ndarray, f_scale: float) -> float:
    """scipy's soft-L1 cost 0.5 * sum f^2 * 2 (sqrt(1 + (r/f)^2) - 1) of residuals r."""
    return float(np.sum(f_scale**2 * (np.sqrt(1.0 + (r / f_scale) ** 2) - 1.0)))


def _irls_weights(r: np.ndarray, f_scale: float) -> np.ndarray:
    """Soft-L1 weights of residuals r: the loss's derivative rho'((r/f)^2)."""
    return 1.0 / np.sqrt(1.0 + (r / f_scale) ** 2)


class _Solver:
    """One bundle adjustment: state (cameras, points, log focal factor), residuals, Jacobians and LM steps."""

    def __init__(self, prob: BAProblem, K: np.ndarray, f_scale: float):
        self.prob, self.K, self.f = prob, K, f_scale
        self.ncp = 3 if prob.rotation_only else 6
        self.nf = 1 if prob.refine_focal else 0
        n_c, n_o = len(prob.cams), len(prob.cam_idx)
        self.nc_all = n_c * self.ncp + self.nf
        self.cols = (prob.cam_idx[:, None] * self.ncp + np.arange(self.ncp)[None]).astype(np.int64)
        if self.nf:
            self.cols = np.concatenate([self.cols, np.full((n_o, 1), self.nc_all - 1)], axis=1)
        free_cams = np.flatnonzero(~prob.fixed)
        free = [(free_cams[:, None] * self.ncp + np.arange(self.ncp)[None]).ravel()]
        if self.nf:
            free.append(np.array([self.nc_all - 1]))
        self.free = np.concatenate(free).astype(np.int64)
        self.pair = prob.scale_pair if not prob.rotation_only else None
        self.self_flat = (self.cols[:, :, None] * self.nc_all + self.cols[:, None, :]).ravel()
        # where each observation's camera-point coupling (q,3) goes in the sparse (nc_all, 3 n_p) matrix W
        q = self.cols.shape[1]
        self.w_rows = np.broadcast_to(self.cols[:, :, None], (n_o, q, 3)).ravel()
        self.w_cols = np.broadcast_to((3 * prob.pt_idx[:, None] + np.arange(3))[:, None, :], (n_o, q, 3)).ravel()

    # ---- state <-> residuals ----------------------------------------------------------------------
    def residuals(self, cams: np.ndarray, pts: np.ndarray, logf: float) -> tuple[np.ndarray, np.ndarray]:
        """Observation residuals (n_o,2) and the extra residuals (gauge, unit directions, focal prior)."""
        p = self.prob
        obs = _project(cams, pts, p, self.K, float(np.exp(logf))) - p.uv
        extra = []
        if self.pair is not None:
            extra.append(np.array([self._pair_residual(cams)]))
        if p.rotation_only:
            extra.append(NORM_WEIGHT * (np.linalg.norm(pts, axis=1) - 1.0))
        if self.nf:
            extra.append(np.array([self.f * logf / FOCAL_PRIOR_LOG_SIGMA]))
        return obs, np.concatenate(extra) if extra else np.zeros(0)

    def cost(self, cams: np.ndarray, pts: np.ndarray, logf: float, active: np.ndarray) -> float:
        """The robust soft-L1 cost over the `active` observations and the extra residuals."""
        obs, extra = self.residuals(cams, pts, logf)
        return _soft_l1_cost(obs[active], self.f) + _soft_l1_cost(extra, self.f)

    def in_front(self, cams: np.ndarray, pts: np.ndarray) -> np.ndarray:
        """(n_o,) observations whose point lies in front of its camera (depth over MIN_DEPTH_SHARE of the median).

        A point behind or at the camera has a clamped projection and no useful derivative: such observations
        leave the cost and the linear system for the whole solve (the caller drops points that stay off).
        Those in front stay in, so a step that pushes a point behind its camera pays for it."""
        p = self.prob
        z = np.einsum("oj,oj->o", Rotation.from_rotvec(cams[p.cam_idx, :3]).as_matrix()[:, 2], pts[p.pt_idx])
        z = z + cams[p.cam_idx, 5]
        return z > MIN_DEPTH_SHARE * float(np.median(np.abs(z)))

    def _pair_residual(self, cams: np.ndarray) -> float:
        i, j, d = self.pair  # type: ignore[misc]
        R = Rotation.from_rotvec(cams[[i, j], :3]).as_matrix()
        return PAIR_WEIGHT * (float(np.linalg.norm(center(R[0], cams[i, 3:]) - center(R[1], cams[j, 3:]))) - d)

    def _pair_gradient(self, cams: np.ndarray) -> np.ndarray:
        """(nc_all,) derivative of the gauge residual: a centre C = -R^T t moves by -R^T [t]x J_l dw and -R^T dt."""
        i, j, _ = self.pair  # type: ignore[misc]
        R = Rotation.from_rotvec(cams[[i, j], :3]).as_matrix()
        gap = center(R[0], cams[i, 3:]) - center(R[1], cams[j, 3:])
        u = gap / max(float(np.linalg.norm(gap)), 1e-12)
        g = np.zeros(self.nc_all)
        for k, (c, sign) in enumerate(((i, 1.0), (j, -1.0))):
            d_rot = -R[k].T @ _skew(cams[c, 3:][None])[0] @ left_jacobian(cams[c, :3][None])[0]
            g[c * 6 : c * 6 + 3] += sign * PAIR_WEIGHT * (u @ d_rot)
            g[c * 6 + 3 : c * 6 + 6] += sign * PAIR_WEIGHT * (u @ -R[k].T)
        return g

    # ---- normal equations -------------------------------------------------------------------------
    def normal_equations(self, cams: np.ndarray, pts: np.ndarray, logf: float, active: np.ndarray):
        """Weighted normal equations split for the Schur complement: camera block U (dense), point blocks V
        (n_p,3,3), the camera-point coupling W (sparse, nc_all x 3 n_p) and the gradients g_c, g_p."""
        p, K = self.prob, self.K
        fs = float(np.exp(logf))
        n_p = len(pts)
        Rc = Rotation.from_rotvec(cams[:, :3]).as_matrix()
        R = Rc[p.cam_idx]
        Rp = (R @ pts[p.pt_idx][:, :, None])[..., 0]
        Xc = Rp + cams[p.cam_idx, 3:]
        z = np.maximum(Xc[:, 2], 1e-6)
        fx, fy = fs * K[0, 0], fs * K[1, 1]
        r = np.column_stack([fx * Xc[:, 0] / z + K[0, 2], fy * Xc[:, 1] / z + K[1, 2]]) - p.uv
        P = np.zeros((len(z), 2, 3))
        P[:, 0, 0], P[:, 0, 2] = fx / z, -fx * Xc[:, 0] / z**2
        P[:, 1, 1], P[:, 1, 2] = fy / z, -fy * Xc[:, 1] / z**2
        d_rot = -_skew(Rp) @ left_jacobian(cams[:, :3])[p.cam_idx]
        parts = [P @ d_rot] if p.rotation_only else [P @ d_rot, P]
        if self.nf:
            parts.append(np.stack([fx * Xc[:, 0] / z, fy * Xc[:, 1] / z], axis=1)[:, :, None])  # d/d log f
        E = np.concatenate(parts, axis=2)  # (n_o,2,q) camera-side Jacobian
        Jp = P @ R  # (n_o,2,3)
        w = _irls_weights(r, self.f) * active[:, None]
        EwT = (E * w[:, :, None]).transpose(0, 2, 1)  # (n_o,q,2)
        JpwT = (Jp * w[:, :, None]).transpose(0, 2, 1)  # (n_o,3,2)
        N = self.nc_all
        U = np.bincount(self.self_flat, (EwT @ E).ravel(), N * N).reshape(N, N)
        g_c = np.bincount(self.cols.ravel(), (EwT @ r[:, :, None]).ravel(), N)
        V = np.bincount((p.pt_idx[:, None] * 9 + np.arange(9)).ravel(), (JpwT @ Jp).ravel(), n_p * 9)
        V = V.reshape(n_p, 3, 3)
        g_p = np.bincount((p.pt_idx[:, None] * 3 + np.arange(3)).ravel(), (JpwT @ r[:, :, None]).ravel(), n_p * 3)
        g_p = g_p.reshape(n_p, 3)
        W = sparse.csr_matrix(((EwT @ Jp).ravel(), (self.w_rows, self.w_cols)), shape=(N, 3 * n_p))
        if self.pair is not None:
            res = self._pair_residual(cams)
            jac = self._pair_gradient(cams)
            wp = float(_irls_weights(np.array(res), self.f))
            U += wp * np.outer(jac, jac)
            g_c += wp * res * jac
        if p.rotation_only:
            nrm = np.linalg.norm(pts, axis=1)
            res = NORM_WEIGHT * (nrm - 1.0)
            jac = NORM_WEIGHT * pts / np.maximum(nrm, 1e-12)[:, None]
            wn = _irls_weights(res, self.f)
            V += wn[:, None, None] * jac[:, :, None] * jac[:, None, :]
            g_p += (wn * res)[:, None] * jac
        if self.nf:
            res = self.f * logf / FOCAL_PRIOR_LOG_SIGMA
            jf = self.f / FOCAL_PRIOR_LOG_SIGMA
            wf = float(_irls_weights(np.array(res), self.f))
            U[-1, -1] += wf * jf * jf
            g_c[-1] += wf * res * jf
        return U, V, W, g_c, g_p

    def step(self, U, V, W, g_c, g_p, lam: float) -> tuple[np.ndarray, np.ndarray, float]:
        """The damped Gauss-Newton step at damping lam (cameras over all columns, zero for fixed ones; points)
        and the decrease of the cost its local quadratic model predicts."""
        n_p = len(V)
        Vd = V + lam * V * np.eye(3) + 1e-9 * (1.0 + np.trace(V, axis1=1, axis2=2))[:, None, None] * np.eye(3)
        Vinv = np.linalg.inv(Vd)
        Z = W @ sparse.bsr_matrix((Vinv, np.arange(n_p), np.arange(n_p + 1)), shape=(3 * n_p, 3 * n_p))
        N = self.nc_all
        S = U + lam * np.diag(np.diag(U)) - (Z @ W.T).toarray()
        rhs = -g_c + Z @ g_p.ravel()
        f = self.free
        Sf = S[np.ix_(f, f)]
        Sf += 1e-12 * (1.0 + np.abs(np.diag(Sf)).max(initial=0.0)) * np.eye(len(f))
        dc = np.zeros(N)
        if len(f):
            dc[f] = np.linalg.solve(Sf, rhs[f])
        coupled = (W.T @ dc).reshape(n_p, 3)
        dp = (Vinv @ (-g_p - coupled)[:, :, None])[..., 0]
        damped = dc @ (np.diag(U) * dc) + np.sum(dp**2 * np.diagonal(V, axis1=1, axis2=2))
        predicted = 0.5 * (lam * damped - dc @ g_c - np.sum(dp * g_p))
        return dc, dp, float(predicted)

    def apply(self, cams: np.ndarray, pts: np.ndarray, logf: float, dc: np.ndarray, dp: np.ndarray):
        """State after a step; the focal factor stays inside FOCAL_RANGE."""
        n_c = len(cams)
        new = cams.copy()
        new[:, : self.ncp] += dc[: n_c * self.ncp].reshape(n_c, self.ncp)
        if self.nf:
            logf = float(np.clip(logf + dc[-1], np.log(FOCAL_RANGE[0]), np.log(FOCAL_RANGE[1])))
        return new, pts + dp, logf


def bundle_adjust(
    prob: BAProblem,
    K: np.ndarray,
    *,
    f_scale: float,
    max_nfev: int,
    tick: Callable[[], None] | None = None,
) -> BAProblem:
    """Refine cameras, points (and optionally the focal length) by minimising the soft-L1 reprojection error
    with at most `max_nfev` cost evaluations; `tick` is called every step (progress, cancellation)."""
    solver = _Solver(prob, K, f_scale)
    cams, pts = prob.cams.astype(np.float64).copy(), prob.points.astype(np.float64).copy()
    logf = float(np.log(prob.focal_scale))
    active = solver.in_front(cams, pts)
    cost = solver.cost(cams, pts, logf, active)
    lam, nu, evals = LAMBDA0, 2.0, 0
    while evals < max_nfev:
        if tick is not None:
            tick()
        U, V, W, g_c, g_p = solver.normal_equations(cams, pts, logf, active)
        accepted = False
        while evals < max_nfev and not accepted:
            dc, dp, predicted = solver.step(U, V, W, g_c, g_p, lam)
            cand = solver.apply(cams, pts, logf, dc, dp)
            new_cost = solver.cost(*cand, active)
            evals += 1
            if np.isfinite(new_cost) and new_cost < cost:
                accepted = True
                done = cost - new_cost < FTOL * cost
                # Nielsen's update: relax the damping as far as the quadratic model proved right
                gain = (cost - new_cost) / max(predicted, 1e-300)
                cams, pts, logf = cand
                cost = new_cost
                lam, nu = lam * max(1.0 / 3.0, 1.0 - (2.0 * min(gain, 1.0) - 1.0) ** 3), 2.0
            else:
                lam, nu = lam * nu, nu * 2.0
        if not accepted or done:
            break
    return replace(prob, cams=cams, points=pts, focal_scale=float(np.exp(logf)))
