"""Keyframe structure from motion: keyframe choice, pure-rotation test, incremental PnP registration, BA."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial.transform import Rotation

from backend.camera.bundle import FOCAL_RANGE, BAProblem, bundle_adjust, reprojection_errors
from backend.camera.geometry import (
    bearings,
    center,
    fit_rotation,
    project,
    ray_angle_deg,
    rotation_parallax,
    triangulate,
)
from backend.camera.tracking import Tracks
from backend.camera.types import CameraSettings

MIN_SHARED = 20  # tracks two keyframes must share to relate them
MIN_PNP = 15  # 3D-2D matches to register a camera by PnP
MAX_FOCAL_PAIRS = 30  # keyframe pairs used to look for the focal length of a rotating camera
LOCAL_BA_EVERY = 6  # registrations between local bundle adjustments
LOCAL_BA_WINDOW = 12  # keyframes free in a local bundle adjustment
INIT_PAIRS = 2  # best-ranked initial pairs whose reconstructions compete (a close-up's best pair can mislead)
MIN_SCALE_POINTS = 5  # points that fix the step length of a keyframe registered from two views
SCALE_MIN_DEG = 0.1  # smallest ray angle of a point triangulated only to measure that step length


@dataclass
class KeyframeMap:
    """Solved keyframes: frame indices, world->camera poses, and triangulated track points (NaN if none)."""

    frames: np.ndarray  # (K,) int frame index of each keyframe
    R: np.ndarray  # (K,3,3)
    t: np.ndarray  # (K,3)
    points: np.ndarray  # (n_tracks,3) world point of each track id, NaN when not triangulated
    rotation_only: bool  # no baseline anywhere: t == 0, points are directions at unit distance
    focal_scale: float = 1.0  # refined focal length / the focal length the solve started from


def select_keyframes(tracks: Tracks, s: CameraSettings, tick: Callable[[], None]) -> np.ndarray:
    """Frames that start a keyframe: enough flow or track loss since the last one, or too long a gap."""
    kfs = [0]
    for f in range(1, tracks.n_frames):
        tick()
        last = kfs[-1]
        common, pa, pb = tracks.shared(last, f)
        n_last = max(len(tracks.ids[last]), 1)
        flow = float(np.median(np.linalg.norm(pb - pa, axis=1))) if len(common) else np.inf
        if (
            flow > s.keyframe_px
            or len(common) < s.keyframe_min_tracks * n_last
            or len(common) < MIN_SHARED
            or f - last >= s.keyframe_max_gap
        ):
            kfs.append(f)
    if kfs[-1] != tracks.n_frames - 1:
        kfs.append(tracks.n_frames - 1)
    return np.array(sorted(set(kfs)), int)


class KeyframeSolver:
    """Solves keyframe poses and points from tracks at tracking resolution (intrinsics K)."""

    def __init__(
        self,
        tracks: Tracks,
        K: np.ndarray,
        settings: CameraSettings,
        progress: Callable[[float], None] | None = None,
        refine_focal: bool = False,
    ):
        self.tr = tracks
        self.K = K.copy()
        self.focal0 = float(K[0, 0])
        self.refine_focal = refine_focal
        self.s = settings
        self._progress = progress or (lambda fraction: None)
        self.R: dict[int, np.ndarray] = {}
        self.t: dict[int, np.ndarray] = {}
        self.kf = np.zeros(0, int)
        self.kf = select_keyframes(tracks, settings, self.tick)
        n_tracks = len(tracks.colors)
        self.X = np.full((n_tracks, 3), np.nan)

    def tick(self) -> None:
        """Report the share of keyframes registered (and let the caller cancel)."""
        self._progress(len(self.R) / max(len(self.kf), 1))

    # ---- rotations between consecutive keyframes -------------------------------------------------
    def chained_rotations(self) -> tuple[np.ndarray, np.ndarray]:
        """World(=first keyframe)->camera rotations from pure-rotation fits of consecutive keyframes."""
        K = len(self.kf)
        Rs = np.zeros((K, 3, 3))
        Rs[0] = np.eye(3)
        rel = np.zeros((K, 3, 3))
        rel[0] = np.eye(3)
        for i in range(1, K):
            self.tick()
            _, pa, pb = self.tr.shared(self.kf[i - 1], self.kf[i])
            R = fit_rotation(pa, pb, self.K, self.s.reproj_px)[0] if len(pa) >= 5 else np.eye(3)
            rel[i] = R
            Rs[i] = R @ Rs[i - 1]
        return Rs, rel

    def max_parallax(self) -> tuple[float, list[tuple[int, int]]]:
        """Largest median rotation-compensated parallax (px) over keyframe pairs, and the INIT_PAIRS best initial
        pairs, best first.

        An initial pair trades parallax (capped at 20 px) against the number of shared tracks.
        """
        best_par = 0.0
        ranked: list[tuple[float, tuple[int, int]]] = []
        for i in range(len(self.kf)):
            for j in range(i + 1, len(self.kf)):
                self.tick()
                common, pa, pb = self.tr.shared(self.kf[i], self.kf[j])
                if len(common) < MIN_SHARED:
                    break
                R_ij, _ = fit_rotation(pa, pb, self.K, self.s.reproj_px)
                par = float(np.median(rotation_parallax(pa, pb, self.K, R_ij)))
                best_par = max(best_par, par)
                ranked.append((min(par, 20.0) * np.sqrt(len(common)), (i, j)))
        ranked.sort(key=lambda sp: -sp[0])
        pairs = [pair for _, pair in ranked[:INIT_PAIRS]]
        return best_par, pairs or [(0, min(1, len(self.kf) - 1))]

    # ---- triangulation / registration ----------------------------------------------------------
    def _obs(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        f = self.kf[k]
        return self.tr.ids[f], self.tr.pts[f]

    def _triangulate_with(self, j: int) -> None:
        """Triangulate untriangulated tracks of keyframe j against the registered keyframes (widest first)."""
        Rj, tj = self.R[j], self.t[j]
        Cj = center(Rj, tj)
        others = sorted((k for k in self.R if k != j), key=lambda k: -abs(k - j))
        for k in others:
            self.tick()
            common, pk, pj = self.tr.shared(self.kf[k], self.kf[j])
            if not len(common):
                continue
            todo = np.isnan(self.X[common, 0])
            if not todo.any():
                continue
            common, pk, pj = common[todo], pk[todo], pj[todo]
            Rk, tk = self.R[k], self.t[k]
            X = triangulate(Rk, tk, Rj, tj, pk, pj, self.K)
            ek, zk = project(self.K, Rk, tk, X)
            ej, zj = project(self.K, Rj, tj, X)
            ok = (zk > 0) & (zj > 0)
            ok &= np.linalg.norm(ek - pk, axis=1) < self.s.reproj_px
            ok &= np.linalg.norm(ej - pj, axis=1) < self.s.reproj_px
            ok &= ray_angle_deg(center(Rk, tk), Cj, X) > self.s.min_triangulation_deg
            self.X[common[ok]] = X[ok]

    def _register_pnp(self, k: int) -> bool:
        """Pose keyframe k from its triangulated tracks (EPnP RANSAC, then Levenberg-Marquardt on inliers)."""
        ids, pts = self._obs(k)
        have = ~np.isnan(self.X[ids, 0])
        if have.sum() < MIN_PNP:
            return False
        X, x = self.X[ids[have]], pts[have].astype(np.float64)
        ok, rvec, tvec, inl = cv2.solvePnPRansac(
            X,
            x,
            self.K,
            None,
            reprojectionError=self.s.reproj_px,
            iterationsCount=200,
            confidence=0.999,
            flags=cv2.SOLVEPNP_EPNP,
        )
        if not ok or inl is None or len(inl) < MIN_PNP or len(inl) < 0.4 * len(X):
            return False
        inl = inl.ravel()
        rvec, tvec = cv2.solvePnPRefineLM(X[inl], x[inl], self.K, None, rvec, tvec)
        self.R[k] = Rotation.from_rotvec(rvec.ravel()).as_matrix()
        self.t[k] = tvec.ravel()
        return True

    def _register_rotation(self, k: int, rel: np.ndarray) -> None:
        """Place keyframe k at its registered neighbour's centre, turned by the pure-rotation fit."""
        n = k - 1 if (k - 1) in self.R else k + 1
        R = rel[k] @ self.R[n] if n == k - 1 else rel[n].T @ self.R[n]
        self.R[k] = R
        self.t[k] = -R @ center(self.R[n], self.t[n])

    def _register_relative(self, k: int) -> bool:
        """Pose keyframe k by the essential matrix of k and the registered keyframe it shares tracks with that
        shows the most parallax; the step length comes from the points k sees (see `_step_from_points`), else
        from that keyframe's own last step (constant speed). False when no registered keyframe shows parallax
        with k, the essential matrix fails or no step length can be had.

        Used when too few of k's tracks are triangulated for PnP (a fast move renews the tracks between
        keyframes): placing k at its neighbour's centre would stop the camera, and every keyframe after it
        would inherit no baseline to triangulate from, freezing the centre for the rest of the clip."""
        best, n, pn, pk = self.s.parallax_px, -1, np.zeros((0, 2)), np.zeros((0, 2))
        for j in self.R:
            _, pj, pkj = self.tr.shared(self.kf[j], self.kf[k])
            if len(pj) < MIN_SHARED:
                continue
            R_jk, _ = fit_rotation(pj, pkj, self.K, self.s.reproj_px)
            par = float(np.median(rotation_parallax(pj, pkj, self.K, R_jk)))
            if par >= best:
                best, n, pn, pk = par, j, pj, pkj
        if n < 0:
            return False
        E, m = cv2.findEssentialMat(pn, pk, self.K, cv2.USAC_MAGSAC, 0.999, self.s.essential_px)
        if E is None or E.shape != (3, 3) or m is None or int(m.sum()) < MIN_SHARED:
            return False
        _, R_nk, u, _ = cv2.recoverPose(E, pn, pk, self.K, mask=m.copy())
        u = u.ravel() / max(float(np.linalg.norm(u)), 1e-12)
        R = R_nk @ self.R[n]
        a = R_nk @ self.t[n]
        step = self._step_from_points(k, n, R, a, u)
        if step is None:
            step = self._neighbour_step(n)
        if step is None:
            return False
        self.R[k], self.t[k] = R, a + step * u
        return True

    def _step_from_points(self, k: int, n: int, R: np.ndarray, a: np.ndarray, u: np.ndarray) -> float | None:
        """Median step s (>0) that puts keyframe k's points on its rays, with t_k = a + s u.

        The points are k's triangulated tracks or, with fewer than MIN_SCALE_POINTS of those, its tracks that
        keyframe n and another registered keyframe also saw, triangulated from those two for this purpose only
        (a narrow ray angle is enough for a median of one number, too narrow for the map)."""
        ids, pts = self._obs(k)
        have = ~np.isnan(self.X[ids, 0])
        X, x = self.X[ids[have]], pts[have].astype(np.float64)
        if len(X) < MIN_SCALE_POINTS:
            X, x = self._scale_points(k, n)
        if len(X) < MIN_SCALE_POINTS:
            return None
        b = bearings(x, self.K)
        v = X @ R.T + a
        bu = np.cross(b, u)
        bv = np.cross(b, v)
        den = np.sum(bu * bu, axis=1)
        ok = den > 1e-12
        sk = -np.sum(bu * bv, axis=1)[ok] / den[ok]
        z = np.sum((v[ok] + sk[:, None] * u) * b[ok], axis=1)
        sk = sk[(sk > 0) & (z > 0)]
        return float(np.median(sk)) if len(sk) >= MIN_SCALE_POINTS else None

    def _scale_points(self, k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """World points (m,3) and their pixels in keyframe k (m,2) of tracks seen by k, by registered keyframe n
        and by the registered keyframe m that shares most of them, triangulated from n and m."""
        ids_k, pts_k = self._obs(k)
        best: tuple[np.ndarray, np.ndarray] = (np.zeros((0, 3)), np.zeros((0, 2)))
        for m in self.R:
            if m == n:
                continue
            common, pm, pn = self.tr.shared(self.kf[m], self.kf[n])
            in_k = np.isin(common, ids_k)
            if in_k.sum() <= max(len(best[0]), MIN_SCALE_POINTS - 1):
                continue
            common, pm, pn = common[in_k], pm[in_k], pn[in_k]
            X = triangulate(self.R[m], self.t[m], self.R[n], self.t[n], pm, pn, self.K)
            em, zm = project(self.K, self.R[m], self.t[m], X)
            en, zn = project(self.K, self.R[n], self.t[n], X)
            ok = (zm > 0) & (zn > 0)
            ok &= np.linalg.norm(em - pm, axis=1) < self.s.reproj_px
            ok &= np.linalg.norm(en - pn, axis=1) < self.s.reproj_px
            ok &= ray_angle_deg(center(self.R[m], self.t[m]), center(self.R[n], self.t[n]), X) > SCALE_MIN_DEG
            if ok.sum() > len(best[0]):
                best = (X[ok], pts_k[np.searchsorted(ids_k, common[ok])].astype(np.float64))
        return best

    def _neighbour_step(self, n: int) -> float | None:
        """Distance between keyframe n's centre and that of its registered neighbour on the far side."""
        for m in (n - 1, n + 1):
            if m in self.R:
                d = float(np.linalg.norm(center(self.R[n], self.t[n]) - center(self.R[m], self.t[m])))
                if d > 0:
                    return d
        return None

    # ---- bundle adjustment ----------------------------------------------------------------------
    def _problem(
        self,
        keys: list[int],
        fixed: set[int],
        pair: tuple[int, int, float] | None,
        point_ids: np.ndarray | None = None,
    ) -> tuple[BAProblem, np.ndarray]:
        """BA problem over keyframes `keys` and the triangulated tracks (all, or those in `point_ids`)."""
        cams = np.array([np.concatenate([Rotation.from_matrix(self.R[k]).as_rotvec(), self.t[k]]) for k in keys])
        has_point = ~np.isnan(self.X[:, 0])
        if point_ids is not None:
            chosen = np.zeros(len(self.X), bool)
            chosen[point_ids] = True
            has_point &= chosen
        valid = np.flatnonzero(has_point)
        remap = -np.ones(len(self.X), int)
        remap[valid] = np.arange(len(valid))
        ci, pi, uv = [], [], []
        for c, k in enumerate(keys):
            ids, pts = self._obs(k)
            m = remap[ids] >= 0
            ci.append(np.full(m.sum(), c))
            pi.append(remap[ids[m]])
            uv.append(pts[m])
        cam_idx = np.concatenate(ci).astype(int)
        pt_idx = np.concatenate(pi).astype(int)
        # points need two views to be constrained
        counts = np.bincount(pt_idx, minlength=len(valid))
        keep = counts[pt_idx] >= 2
        fixed_mask = np.array([k in fixed for k in keys])
        prob = BAProblem(
            cams, self.X[valid].copy(), cam_idx[keep], pt_idx[keep], np.concatenate(uv)[keep], fixed_mask, False, pair
        )
        return prob, valid

    def _adjust(self, a: int, b: int, nfev: int, focal: bool = False) -> None:
        """BA of every registered keyframe: keyframe a held still, |C_a - C_b| held at 1 (the gauge);
        with `focal`, the focal length is refined too."""
        keys = sorted(self.R)
        prob, valid = self._problem(keys, {a}, (keys.index(a), keys.index(b), 1.0))
        prob.refine_focal = focal
        self._run_ba(prob, valid, keys, nfev)

    def _adjust_window(self, recent: list[int], a: int, b: int, nfev: int) -> None:
        """Local BA: the recently registered keyframes and their points move, keyframes that also see those
        points hold still (and fix the gauge); falls back to a global BA while nothing older is in view."""
        ids = np.unique(np.concatenate([self._obs(k)[0] for k in recent]))
        ids = ids[~np.isnan(self.X[ids, 0])]
        others = [k for k in self.R if k not in recent and np.intersect1d(self._obs(k)[0], ids).size >= MIN_SHARED]
        if len(others) < 2:
            self._adjust(a, b, nfev)
            return
        keys = sorted(set(recent) | set(others))
        self._run_ba(*self._problem(keys, set(others), None, ids), keys, nfev)

    def _run_ba(self, prob: BAProblem, valid: np.ndarray, keys: list[int], nfev: int) -> None:
        """Solve a BA problem and write poses and points back; points that stay off by 3x the inlier
        threshold are dropped."""
        if len(prob.cam_idx) < 10:
            return
        out = bundle_adjust(prob, self.K, f_scale=self.s.reproj_px, max_nfev=nfev, tick=self.tick)
        err = reprojection_errors(out, self.K)  # before K takes the refined focal length (out.focal_scale)
        self.K[:2, :2] *= out.focal_scale
        for c, k in enumerate(keys):
            self.R[k] = Rotation.from_rotvec(out.cams[c, :3]).as_matrix()
            self.t[k] = out.cams[c, 3:].copy()
        self.X[valid] = out.points
        bad = np.zeros(len(valid), bool)
        np.logical_or.at(bad, out.pt_idx, err > 3.0 * self.s.reproj_px)
        self.X[valid[bad]] = np.nan

    # ---- solves ---------------------------------------------------------------------------------
    def solve(self) -> KeyframeMap:
        """Rotation-only solve when no keyframe pair shows parallax, else incremental SfM and a final BA."""
        Rs, rel = self.chained_rotations()
        par, pairs = self.max_parallax()
        if len(self.kf) < 2 or par < self.s.parallax_px:
            return self._solve_rotation_only(Rs)
        if self.refine_focal:
            # a pure rotation seen through a wrong focal length looks like parallax: retry at the focal length
            # that makes the keyframe homographies most like rotations
            factor = self.rotation_focal_factor()
            if factor != 1.0:
                K0 = self.K.copy()
                self.K[:2, :2] *= factor
                par_f, _ = self.max_parallax()
                if par_f < self.s.parallax_px:
                    return self._solve_rotation_only(self.chained_rotations()[0])
                self.K = K0
        return self._solve_general(pairs, Rs, rel)

    def rotation_focal_factor(self) -> float:
        """Focal factor in FOCAL_RANGE under which the consecutive keyframe homographies are closest to
        rotations (equal singular values of K^-1 H K); 1.0 unless it clearly beats the current focal."""
        n_pairs = len(self.kf) - 1
        pick = np.unique(np.linspace(1, n_pairs, min(n_pairs, MAX_FOCAL_PAIRS)).round().astype(int))
        Hs = []
        for i in pick:
            self.tick()
            _, pa, pb = self.tr.shared(self.kf[i - 1], self.kf[i])
            if len(pa) < MIN_SHARED:
                continue
            H, _ = cv2.findHomography(pa, pb, cv2.RANSAC, 2.0 * self.s.reproj_px, maxIters=500, confidence=0.995)
            if H is not None:
                Hs.append(H)
        if not Hs:
            return 1.0

        def cost(factor: float) -> float:
            K = self.K.copy()
            K[:2, :2] *= factor
            Ki = np.linalg.inv(K)
            sv = np.array([np.linalg.svd(Ki @ H @ K, compute_uv=False) for H in Hs])
            return float(np.sum(np.log(sv[:, 0] / sv[:, 2])))

        factors = np.geomspace(FOCAL_RANGE[0], FOCAL_RANGE[1], 61)
        costs = np.array([cost(f) for f in factors])
        best = int(np.argmin(costs))
        return float(factors[best]) if costs[best] < 0.5 * cost(1.0) else 1.0

    def solve_rotation_only(self) -> KeyframeMap:
        """The rotation-only solve whatever the parallax: the fallback when a general solve's path is implausible."""
        return self._solve_rotation_only(self.chained_rotations()[0])

    def _solve_rotation_only(self, Rs: np.ndarray) -> KeyframeMap:
        n = len(self.tr.colors)
        acc = np.zeros((n, 3))
        cnt = np.zeros(n)
        for k, f in enumerate(self.kf):
            d = bearings(self.tr.pts[f], self.K) @ Rs[k]  # rows: R^T b
            np.add.at(acc, self.tr.ids[f], d)
            np.add.at(cnt, self.tr.ids[f], 1)
        ok = cnt >= 2
        self.X[ok] = acc[ok] / np.linalg.norm(acc[ok], axis=1, keepdims=True)
        for k in range(len(self.kf)):
            self.R[k], self.t[k] = Rs[k], np.zeros(3)
        keys = list(range(len(self.kf)))
        prob, valid = self._problem(keys, {0}, None)
        prob.rotation_only = True
        prob.refine_focal = self.refine_focal
        if len(prob.cam_idx) >= 10 and len(keys) > 1:
            out = bundle_adjust(prob, self.K, f_scale=self.s.reproj_px, max_nfev=self.s.ba_iterations, tick=self.tick)
            self.K[:2, :2] *= out.focal_scale
            for c in keys:
                self.R[c] = Rotation.from_rotvec(out.cams[c, :3]).as_matrix()
            self.X[valid] = out.points / np.linalg.norm(out.points, axis=1, keepdims=True)
        return self._result(rotation_only=True)

    def _init_candidates(self, pa: np.ndarray, pb: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Distinct relative poses (R, unit t) of the initial pair from several robust essential-matrix fits.

        A sideways move that turns and a forward move that turns less can explain two views almost equally
        well (more so under a guessed focal length); every distinct answer is kept and the views decide.
        """
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for method, thr in (
            (cv2.USAC_MAGSAC, self.s.essential_px),
            (cv2.RANSAC, self.s.essential_px),
            (cv2.LMEDS, self.s.essential_px),
        ):
            self.tick()
            E, m = cv2.findEssentialMat(pa, pb, self.K, method, 0.999, thr)
            if E is None or E.shape != (3, 3):
                continue
            _, R, t, _ = cv2.recoverPose(E, pa, pb, self.K, mask=m.copy())
            t = t.ravel() / max(np.linalg.norm(t), 1e-12)
            if all(
                Rotation.from_matrix(R @ R2.T).magnitude() > np.radians(2.0) or t @ t2 < np.cos(np.radians(10.0))
                for R2, t2 in out
            ):
                out.append((R, t))
        return out

    def _solve_general(self, pairs: list[tuple[int, int]], Rs: np.ndarray, rel: np.ndarray) -> KeyframeMap:
        """Incremental solve from each candidate initial pose of each initial pair; the best-explained one wins.

        On close-ups the best-ranked pair's essential-matrix fits can all miss the true motion (the smoke suite's
        wash_closeup: 3.7 degrees of rotation error from its best pair alone, 0.13 with its second), and the
        score tells them apart.
        """
        starts = []
        for a, b in pairs:
            _, pa, pb = self.tr.shared(self.kf[a], self.kf[b])
            starts += [(a, b, R_ab, t_ab) for R_ab, t_ab in self._init_candidates(pa, pb)]
        if not starts:
            return self._solve_rotation_only(Rs)
        best: tuple[float, int, int, dict, dict, np.ndarray] | None = None
        for a, b, R_ab, t_ab in starts:
            self.R, self.t = {}, {}
            self.X[:] = np.nan
            self._incremental(a, b, R_ab, t_ab, rel)
            score = self.score() if len(starts) > 1 else 0.0
            if best is None or score < best[0]:
                best = (score, a, b, self.R, self.t, self.X.copy())
        _, a, b, self.R, self.t, self.X = best  # type: ignore[misc]
        self._adjust(a, b, self.s.ba_iterations, focal=self.refine_focal)
        for k in range(len(self.kf)):
            self._triangulate_with(k)
        # the focal length was refined to convergence above; the polish of the new points holds it
        self._adjust(a, b, max(5, self.s.ba_iterations // 3))
        return self._result(rotation_only=False)

    def score(self) -> float:
        """Mean capped reprojection error (px) over every keyframe observation of tracks seen twice or more;
        an observation of a track left without a point counts as the cap."""
        cap = 3.0 * self.s.reproj_px
        counts = np.zeros(len(self.X), int)
        for k in range(len(self.kf)):
            counts[self._obs(k)[0]] += 1
        total, n = 0.0, 0
        for k in range(len(self.kf)):
            ids, pts = self._obs(k)
            m = counts[ids] >= 2
            ids, pts = ids[m], pts[m]
            have = ~np.isnan(self.X[ids, 0])
            uv, z = project(self.K, self.R[k], self.t[k], self.X[ids[have]])
            err = np.where(z > 0, np.linalg.norm(uv - pts[have], axis=1), cap)
            total += float(np.minimum(err, cap).sum()) + cap * float(np.count_nonzero(~have))
            n += len(ids)
        return total / max(n, 1)

    def _incremental(self, a: int, b: int, R_ab: np.ndarray, t_ab: np.ndarray, rel: np.ndarray) -> None:
        """Register every keyframe from the initial pair (a, b) by PnP (or pure rotation), with local bundle
        adjustments on the way."""
        self.R[a], self.t[a] = np.eye(3), np.zeros(3)
        self.R[b], self.t[b] = R_ab, t_ab
        self._triangulate_with(b)
        self._adjust(a, b, 15)
        recent: list[int] = []
        since_ba = 0
        while len(self.R) < len(self.kf):
            self.tick()
            todo = [k for k in range(len(self.kf)) if k not in self.R]
            seen = [np.count_nonzero(~np.isnan(self.X[self._obs(k)[0], 0])) for k in todo]
            order = [todo[i] for i in np.argsort(seen)[::-1]]
            placed = None
            for k in order:
                self.tick()
                if self._register_pnp(k):
                    placed = k
                    break
            if placed is None:
                adjacent = [k for k in todo if (k - 1) in self.R or (k + 1) in self.R]
                placed = adjacent[0]
                if not self._register_relative(placed):
                    self._register_rotation(placed, rel)
            self._triangulate_with(placed)
            recent = [*recent[-(LOCAL_BA_WINDOW - 1) :], placed]
            since_ba += 1
            if since_ba >= LOCAL_BA_EVERY:
                self._adjust_window(recent, a, b, 10)
                since_ba = 0

    def _result(self, rotation_only: bool) -> KeyframeMap:
        K = len(self.kf)
        R = np.stack([self.R[k] for k in range(K)])
        t = np.stack([self.t[k] for k in range(K)])
        return KeyframeMap(self.kf.copy(), R, t, self.X.copy(), rotation_only, float(self.K[0, 0]) / self.focal0)
