"""Unit tests of the camera stage's math: intrinsics, rotations, angular velocity, ground plane, world frame."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.camera import CameraSettings, CameraSolve, intrinsics, solve_frames
from backend.camera.bundle import BAProblem, _skew, bundle_adjust, left_jacobian, reprojection_errors
from backend.camera.geometry import angular_velocity, bearings, fit_rotation, kabsch, rotation_parallax
from backend.camera.intrinsics import focal_from_35mm, focal_from_fov, metadata_focal_35mm
from backend.camera.solve import _Progress, _world_alignment, fit_ground_plane, plausible_path, static_motion_px
from backend.camera.synthetic import SynthFrame, level_rotation
from backend.camera.tracking import Tracks
from protocol.errors import Cancelled, DecodeError


def _info(w: int = 1280, h: int = 720) -> SimpleNamespace:
    return SimpleNamespace(path="/nonexistent/clip.mp4", width=w, height=h)


def test_default_fov_gives_known_focal():
    K = intrinsics(_info(), CameraSettings(fov_deg=90.0))
    assert K[0, 0] == pytest.approx(640.0)
    assert K[1, 1] == pytest.approx(640.0)
    assert (K[0, 2], K[1, 2]) == (640.0, 360.0)
    assert focal_from_fov(1000, 55.0) == pytest.approx(500 / math.tan(math.radians(27.5)))


def test_focal_override_wins():
    K = intrinsics(_info(), CameraSettings(focal_px=1234.5))
    assert K[0, 0] == K[1, 1] == 1234.5


def test_35mm_tag_parsing_and_conversion():
    assert metadata_focal_35mm({"com.apple.quicktime.camera.focal_length.35mmEquivalent": "26"}) == 26.0
    assert metadata_focal_35mm({"FocalLengthIn35mmFormat": "28 mm"}) == 28.0
    assert metadata_focal_35mm({"title": "holiday", "focal_length": "4.2"}) is None
    # a 43.27 mm equivalent lens on a frame whose diagonal is 1000 px has f = 1000 px
    assert focal_from_35mm(800, 600, math.hypot(36, 24)) == pytest.approx(1000.0)


def test_camera_solve_round_trip():
    T = 4
    sol = CameraSolve(
        K=np.eye(3),
        R_w2c=np.repeat(np.eye(3)[None], T, 0),
        t_w2c=np.arange(3 * T, dtype=float).reshape(T, 3),
        static=False,
        scale_known=False,
        angvel=np.ones((T, 3)),
        up=np.array([0.0, 1.0, 0.0]),
        frame_indices=np.arange(T, dtype=np.int64) + 5,
        times=np.arange(T) / 30.0,
        points=np.ones((7, 3), np.float32),
        colors=np.full((7, 3), 9, np.uint8),
    )
    d = sol.to_arrays()
    assert all(isinstance(v, np.ndarray) for v in d.values())
    back = CameraSolve.from_arrays(d)
    assert back.static is False and back.scale_known is False
    assert back.points.dtype == np.float32 and back.colors.dtype == np.uint8
    assert back.frame_indices.dtype == np.int64
    np.testing.assert_array_equal(back.t_w2c, sol.t_w2c)
    np.testing.assert_array_equal(back.camera_centers(), -sol.t_w2c)
    assert np.isnan(back.ground_plane).all()


def test_kabsch_recovers_rotation():
    rng = np.random.default_rng(1)
    R = Rotation.from_rotvec([0.3, -0.2, 0.5]).as_matrix()
    a = rng.normal(size=(50, 3))
    np.testing.assert_allclose(kabsch(a, a @ R.T), R, atol=1e-12)


def test_pure_rotation_fit_and_zero_parallax():
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    rng = np.random.default_rng(2)
    pa = rng.uniform([0, 0], [640, 480], size=(200, 2))
    R = Rotation.from_euler("y", 5, degrees=True).as_matrix()
    q = bearings(pa, K) @ R.T @ K.T
    pb = q[:, :2] / q[:, 2:]
    R_fit, inl = fit_rotation(pa, pb, K, 1.0)
    np.testing.assert_allclose(R_fit, R, atol=1e-9)
    assert inl.all()
    assert rotation_parallax(pa, pb, K, R_fit).max() < 1e-6


def test_angular_velocity_of_a_right_pan_is_positive_y():
    """A camera turning right at 0.5 rad/s spins about its own +y (image down) axis."""
    times = np.arange(10) / 10.0
    R = np.stack([level_rotation(0.5 * t) for t in times])
    w = angular_velocity(R, times)
    np.testing.assert_allclose(w, np.tile([0.0, 0.5, 0.0], (10, 1)), atol=1e-9)


def test_angular_velocity_of_a_still_camera_is_zero():
    R = np.repeat(np.eye(3)[None], 5, 0)
    assert not angular_velocity(R, np.arange(5) / 30.0).any()


def test_world_alignment_of_a_level_camera():
    """A level first camera with no ground plane maps to R_w2c = diag(1,-1,-1) and its centre to the origin."""
    R0 = Rotation.from_euler("y", 30, degrees=True).as_matrix()
    C0 = np.array([1.0, 2.0, 3.0])
    A, o = _world_alignment(R0, C0, None)
    np.testing.assert_allclose(R0 @ A.T, np.diag([1.0, -1.0, -1.0]), atol=1e-12)
    np.testing.assert_allclose(o, C0)


def test_ground_plane_found_and_used_for_up_and_origin():
    rng = np.random.default_rng(3)
    # old world = first camera frame, camera pitched 20 deg down; floor 1.5 below the camera
    R0 = np.eye(3)
    pitch = math.radians(20)
    up = np.array([0.0, -math.cos(pitch), math.sin(pitch)])  # world up seen by a camera tilted down
    e1 = np.array([1.0, 0.0, 0.0])
    e2 = np.cross(up, e1)
    floor = -1.5 * up + rng.uniform(-4, 4, (300, 1)) * e1 + rng.uniform(2, 8, (300, 1)) * e2
    clutter = rng.uniform(-3, 3, (100, 3)) + np.array([0.0, 0.0, 6.0])
    X = np.vstack([floor, clutter])
    plane = fit_ground_plane(X, np.zeros(3), R0.T @ [0, -1, 0], CameraSettings(), rng)
    assert plane is not None
    np.testing.assert_allclose(plane[:3], up, atol=1e-6)
    assert plane[3] == pytest.approx(1.5, abs=1e-6)
    A, o = _world_alignment(R0, np.zeros(3), plane)
    np.testing.assert_allclose(A @ up, [0, 1, 0], atol=1e-9)
    np.testing.assert_allclose(o, -1.5 * up, atol=1e-6)
    # first camera forward goes to world -Z after the tilt is removed
    f = A @ (R0.T @ [0, 0, 1])
    assert f[2] < 0 and abs(f[0]) < 1e-9


def test_no_ground_plane_when_points_are_scattered():
    rng = np.random.default_rng(4)
    X = rng.uniform(-5, 5, (300, 3)) + np.array([0.0, 0.0, 10.0])
    assert fit_ground_plane(X, np.zeros(3), np.array([0, -1.0, 0]), CameraSettings(), rng) is None


def _tracks(n_frames: int, motion: np.ndarray) -> Tracks:
    rng = np.random.default_rng(5)
    base = rng.uniform(20, 300, (60, 2)).astype(np.float32)
    tr = Tracks()
    tr.colors = [np.zeros(3, np.uint8)] * 60
    for f in range(n_frames):
        tr.ids.append(np.arange(60))
        tr.pts.append(base + motion[f].astype(np.float32))
    return tr


def test_static_motion_is_zero_for_still_tracks_and_grows_with_a_pan():
    still = static_motion_px(_tracks(10, np.zeros((10, 2))), (320, 320))
    assert still.max() < 1e-4
    pan = static_motion_px(_tracks(10, np.outer(np.arange(10), [0.5, 0.0])), (320, 320))
    assert pan[-1] == pytest.approx(4.5, abs=1e-3)


def test_progress_reports_and_cancel_raises():
    calls: list[tuple[float, str]] = []

    def cancel() -> None:
        raise Cancelled("stop")

    p = _Progress(lambda f, m: calls.append((f, m)), None)
    p(0.25, "x")
    assert calls == [(0.25, "x")]  # the first report always goes out
    p(1.0, "done", force=True)
    assert calls[-1] == (1.0, "done")
    with pytest.raises(Cancelled):
        _Progress(None, cancel)(0.5)


def _ba_problem(rng: np.random.Generator, K: np.ndarray) -> tuple[BAProblem, np.ndarray]:
    """Five cameras on a line looking at a cloud of points; returns the exact problem and the cameras."""
    pts = rng.uniform([-2, -1, 4], [2, 1, 8], (80, 3))
    cams = np.array(
        [np.r_[Rotation.from_euler("yx", [8 * i, 4 * i], degrees=True).as_rotvec(), -0.3 * i, 0, 0] for i in range(5)]
    )
    ci, pi = np.meshgrid(np.arange(5), np.arange(80), indexing="ij")
    ci, pi = ci.ravel(), pi.ravel()
    Xc = Rotation.from_rotvec(cams[ci, :3]).apply(pts[pi]) + cams[ci, 3:]
    uv = Xc[:, :2] / Xc[:, 2:] * K[0, 0] + K[:2, 2]
    fixed = np.array([True, False, False, False, False])
    return BAProblem(cams.copy(), pts.copy(), ci, pi, uv, fixed, False, (0, 4, 1.2)), cams


def test_bundle_adjustment_recovers_perturbed_cameras():
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    rng = np.random.default_rng(6)
    prob, cams = _ba_problem(rng, K)
    prob.cams[1:] += rng.normal(0, 0.01, prob.cams[1:].shape)
    prob.points += rng.normal(0, 0.05, prob.points.shape)
    assert reprojection_errors(prob, K).max() > 1.0
    out = bundle_adjust(prob, K, f_scale=1.0, max_nfev=50)
    assert reprojection_errors(out, K).max() < 1e-3
    np.testing.assert_allclose(out.cams, cams, atol=1e-4)


def test_bundle_adjustment_refines_the_focal_length():
    K_true = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    rng = np.random.default_rng(7)
    prob, _ = _ba_problem(rng, K_true)
    prob.refine_focal = True
    K_guess = K_true.copy()
    K_guess[0, 0] = K_guess[1, 1] = 430.0
    out = bundle_adjust(prob, K_guess, f_scale=1.0, max_nfev=100)
    assert 430.0 * out.focal_scale == pytest.approx(500.0, rel=0.01)
    assert np.median(reprojection_errors(out, K_guess)) < 0.05


def test_left_jacobian_matches_finite_differences():
    """R(w + d) p = R(w) p - [R(w) p]x J_l(w) d to first order, the derivative the bundle adjustment uses."""
    rng = np.random.default_rng(8)
    for w in (np.zeros(3), np.array([0.3, -1.2, 2.0]), rng.normal(0, 1, 3)):
        p = rng.normal(0, 1, 3)
        Rp = Rotation.from_rotvec(w).apply(p)
        J = -_skew(Rp[None])[0] @ left_jacobian(w[None])[0]
        num = np.column_stack(
            [
                (Rotation.from_rotvec(w + h).apply(p) - Rotation.from_rotvec(w - h).apply(p)) / 2e-6
                for h in np.eye(3) * 1e-6
            ]
        )
        np.testing.assert_allclose(J, num, atol=1e-7)


def test_bundle_adjustment_leaves_points_behind_a_camera_out():
    """Points behind a camera (a bad triangulation) have clamped projections; the solve still converges."""
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    rng = np.random.default_rng(9)
    prob, cams = _ba_problem(rng, K)
    prob.points[:4, 2] = -3.0  # behind every camera
    prob.cams[1:] += rng.normal(0, 0.01, prob.cams[1:].shape)
    out = bundle_adjust(prob, K, f_scale=1.0, max_nfev=50)
    np.testing.assert_allclose(out.cams, cams, atol=1e-4)
    np.testing.assert_array_equal(out.points[:4], prob.points[:4])  # left as they were, for the caller to drop
    assert np.median(reprojection_errors(out, K)) < 1e-3


def test_empty_and_single_frame_clips():
    img = (np.random.default_rng(8).random((90, 160, 3)) * 255).astype(np.uint8)
    K = np.array([[150.0, 0, 80], [0, 150.0, 45], [0, 0, 1]])
    settings = CameraSettings(use_person_segmentation=False)
    with pytest.raises(DecodeError):
        solve_frames([], K, (160, 90), settings=settings)
    sol = solve_frames([SynthFrame(7, 0.25, img)], K, (160, 90), settings=settings)
    assert sol.static and sol.R_w2c.shape == (1, 3, 3)
    assert sol.frame_indices.tolist() == [7] and sol.times.tolist() == [0.25]


def test_reject_jumps_reinterpolates_failed_resections_and_keeps_a_smooth_path():
    """A few wild frames on a smooth dolly are replaced from their neighbours; a clean path is left alone."""
    from scipy.spatial.transform import Rotation

    from backend.camera.solve import reject_jumps

    t = np.arange(60, dtype=float)
    C = np.stack([0.05 * t, 0.01 * np.sin(t / 5), np.zeros_like(t)], axis=1)
    R = Rotation.from_euler("y", 0.01 * t[:, None]).as_matrix()
    R2, C2 = reject_jumps(R, C, extent=5.0)
    np.testing.assert_allclose(C2, C)
    np.testing.assert_allclose(R2, R)
    broken_C, broken_R = C.copy(), R.copy()
    broken_C[[17, 40]] += [[300.0, -50.0, 80.0], [-120.0, 10.0, 400.0]]
    broken_R[17] = Rotation.from_euler("x", 2.0).as_matrix()
    R3, C3 = reject_jumps(broken_R, broken_C, extent=5.0)
    np.testing.assert_allclose(C3, C, atol=1e-3)
    np.testing.assert_allclose(R3[17], R[17], atol=1e-6)


def _short_track_dolly(n_points: int = 12000, frames: int = 60, life: int = 6) -> tuple:
    """Tracks (0.3 px noise) of a camera sliding 4 cm a frame while turning 0.8 deg a frame, each track living
    only `life` frames (a fast move that renews the features between keyframes); also K and the true centres."""
    from backend.camera.synthetic import level_rotation as turn

    rng = np.random.default_rng(0)
    w, h, f = 640, 360, 500.0
    K = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1.0]])
    ang, rad = rng.uniform(-np.pi, np.pi, n_points), rng.uniform(4, 8, n_points)
    X = np.column_stack([rad * np.sin(ang) + 1.2, rng.uniform(0, 3, n_points), -rad * np.cos(ang)])
    birth = rng.integers(-life, frames, n_points)
    centres = np.array([[0.04 * i, 1.5, 0.0] for i in range(frames)])
    tracks = Tracks(colors=[np.zeros(3, np.uint8)] * n_points)
    for i in range(frames):
        Xc = (X - centres[i]) @ turn(np.radians(0.8 * i)).T
        uv = Xc[:, :2] / Xc[:, 2:3] * f + K[:2, 2]
        seen = (Xc[:, 2] > 0.5) & (uv[:, 0] > 0) & (uv[:, 0] < w) & (uv[:, 1] > 0) & (uv[:, 1] < h)
        ids = np.flatnonzero(seen & (birth <= i) & (i < birth + life))
        tracks.ids.append(ids.astype(np.int64))
        tracks.pts.append((uv[ids] + rng.normal(0, 0.3, (len(ids), 2))).astype(np.float32))
    return tracks, K, centres


def test_short_tracks_keep_a_moving_camera_moving():
    """Keyframes whose tracks are too new to be triangulated (no PnP) are placed from two views, not frozen at
    their neighbour's centre: the old solve froze 19 of 21 keyframe steps here (centre error 24% of the path)."""
    from backend.camera.geometry import center
    from backend.camera.sfm import KeyframeSolver

    tracks, K, centres = _short_track_dolly()
    kmap = KeyframeSolver(tracks, K, CameraSettings()).solve()
    assert not kmap.rotation_only
    C = np.stack([center(r, t) for r, t in zip(kmap.R, kmap.t, strict=True)])
    G = centres[kmap.frames]
    steps = np.linalg.norm(np.diff(C, axis=0), axis=1)
    assert (steps > 0.2 * np.median(steps)).all()
    # similarity fit of the keyframe centres onto the truth
    gm, cm = G.mean(0), C.mean(0)
    u, sv, vt = np.linalg.svd((G - gm).T @ (C - cm))
    S = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    scale = (sv * np.diag(S)).sum() / ((C - cm) ** 2).sum()
    fitted = scale * (C - cm) @ (u @ S @ vt).T + gm
    path = np.linalg.norm(np.diff(G, axis=0), axis=1).sum()
    assert np.sqrt(((fitted - G) ** 2).sum(1).mean()) < 0.03 * path


