"""The camera stage: track background features, detect a static camera, solve poses, align the world Y-up.

World frame (documented contract):
- Y is up against gravity. `up` is estimated as the normal of the dominant plane among the triangulated scene
  points whose normal lies within `ground_max_tilt_deg` of the first camera's image-up (-y) axis and which lies
  below that camera and every later one (see `cameras_above_plane`); with no such plane (static or purely
  rotating camera, or no ground in view) the first camera is assumed level: its -y axis is up (zero roll and
  pitch).
- Heading: the first camera looks along world -Z (its forward projected on the ground), so its image right is
  world +X and a person facing the camera faces world +Z, the SMPL-X forward.
- Origin: the first camera's centre dropped onto the ground plane when one was found (the plane is then y = 0),
  else the first camera's centre. A static camera is R_w2c = diag(1, -1, -1), t_w2c = 0 in every frame.
- Scale is unknown (`scale_known` False): the median depth of the scene points seen by the first keyframe is set
  to `scene_depth`; a purely rotating camera has its points on a sphere of that radius.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation
from threadpoolctl import threadpool_limits

from backend.camera.geometry import angular_velocity, bearings, center, interpolate_poses, kabsch, project
from backend.camera.intrinsics import intrinsics_with_source
from backend.camera.masks import SelfieSegmenter
from backend.camera.sfm import MIN_PNP, KeyframeMap, KeyframeSolver
from backend.camera.tracking import FeatureTracker, Tracks
from backend.camera.types import CameraSettings, CameraSolve
from protocol.errors import DecodeError

MIN_STATIC_TRACKS = 12
LEVEL_R_W2C = np.diag([1.0, -1.0, -1.0])  # a level camera looking along world -Z
MAX_STEP_SHARE = 0.08  # largest plausible camera step per frame (90th percentile), as a share of the scene extent
MIN_HEIGHT_SHARE = 0.05  # lowest camera height over the ground plane, as a share of the first camera's
PersonMasks = Callable[[int], "np.ndarray | None"]


class _Progress:
    """Throttled progress (every 0.1 s at most; callers tick several times a second) and cancellation checks."""

    def __init__(self, progress: Callable[[float, str], None] | None, check: Callable[[], None] | None):
        self._progress = progress
        self._check = check
        self._last = -1.0
        self.fraction = 0.0
        self.message = ""

    def __call__(self, fraction: float | None = None, message: str | None = None, force: bool = False) -> None:
        if self._check is not None:
            self._check()
        if fraction is not None:
            self.fraction = float(min(max(fraction, 0.0), 1.0))
        if message is not None:
            self.message = message
        now = time.monotonic()
        if self._progress is not None and (force or now - self._last >= 0.1):
            self._last = now
            self._progress(self.fraction, self.message)


def static_motion_px(tracks: Tracks, size: tuple[int, int], tick: Callable[[], None] | None = None) -> np.ndarray:
    """(T,) how far (px) the background moved since the features were born: the median displacement of tracks
    and the largest image-corner displacement of the robust similarity fit of births -> now, whichever is less.
    """
    w, h = size
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64)
    out = np.zeros(tracks.n_frames)
    birth_pts = np.zeros((0, 2))
    for f in range(tracks.n_frames):
        if tick is not None:
            tick()
        ids, pts = tracks.ids[f], tracks.pts[f].astype(np.float64)
        if ids.size and (ids.max() >= len(birth_pts)):
            grown = np.full((int(ids.max()) + 1, 2), np.nan)
            grown[: len(birth_pts)] = birth_pts
            birth_pts = grown
        new = np.isnan(birth_pts[ids, 0]) if ids.size else np.zeros(0, bool)
        birth_pts[ids[new]] = pts[new]
        if ids.size < MIN_STATIC_TRACKS:  # too few features to judge this frame
            continue
        b = birth_pts[ids]
        med = float(np.median(np.linalg.norm(pts - b, axis=1)))
        fit = med
        M, _ = cv2.estimateAffinePartial2D(b, pts, method=cv2.RANSAC, ransacReprojThreshold=1.0)
        if M is not None:
            moved = corners @ M[:, :2].T + M[:, 2] - corners
            fit = float(np.max(np.linalg.norm(moved, axis=1)))
        out[f] = min(med, fit)
    return out


def _resection(
    kmap: KeyframeMap, tracks: Tracks, K: np.ndarray, s: CameraSettings, tick: _Progress
) -> tuple[np.ndarray, np.ndarray]:
    """World->camera rotations and centres of every frame: keyframes as solved, others by PnP from the guess."""
    T = tracks.n_frames
    kC = np.stack([center(r, t) for r, t in zip(kmap.R, kmap.t, strict=True)])
    R, C = interpolate_poses(kmap.frames, kmap.R, kC, np.arange(T))
    is_kf = np.zeros(T, bool)
    is_kf[kmap.frames] = True
    for f in range(T):
        tick(0.85 + 0.1 * f / T, "camera: non-keyframe poses")
        if is_kf[f]:
            continue
        ids, pts = tracks.ids[f], tracks.pts[f].astype(np.float64)
        have = ~np.isnan(kmap.points[ids, 0])
        if have.sum() < MIN_PNP:
            continue
        X, x = kmap.points[ids[have]], pts[have]
        if kmap.rotation_only:
            b = bearings(x, K)
            err = np.linalg.norm(X @ R[f].T - b, axis=1)
            keep = err < max(3.0 * s.reproj_px / K[0, 0], 2.5 * float(np.median(err)))
            if keep.sum() >= MIN_PNP:
                R[f] = kabsch(X[keep], b[keep])
            continue
        t0 = -R[f] @ C[f]
        uv, z = project(K, R[f], t0, X)
        err = np.linalg.norm(uv - x, axis=1)
        keep = (z > 0) & (err < max(4.0 * s.reproj_px, 2.5 * float(np.median(err))))
        if keep.sum() < MIN_PNP:
            continue
        rvec = Rotation.from_matrix(R[f]).as_rotvec().reshape(3, 1)
        ok, rvec, tvec = cv2.solvePnP(
            X[keep], x[keep], K, None, rvec, t0.reshape(3, 1).copy(), True, cv2.SOLVEPNP_ITERATIVE
        )
        if not ok:
            continue
        Rf = Rotation.from_rotvec(rvec.ravel()).as_matrix()
        uv, _ = project(K, Rf, tvec.ravel(), X[keep])
        if np.median(np.linalg.norm(uv - x[keep], axis=1)) < 1.5 * s.reproj_px:
            R[f], C[f] = Rf, center(Rf, tvec.ravel())
    if s.smooth_frames > 0 and T > 2:
        # smooth only the resection's departure from the keyframe interpolation: unbiased for steady motion
        Ri, Ci = interpolate_poses(kmap.frames, kmap.R, kC, np.arange(T))
        dr = Rotation.from_matrix(np.einsum("tij,tkj->tik", R, Ri)).as_rotvec()
        dr = gaussian_filter1d(dr, s.smooth_frames, axis=0, mode="nearest")
        R = np.einsum("tij,tjk->tik", Rotation.from_rotvec(dr).as_matrix(), Ri)
        C = Ci + gaussian_filter1d(C - Ci, s.smooth_frames, axis=0, mode="nearest")
    return R, C


def fit_ground_plane(
    X: np.ndarray, cam_center: np.ndarray, cam_up: np.ndarray, s: CameraSettings, rng: np.random.Generator
) -> np.ndarray | None:
    """Plane (n, d) with n·x + d = 0, n up, under the camera and near its up axis, explaining enough points."""
    if len(X) < 30:
        return None
    scale = float(np.median(np.linalg.norm(X - cam_center, axis=1)))
    thr = 0.02 * scale
    cos_max = np.cos(np.radians(s.ground_max_tilt_deg))
    best_n, best_d, best_count = None, 0.0, 0
    for _ in range(400):
        p = X[rng.choice(len(X), 3, replace=False)]
        n = np.cross(p[1] - p[0], p[2] - p[0])
        norm = np.linalg.norm(n)
        if norm < 1e-12:
            continue
        n /= norm
        if n @ cam_up < 0:
            n = -n
        if n @ cam_up < cos_max:
            continue
        d = -n @ p[0]
        if n @ cam_center + d <= thr:
            continue
        count = int(np.count_nonzero(np.abs(X @ n + d) < thr))
        if count > best_count:
            best_n, best_d, best_count = n, d, count
    if best_n is None or best_count < s.ground_min_share * len(X):
        return None
    inl = X[np.abs(X @ best_n + best_d) < thr]
    mean = inl.mean(0)
    n = np.linalg.svd(inl - mean)[2][2]
    n = n if n @ best_n > 0 else -n
    return np.concatenate([n, [-n @ mean]])


def cameras_above_plane(C: np.ndarray, plane: np.ndarray, share: float = MIN_HEIGHT_SHARE) -> bool:
    """Whether every camera centre C (T,3) stays above the ground plane (n, d), by at least `share` of the first
    camera's height. A camera cannot film the floor from under it: a path that dips below the plane it was
    solved against means the plane or the path is wrong, and a metric scale taken from the camera's height
    above that plane (as the fit stage does) would blow the trajectory up by the inverse of a tiny height."""
    heights = C @ plane[:3] + plane[3]
    return bool(heights.min() > share * heights[0])


def _world_alignment(R0: np.ndarray, C0: np.ndarray, plane: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Rotation A (old world -> Y-up world) and origin o (old world) so that x_new = A (x_old - o)."""
    up = plane[:3] if plane is not None else R0.T @ np.array([0.0, -1.0, 0.0])
    fwd = R0.T @ np.array([0.0, 0.0, 1.0])
    fwd_h = fwd - (fwd @ up) * up
    if np.linalg.norm(fwd_h) < 1e-3:  # looking straight down or up: image up gives the heading
        img_up = R0.T @ np.array([0.0, -1.0, 0.0])
        fwd_h = img_up - (img_up @ up) * up
    z = -fwd_h / np.linalg.norm(fwd_h)
    x = np.cross(up, z)
    A = np.stack([x / np.linalg.norm(x), up, z])
    o = C0 if plane is None else C0 - (plane[:3] @ C0 + plane[3]) * plane[:3]
    return A, o


