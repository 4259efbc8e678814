"""Losses, limits, projection, smoothness, contacts, placement, interpolation and the optimiser, on known numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.fitting.contact import (
    CameraMotion,
    contact_anchors,
    detect_foot_contacts,
    ground_height,
    ground_track,
    image_velocity,
    unseen_feet_standing,
)
from backend.fitting.interp import fill_rotations, fill_vectors, smooth_rotations, smooth_vectors
from backend.fitting.limits import LIMITS_DEG, limit_excess, limit_table
from backend.fitting.losses import (
    finite_difference,
    gmof_squared,
    image_residual_squared,
    mean_or_zero,
    normalised,
    position_steps,
    project,
    rotation_distance,
    rotation_smoothness,
    shape_prior,
    to_camera,
)
from backend.fitting.mapping import FOOT_LANDMARKS, joint_confidence
from backend.fitting.optim import optimise
from backend.fitting.placement import camera_scale, camera_translation
from backend.fitting.priors import relaxed_hand_pose
from backend.geometry.rotations import axis_angle_to_matrix, geodesic_angle
from protocol.errors import Cancelled
from protocol.skeleton import JOINT_INDEX, JOINT_NAMES


def test_geman_mcclure_known_values() -> None:
    r = torch.tensor([0.0, 1.0, 2.0, 1e6])
    out = gmof_squared(r * r, 1.0)
    assert out[0] == 0.0
    assert out[1] == pytest.approx(0.5)
    assert out[2] == pytest.approx(4.0 / 5.0)
    assert out[3] == pytest.approx(1.0, rel=1e-6)
    assert gmof_squared(torch.tensor(0.09), 2.0) == pytest.approx(4 * 0.09 / 4.09)
    assert (torch.tensor([1.0, 3.0]) * normalised(torch.tensor([1.0, 3.0]))).sum() == pytest.approx(2.5)


def test_limits_cover_every_body_joint_and_penalise_backward_knees_and_elbows() -> None:
    assert set(LIMITS_DEG) == set(JOINT_NAMES[1:22])
    lo, hi = limit_table()
    pose = torch.zeros(2, 21, 3)
    assert limit_excess(pose, lo, hi).abs().sum().item() == 0.0
    knee = JOINT_INDEX["left_knee"] - 1
    pose[0, knee, 0] = -0.1  # knee bent backwards
    pose[1, knee, 0] = 1.5  # normal flexion
    out = limit_excess(pose, lo, hi).square().sum((-1, -2))
    assert out[0] == pytest.approx(0.01)
    assert out[1] == 0.0
    elbow_l, elbow_r = JOINT_INDEX["left_elbow"] - 1, JOINT_INDEX["right_elbow"] - 1
    pose = torch.zeros(1, 21, 3)
    pose[0, elbow_l, 1] = 0.2  # left elbow flexes about -y: +0.2 is hyperextension
    pose[0, elbow_r, 1] = 1.0  # right elbow flexes about +y: fine
    assert limit_excess(pose, lo, hi).square().sum() == pytest.approx(0.04)
    assert hi[knee, 0] == pytest.approx(math.radians(150))


def test_projection_and_image_residual_in_metres() -> None:
    k = torch.tensor([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    pts = torch.tensor([[0.0, 0.0, 2.0], [1.0, -0.5, 2.0]])
    assert project(pts, k).tolist() == [[50.0, 40.0], [100.0, 15.0]]
    world = torch.tensor([[[0.0, 0.0, 4.0]]])
    r, t = torch.eye(3)[None], torch.zeros(1, 3)
    obs = torch.tensor([[[60.0, 40.0]]])  # 10 px off at depth 4 m with f = 100: 0.4 m
    assert image_residual_squared(to_camera(world, r, t), obs, k).item() == pytest.approx(0.16)


def test_finite_differences_are_binomial_stencils_along_time() -> None:
    x = torch.tensor([0.0, 1.0, 4.0, 9.0, 16.0])[:, None, None] * torch.tensor([[1.0, -2.0]])[..., None]  # (5,2,1)
    assert finite_difference(x, 1)[:, 0, 0].tolist() == [1.0, 3.0, 5.0, 7.0]
    assert finite_difference(x, 2, scale=0.5)[:, 1, 0].tolist() == [-2.0, -2.0, -2.0]  # -2 t^2: -4, halved
    assert finite_difference(x, 3).abs().max() == 0.0
    assert finite_difference(x, 3).shape == (2, 2, 1) and finite_difference(x[:2], 2).shape == (0, 2, 1)


def test_smoothness_terms_zero_for_uniform_motion_and_known_for_acceleration() -> None:
    time = torch.arange(10.0)
    linear = torch.stack([time, 2 * time, -time], -1)
    assert mean_or_zero(position_steps(linear, 2)) == pytest.approx(0.0)
    quad = torch.stack([time**2, 0 * time, 0 * time], -1)  # second difference 2 everywhere
    assert mean_or_zero(position_steps(quad, 2)) == pytest.approx(4.0)
    assert mean_or_zero(position_steps(quad, 2, fps=60.0)) == pytest.approx(4.0 * 16.0)
    too_short = quad[:2].clone().requires_grad_(True)  # no acceleration to measure: 0, and still differentiable
    mean_or_zero(position_steps(too_short, 2)).backward()
    assert too_short.grad is not None and float(too_short.grad.abs().sum()) == 0.0
    spin = axis_angle_to_matrix(torch.stack([0 * time, 0.1 * time, 0 * time], -1))
    assert rotation_smoothness(spin, 2) < 0.02 * rotation_smoothness(spin, 1)  # steady spin: small acceleration
    assert rotation_smoothness(spin, 1) == pytest.approx(8 * math.sin(0.05) ** 2, rel=1e-4)
    assert rotation_smoothness(spin[:2], 2) == 0.0
    quarter = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    assert rotation_distance(torch.eye(3), quarter) == pytest.approx(4.0, rel=1e-5)
    assert shape_prior(torch.tensor([1.0, 2.0])) == pytest.approx(5.0)


def test_relaxed_hands_curl_towards_the_palm() -> None:
    left, right = relaxed_hand_pose("left"), relaxed_hand_pose("right")
    assert (left[:12, 2] < 0).all() and (right[:12, 2] > 0).all()
    assert torch.allclose(left[:, 2], -right[:, 2])


def _walk_feet(t: int = 60) -> np.ndarray:
    """Body keypoints: torso 300 px tall; the left foot planted, the right foot swinging 600 px/s, 120 px higher."""
    kp = np.zeros((t, 33, 3))
    kp[..., 2] = 0.9
    kp[:, 11, :2] = (280, 100)
    kp[:, 12, :2] = (320, 100)
    kp[:, 23, :2] = (285, 400)
    kp[:, 24, :2] = (315, 400)
    x = 300 + 600 * np.arange(t) / 30.0
    for i, lm in enumerate(FOOT_LANDMARKS):
        if i < 2:
            kp[:, lm, :2] = (250 + 10 * i, 900)
        else:
            kp[:, lm, 0], kp[:, lm, 1] = x, 780
    return kp


def test_foot_contacts_from_still_low_feet() -> None:
    kp = _walk_feet()
    contacts = detect_foot_contacts(kp, np.ones(len(kp), bool), 30.0)
    assert contacts.shape == (60, 4)
    assert contacts[:, :2].min() > 0.9  # planted and lowest
    assert contacts[:, 2:].max() < 0.05  # moving and high
    invalid = np.ones(len(kp), bool)
    invalid[10:20] = False
    assert detect_foot_contacts(kp, invalid, 30.0)[10:20].max() == 0.0


def test_a_foot_low_in_3d_but_high_in_the_image_is_planted() -> None:
    """Seen from above, a still foot farther from the camera shows 120 px (0.12 body heights) higher in the image:
    the 3D heights, level, plant it; a foot lifted in 3D as well is not."""
    kp = _walk_feet()
    kp[:, FOOT_LANDMARKS[2:], 0] = 300.0  # the right foot still, behind the left one
    still = np.ones(len(kp), bool)
    assert detect_foot_contacts(kp, still, 30.0)[:, 2:].max() < 0.05
    level = np.zeros((len(kp), 4))
    assert detect_foot_contacts(kp, still, 30.0, heights=level).min() > 0.9
    lifted = level.copy()
    lifted[:, 2:] = 0.15
    planted = detect_foot_contacts(kp, still, 30.0, heights=lifted)
    assert planted[:, :2].min() > 0.9 and planted[:, 2:].max() < 0.05


def test_unseen_feet_stand_while_the_hips_stay_put() -> None:
    kp = _walk_feet()
    seen = detect_foot_contacts(kp, np.ones(60, bool), 30.0)
    whole = (2000, 1000)  # the feet (y 780 and 900, x up to 1480) inside the image
    size = (2000, 720)  # the feet below the image: a close-up
    out = unseen_feet_standing(kp, np.ones(60, bool), 30.0, size, seen)
    assert out.min() > 0.9  # hips still: both feet planted, the swinging one included
    np.testing.assert_array_equal(unseen_feet_standing(kp, np.ones(60, bool), 30.0, whole, seen), seen)
    moving = kp.copy()
    moving[:, [11, 12, 23, 24], 0] += (600 * np.arange(60) / 30.0)[:, None]  # hips cross the image at 2 heights/s
    assert unseen_feet_standing(moving, np.ones(60, bool), 30.0, size, seen).max() < 0.05
    unsure = kp.copy()
    unsure[:, FOOT_LANDMARKS[2:], 2] = 0.1  # the right foot inside the image but unsure; the left one seen
    held = unseen_feet_standing(unsure, np.ones(60, bool), 30.0, whole, seen)
    assert held[:, 2:].min() > 0.9 and np.array_equal(held[:, :2], seen[:, :2])
    masked = np.ones(60, bool)
    masked[10:20] = False
    assert unseen_feet_standing(kp, masked, 30.0, size, seen)[10:20].max() == seen[10:20].max()


K_TEST = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])


def _turn_y(deg: np.ndarray) -> np.ndarray:
    """Rotations (T,3,3) about the vertical axis by `deg` (T,)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    out = np.zeros((len(a), 3, 3))
    out[:, 0, 0], out[:, 0, 2], out[:, 1, 1], out[:, 2, 0], out[:, 2, 2] = c, s, 1.0, -s, c
    return out