def test_ground_plane_is_dropped_when_the_camera_path_goes_under_it():
    """A camera 1.5 m over y = 0 that stays above it keeps the plane; one whose solved path dips to 2 cm over it
    or under it (a wrong plane or a wrong path) does not, so no metric scale is read off a tiny height."""
    from backend.camera.solve import cameras_above_plane

    plane = np.array([0.0, 1.0, 0.0, 0.0])
    C = np.column_stack([np.linspace(0, 3, 50), np.full(50, 1.5), np.zeros(50)])
    assert cameras_above_plane(C, plane)
    low = C.copy()
    low[30, 1] = 0.02
    assert not cameras_above_plane(low, plane)
    low[30, 1] = -20.0
    assert not cameras_above_plane(low, plane)
    tilted = np.array([0.0, np.cos(0.1), np.sin(0.1), -0.5])
    assert cameras_above_plane(C + np.array([0.0, 0.5, 0.0]), tilted)


def test_a_path_that_jumps_by_scene_depths_is_implausible() -> None:
    t = np.linspace(0, 1, 60)[:, None]
    walk = np.hstack([2.0 * t, 0 * t, 0 * t])  # 2 units over 60 frames: 0.034 a frame
    assert plausible_path(walk, extent=4.0)  # under 1% of a 4-unit scene per frame
    rng = np.random.default_rng(0)
    flung = walk + rng.normal(0.0, 1.0, walk.shape)  # steps of about 1.4 units
    assert not plausible_path(flung, extent=4.0)
    assert plausible_path(walk[:1], extent=4.0)  # a single frame has no path to judge