def _static_solve(K: np.ndarray, frame_indices: np.ndarray, times: np.ndarray) -> CameraSolve:
    T = len(frame_indices)
    return CameraSolve(
        K=K,
        R_w2c=np.repeat(LEVEL_R_W2C[None], T, 0),
        t_w2c=np.zeros((T, 3)),
        static=True,
        scale_known=False,
        angvel=np.zeros((T, 3)),
        up=np.array([0.0, 1.0, 0.0]),
        frame_indices=frame_indices,
        times=times,
    )


def _start_segmenter(tick: _Progress) -> SelfieSegmenter:
    """Build the mediapipe segmenter (about a second) in a thread, reporting progress while it loads."""
    box: list[SelfieSegmenter | BaseException] = []

    def build() -> None:
        try:
            box.append(SelfieSegmenter())
        except BaseException as exc:  # handed back to the caller's thread below
            box.append(exc)

    th = threading.Thread(target=build, name="vidrig-selfie-segmenter", daemon=True)
    th.start()
    while th.is_alive():
        th.join(0.1)
        tick(message="camera: loading the person segmenter")
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


@threadpool_limits.wrap(limits=1, user_api="blas")
def solve_frames(
    frames: Iterable,
    K: np.ndarray,
    size: tuple[int, int],
    *,
    n_frames: int | None = None,
    settings: CameraSettings | None = None,
    person_masks: PersonMasks | None = None,
    progress: Callable[[float, str], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
    focal_known: bool = False,
) -> CameraSolve:
    """Camera of a sequence of frames (objects with .index, .time, .image RGB uint8), K for `size` (w, h).

    Unless `focal_known` (an override or the file's metadata gave it), the focal length in K is only a guess
    and the bundle adjustment refines it when `settings.refine_focal` (returned in the solve's K).
    numpy's BLAS runs on one thread meanwhile: its matrices here are small, and a second OpenBLAS thread spinning
    between calls took CPU from perception for no speed (120 frames of 720p: 6.4 -> 4.5 CPU seconds, wall equal).
    """
    s = settings or CameraSettings()
    tick = _Progress(progress, check_cancelled)
    tick(0.0, "camera: tracking features", force=True)
    tracker = FeatureTracker(s)
    segmenter = _start_segmenter(tick) if (person_masks is None and s.use_person_segmentation) else None
    indices: list[int] = []
    times: list[float] = []
    scale = (1.0, 1.0)
    try:
        for frame in frames:
            img = np.ascontiguousarray(frame.image)
            if not indices:
                scale = (img.shape[1] / float(size[0]), img.shape[0] / float(size[1]))
            if person_masks is not None:
                mask = person_masks(int(frame.index))
            elif segmenter is not None:
                mask = segmenter(img)
            else:
                mask = None
            tracker.add(img, tracker.dilate(mask, img.shape[:2]))
            indices.append(int(frame.index))
            times.append(float(frame.time))
            done = len(indices) / n_frames if n_frames else 0.5
            tick(0.7 * min(done, 1.0), f"camera: tracking features ({len(indices)} frames)")
    finally:
        if segmenter is not None:
            segmenter.close()
    if not indices:
        raise DecodeError("The camera solve got no frames: the video or the frame range is empty.")
    tracks = tracker.tracks
    fi = np.array(indices, np.int64)
    ts = np.array(times, np.float64)
    tick(0.7, "camera: static test", force=True)
    track_size = (round(size[0] * scale[0]), round(size[1] * scale[1]))
    if len(fi) < 2 or float(static_motion_px(tracks, track_size, lambda: tick()).max()) <= s.static_threshold_px:
        tick(1.0, "camera: static", force=True)
        return _static_solve(K, fi, ts)

    Kt = K.copy()
    Kt[0] *= scale[0]
    Kt[1] *= scale[1]
    tick(0.72, "camera: keyframe structure from motion")
    refine = s.refine_focal and not focal_known
    kmap = KeyframeSolver(tracks, Kt, s, progress=lambda x: tick(0.72 + 0.13 * x), refine_focal=refine).solve()
    K = K.copy()
    K[0, 0] *= kmap.focal_scale
    K[1, 1] *= kmap.focal_scale
    Kt[0, 0] *= kmap.focal_scale
    Kt[1, 1] *= kmap.focal_scale
    R, C = _resection(kmap, tracks, Kt, s, tick)
    extent = _scene_extent(kmap, C)
    if not kmap.rotation_only and not plausible_path(C, extent):
        # a failed reconstruction: a turning camera is a far smaller error than one flung across the scene
        kmap = KeyframeSolver(tracks, Kt, s, progress=lambda x: tick(0.85), refine_focal=False).solve_rotation_only()
        R, C = _resection(kmap, tracks, Kt, s, tick)
    else:
        R, C = reject_jumps(R, C, extent)
    tick(0.96, "camera: world frame")
    solve = _assemble(kmap, tracks, R, C, K, fi, ts, s)
    tick(1.0, "camera: solved", force=True)
    return solve


def plausible_path(C: np.ndarray, extent: float, share: float = MAX_STEP_SHARE) -> bool:
    """Whether the camera centres C (T,3) move like a real camera: the 90th percentile of the per-frame steps
    stays under `share` of the scene extent. On the rendered suite real paths give at most 0.037 (a camera
    following a hand), a failed solve 0.13 and more."""
    if len(C) < 2:
        return True
    return float(np.percentile(np.linalg.norm(np.diff(C, axis=0), axis=1), 90)) <= share * extent


def _scene_extent(kmap: KeyframeMap, C: np.ndarray) -> float:
    """Median distance of the triangulated points from the first camera (solve units; 1 when there are none)."""
    X = kmap.points[~np.isnan(kmap.points[:, 0])]
    return float(np.median(np.linalg.norm(X - C[0], axis=1))) if len(X) else 1.0


def reject_jumps(
    R: np.ndarray, C: np.ndarray, extent: float, window: int = 9, k: float = 6.0, floor: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Frames whose centre leaves the median-filtered path by far more than the path's own spread (and more
    than `floor` x the scene extent) are failed resections (e.g. a frame filled by a hand): re-interpolate them
    from the good frames around them. R (T,3,3) world->camera, C (T,3) centres."""
    if len(C) < 5:
        return R, C
    med = np.stack([np.median(np.lib.stride_tricks.sliding_window_view(
        np.pad(C[:, d], window // 2, mode="edge"), window), axis=1) for d in range(3)], axis=1)
    r = np.linalg.norm(C - med, axis=1)
    bad = r > max(k * 1.4826 * float(np.median(r)), floor * extent)
    if not bad.any() or bad.sum() > len(C) // 2:
        return R, C
    good = np.flatnonzero(~bad)
    Ri, Ci = interpolate_poses(good, R[good], C[good], np.arange(len(C)))
    R, C = R.copy(), C.copy()
    R[bad], C[bad] = Ri[bad], Ci[bad]
    return R, C


def _assemble(
    kmap: KeyframeMap,
    tracks: Tracks,
    R: np.ndarray,
    C: np.ndarray,
    K: np.ndarray,
    fi: np.ndarray,
    ts: np.ndarray,
    s: CameraSettings,
) -> CameraSolve:
    """Align the solved trajectory to the Y-up world, fix the scale and gather the coloured point cloud."""
    valid = np.flatnonzero(~np.isnan(kmap.points[:, 0]))
    X = kmap.points[valid]
    colors = tracks.color_array()[valid]
    rng = np.random.default_rng(0)
    if kmap.rotation_only:
        plane = None
        X = X / np.linalg.norm(X, axis=1, keepdims=True) * s.scene_depth
        depth_scale = 1.0
    else:
        plane = fit_ground_plane(X, C[0], R[0].T @ np.array([0.0, -1.0, 0.0]), s, rng)
        if plane is not None and not cameras_above_plane(C, plane):
            plane = None
        seen = np.isin(valid, tracks.ids[kmap.frames[0]])
        depths = (X[seen] - C[0]) @ R[0][2] if seen.sum() >= 5 else np.linalg.norm(X - C[0], axis=1)
        depths = depths[depths > 0]
        depth_scale = s.scene_depth / float(np.median(depths)) if len(depths) else 1.0
    A, o = _world_alignment(R[0], C[0], plane)
    Xw = (X - o) @ A.T * depth_scale
    Cw = (C - o) @ A.T * depth_scale
    Rw = R @ A.T
    tw = -np.einsum("tij,tj->ti", Rw, Cw)
    if kmap.rotation_only:
        tw[:] = 0.0
    if len(Xw) > s.max_points:
        keep = np.sort(rng.choice(len(Xw), s.max_points, replace=False))
        Xw, colors = Xw[keep], colors[keep]
    ground = np.array([0.0, 1.0, 0.0, 0.0]) if plane is not None else np.full(4, np.nan)
    return CameraSolve(
        K=K,
        R_w2c=Rw,
        t_w2c=tw,
        static=False,
        scale_known=False,
        angvel=angular_velocity(Rw, ts),
        up=np.array([0.0, 1.0, 0.0]),
        frame_indices=fi,
        times=ts,
        points=Xw.astype(np.float32),
        colors=colors.astype(np.uint8),
        ground_plane=ground,
    )


def solve_camera(
    video: str | Path,
    start: int = 0,
    stop: int | None = None,
    *,
    settings: CameraSettings | None = None,
    person_masks: PersonMasks | None = None,
    progress: Callable[[float, str], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
    frames: Iterable | None = None,
) -> CameraSolve:
    """Solve the camera of frames [start, stop) of a video file; K in pixels of the original resolution.
    `frames`: those frames at `settings.max_side` when another thread already decodes them (`FrameFanout`)."""
    from backend.video import iter_frames, probe

    s = settings or CameraSettings()
    info = probe(video)
    K, source = intrinsics_with_source(info, s)
    end = info.n_frames if stop is None else min(stop, info.n_frames) if info.n_frames else stop
    n = max(end - start, 1) if end else None
    return solve_frames(
        iter_frames(video, start=start, stop=stop, max_side=s.max_side) if frames is None else frames,
        K,
        (info.width, info.height),
        n_frames=n,
        settings=s,
        person_masks=person_masks,
        progress=progress,
        check_cancelled=check_cancelled,
        focal_known=source != "default",
    )