def _seen(world: np.ndarray, r: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (T,F,2) and depths (T,F) of world points (T,F,3) through cameras R (T,3,3), t (T,3)."""
    cam = np.einsum("tij,tfj->tfi", r, world) + t[:, None]
    px = cam @ K_TEST.T
    return px[..., :2] / px[..., 2:3], cam[..., 2]


def test_image_velocity_is_the_points_own_motion_under_a_moving_camera() -> None:
    frames = np.arange(20)
    # a pan: the camera turns 2 deg a frame in place; two points stand still 4 and 6 m away
    pan_r, pan_t = _turn_y(2.0 * frames), np.zeros((20, 3))
    still = np.broadcast_to(np.array([[0.5, 1.0, 4.0], [-0.3, 0.8, 6.0]]), (20, 2, 3))
    px, depth = _seen(still, pan_r, pan_t)
    assert np.linalg.norm(image_velocity(px, 30.0), axis=-1).min() > 900.0  # the pan sweeps them across
    pan = CameraMotion(pan_r, pan_t, K_TEST)
    assert np.abs(image_velocity(px, 30.0, pan, depth)).max() < 1e-6
    assert np.abs(image_velocity(px, 30.0, pan, 2.0 * depth)).max() < 1e-6  # a turn moves every depth alike
    np.testing.assert_allclose(image_velocity(px, 30.0), np.gradient(px, axis=0) * 30.0)
    # circling 4 m around a foot walking 0.3 m/s across the view: its own motion is f v / z = 75 px/s sideways
    orbit_r, orbit_t = _turn_y(3.0 * frames), np.broadcast_to(np.array([0.0, 0.0, 4.0]), (20, 3))
    walking = np.zeros((20, 1, 3))
    walking[:, 0, 0] = 0.3 * frames / 30.0
    walking[:, 0, 1] = 0.9
    px, depth = _seen(walking, orbit_r, orbit_t)
    own = image_velocity(px, 30.0, CameraMotion(orbit_r, orbit_t, K_TEST), depth)[:, 0]
    assert np.linalg.norm(own[0]) == pytest.approx(75.0, rel=0.01)
    frozen = _seen(walking[1:], orbit_r[1:], orbit_t[1:])[0] - _seen(walking[:-1], orbit_r[1:], orbit_t[1:])[0]
    np.testing.assert_allclose(own[1:-1], 15.0 * (frozen[:-1, 0] + frozen[1:, 0]), atol=1e-6)  # frame t+1's view


def test_a_pan_does_not_lift_planted_feet() -> None:
    """The walking feet seen by a camera turning 1 deg a frame: with the camera's motion the planted foot is
    still planted and the swinging one still swings; without it neither counts as planted. A foot still in the
    image stays planted when the camera's motion is wrong (a rough solve shaking 3 deg a frame)."""
    kp = _walk_feet(30)
    r = _turn_y(-1.0 * np.arange(len(kp)))
    homography = K_TEST @ r @ np.linalg.inv(K_TEST)  # where a turn sends the pixels (at any depth)
    moved = np.concatenate([kp[..., :2], np.ones((*kp.shape[:2], 1))], -1) @ homography.transpose(0, 2, 1)
    panned = kp.copy()
    panned[..., :2] = moved[..., :2] / moved[..., 2:3]
    camera = CameraMotion(r, np.zeros((len(kp), 3)), K_TEST)
    depth = np.full((len(kp), 4), 5.0)
    seen = detect_foot_contacts(panned, np.ones(len(kp), bool), 30.0, camera=camera, depth=depth)
    assert seen[:, :2].min() > 0.9 and seen[:, 2:].max() < 0.05
    assert detect_foot_contacts(panned, np.ones(len(kp), bool), 30.0)[:, :2].max() < 0.05
    rough = CameraMotion(_turn_y(3.0 * np.sin(np.arange(len(kp)))), np.zeros((len(kp), 3)), K_TEST)
    np.testing.assert_allclose(detect_foot_contacts(kp, np.ones(len(kp), bool), 30.0, camera=rough, depth=depth),
                               detect_foot_contacts(kp, np.ones(len(kp), bool), 30.0), atol=0.02)
    size = (2000, 720)  # a close-up: the feet below the image, the hips still while the camera turns
    assert unseen_feet_standing(panned, np.ones(len(kp), bool), 30.0, size, seen, camera=camera,
                                depth=depth[:, 0]).min() > 0.9
    assert unseen_feet_standing(panned, np.ones(len(kp), bool), 30.0, size, seen)[:, 2:].max() < 0.05


def test_camera_translation_recovers_a_known_placement() -> None:
    gen = torch.Generator().manual_seed(0)
    rel = torch.randn(5, 12, 3, generator=gen) * 0.4
    truth = torch.tensor([[0.3, -0.2, 4.0], [1.0, 0.5, 6.0], [-1.0, 0.0, 3.0], [0.0, 0.0, 2.0], [0.2, 0.1, 9.0]])
    k = torch.tensor([[900.0, 0, 640], [0, 900.0, 360], [0, 0, 1]])
    uv = project(rel + truth[:, None], k)
    est = camera_translation(rel, uv, torch.ones(5, 12), k)
    assert torch.allclose(est, truth, atol=1e-3)
    none = camera_translation(rel, uv, torch.zeros(5, 12), k)
    assert torch.isnan(none).all()


def test_contact_anchors_are_the_mean_of_each_planted_run() -> None:
    points = np.zeros((6, 2, 3))
    points[:, 0, 0] = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    points[:, 1, 2] = 7.0
    contacts = np.array([[0.9, 0.0], [0.8, 0.9], [0.9, 0.0], [0.1, 0.0], [0.7, 0.0], [0.6, 0.0]])
    anchors, weights = contact_anchors(points, contacts)
    np.testing.assert_allclose(anchors[:3, 0, 0], 1.0)  # frames 0-2: mean x of 0, 1, 2
    np.testing.assert_allclose(anchors[4:, 0, 0], 4.5)  # frames 4-5
    np.testing.assert_allclose(weights[:, 0], [0.9, 0.8, 0.9, 0.0, 0.7, 0.6], rtol=1e-6)
    assert not weights[:, 1].any()  # a single planted frame holds nothing


def test_camera_scale_from_ground_height_and_from_smooth_motion() -> None:
    t = 40
    r = np.repeat(np.diag([1.0, -1.0, -1.0])[None], t, 0)
    scale = 2.5
    centres_units = np.stack([np.linspace(0, 2, t), np.full(t, 0.6), np.zeros(t)], -1)  # 1.5 m high in metres
    t_w2c = -np.einsum("tij,tj->ti", r, centres_units)
    feet_c = np.zeros((t, 2, 3))
    feet_c[:, :, 1] = 1.5  # 1.5 m below the camera (camera y points down)
    feet_c[:, :, 2] = 4.0
    pelvis_c = feet_c[:, 0] - np.array([0, 0.9, 0])
    assert camera_scale(pelvis_c, feet_c, r, t_w2c, True, np.ones(t, bool)) == pytest.approx(scale)
    # No ground: a pelvis that truly stands still in the world while the camera accelerates.
    ts = np.linspace(0, 1, t)
    centres_units = np.stack([np.sin(3 * ts), 0.2 * ts**2, 0 * ts], -1)
    t_w2c = -np.einsum("tij,tj->ti", r, centres_units)
    pelvis_w = np.array([0.5, 1.0, -4.0])
    pelvis_c = np.einsum("tij,tj->ti", r, pelvis_w - scale * centres_units)
    assert camera_scale(pelvis_c, feet_c, r, t_w2c, False, np.ones(t, bool)) == pytest.approx(scale, rel=1e-3)
    static = np.zeros((t, 3))
    assert camera_scale(pelvis_c, feet_c, r, static, False, np.ones(t, bool)) == 1.0


def test_a_ground_scale_far_from_the_smoothest_one_gives_way() -> None:
    t, scale = 40, 2.5
    r = np.repeat(np.diag([1.0, -1.0, -1.0])[None], t, 0)
    swing = np.sin(3 * np.linspace(0, 1, t))  # the camera accelerates sideways; the person stands still
    pelvis_w = np.array([0.5, 0.9, -4.0])
    centre_m = np.stack([scale * swing, np.full(t, 1.5), np.zeros(t)], -1)  # truly 1.5 m above the floor
    pelvis_c = np.einsum("tij,tj->ti", r, pelvis_w - centre_m)
    feet_c = np.einsum("tij,tj->ti", r, np.array([0.5, 0.0, -4.0]) - centre_m)[:, None].repeat(2, 1)

    def case(height_units: float) -> float:
        centres = np.stack([swing, np.full(t, height_units), np.zeros(t)], -1)  # the solve's own units
        return camera_scale(pelvis_c, feet_c, r, -np.einsum("tij,tj->ti", r, centres), True, np.ones(t, bool))

    assert case(0.6) == pytest.approx(scale)  # a height consistent with the solve's path: the ground decides
    # a path solved almost on its own ground plane: the height says 150 m per unit, the motion says 2.5
    assert case(0.01) == pytest.approx(scale, rel=1e-3)


def test_fill_and_smooth_along_time() -> None:
    x = torch.tensor([[0.0], [9.0], [9.0], [3.0], [9.0]])
    valid = np.array([True, False, False, True, False])
    assert fill_vectors(x, valid)[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 3.0]
    rot = axis_angle_to_matrix(torch.tensor([[0.0, 0, 0], [5.0, 0, 0], [0.0, 0, 1.0]]))
    mid = fill_rotations(rot, np.array([True, False, True]))[1]
    assert geodesic_angle(mid, axis_angle_to_matrix(torch.tensor([0.0, 0, 0.5]))) < 2e-3
    const = torch.ones(7, 2, 3)
    assert torch.allclose(smooth_vectors(const, 2.0), const)
    steady = axis_angle_to_matrix(torch.tensor([0.0, 0.3, 0.0]).expand(6, 3))
    assert geodesic_angle(smooth_rotations(steady, 1.5), steady).max() < 1e-3


def test_smooth_vectors_is_a_gaussian_with_held_ends() -> None:
    """An impulse spreads into the normalised 7-tap Gaussian (sigma 1); at the ends the frames beyond count as the
    end frame; the gradient is the operator's transpose (gradcheck in float64)."""
    taps = np.exp(-0.5 * np.arange(-3, 4) ** 2)
    taps /= taps.sum()
    impulse = torch.zeros(11, 1, dtype=torch.float64)
    impulse[5] = 1.0
    assert np.allclose(smooth_vectors(impulse, 1.0)[2:9, 0].numpy(), taps)
    assert float(smooth_vectors(impulse, 1.0)[[0, 1, 9, 10]].abs().max()) == 0.0
    first = torch.zeros(11, 1, dtype=torch.float64)
    first[0] = 1.0
    assert np.isclose(float(smooth_vectors(first, 1.0)[0, 0]), taps[:4].sum())
    assert np.isclose(float(smooth_vectors(first, 1.0)[3, 0]), taps[0])
    x = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: smooth_vectors(v, 0.8), (x,))
    assert smooth_vectors(x, 0.0) is x


def test_optimiser_converges_reports_and_cancels() -> None:
    x = torch.zeros(3, requires_grad=True)
    target = torch.tensor([1.0, -2.0, 0.5])
    seen: list[tuple[int, int]] = []

    def loss() -> tuple[torch.Tensor, dict[str, float]]:
        value = ((x - target) ** 2).sum()
        return value, {"sq": float(value.detach())}

    trace = optimise([x], loss, 300, lr=0.05, progress=lambda i, n: seen.append((i, n)))
    assert torch.allclose(x.detach(), target, atol=1e-2)
    assert seen[0] == (0, 300) and seen[-1] == (300, 300)
    assert trace.losses[-1] < trace.losses[0]
    y = torch.zeros(3, requires_grad=True)
    optimise([y], lambda: (((y - target) ** 2).sum(), {}), 20, lr=1.0, method="lbfgs")
    assert torch.allclose(y.detach(), target, atol=1e-4)

    def stop() -> None:
        raise Cancelled("stop")

    with pytest.raises(Cancelled):
        optimise([x], loss, 5, check_cancelled=stop)


def test_joint_confidence_maps_landmarks_to_joints() -> None:
    body = np.full((2, 33), 0.8)
    body[1] = 0.0
    hands = np.zeros((2, 2, 21))
    hands[0, 0] = 0.6
    conf = joint_confidence(body, hands)
    assert conf.shape == (2, 55)
    assert conf[0, JOINT_INDEX["left_knee"]] == pytest.approx(0.8)
    assert conf[0, JOINT_INDEX["left_index2"]] == pytest.approx(0.6)
    assert conf[0, JOINT_INDEX["right_index2"]] == 0.0
    assert conf[1].max() == 0.0


def test_ground_track_follows_a_sloped_floor_where_feet_are_seen_planted() -> None:
    t = 300
    feet = np.linspace(0.0, 1.5, t)[:, None] + np.array([0.0, 0.1, 0.02, 0.3])  # lowest point climbs 1.5 m
    valid = np.ones(t, bool)
    planted = np.zeros((t, 4))
    planted[:200, 0] = 1.0  # seen planted on the first 200 frames only
    track = ground_track(feet, planted, valid, fps=30.0, seconds=1.0)
    err = np.abs(track[40:140] - feet[40:140, 0])  # the floor climbs 0.5 m over these frames
    assert err.max() < 0.03 and np.abs(ground_height(feet, valid) - feet[40:140, 0]).max() > 0.5
    assert track[-1] == pytest.approx(ground_height(feet, valid), abs=0.02)  # far from planted frames: one height
    assert ground_height(feet, valid) == pytest.approx(np.percentile(feet[:, 0], 10.0))
    no_contacts = ground_track(feet, np.zeros((t, 4)), valid, fps=30.0)
    np.testing.assert_allclose(no_contacts, ground_height(feet, valid))

