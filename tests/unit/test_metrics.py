"""Metrics against hand-made cases whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from backend.eval import metrics as m
from protocol.errors import BadRequest


def _cloud(frames: int, joints: int = 5, seed: int = 0) -> np.ndarray:
    """A random static point cloud repeated over `frames` frames, (T,J,3) metres."""
    pts = np.random.default_rng(seed).normal(size=(joints, 3)) * 0.3
    return np.repeat(pts[None], frames, axis=0)


def test_fit_similarity_recovers_a_known_transform() -> None:
    src = np.random.default_rng(1).normal(size=(10, 3))
    rot = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    dst = 2.5 * src @ rot.T + np.array([1.0, -2.0, 0.5])
    sim = m.fit_similarity(src, dst)
    assert sim.scale == pytest.approx(2.5)
    np.testing.assert_allclose(sim.rotation, rot, atol=1e-10)
    np.testing.assert_allclose(sim.translation, [1.0, -2.0, 0.5], atol=1e-10)
    rigid = m.fit_similarity(src, dst, with_scale=False)
    assert rigid.scale == pytest.approx(1.0)
    np.testing.assert_allclose(rigid.rotation, rot, atol=1e-10)


def test_fit_similarity_never_reflects() -> None:
    src = np.random.default_rng(2).normal(size=(8, 3))
    dst = src * np.array([1.0, 1.0, -1.0])  # a mirror image
    assert np.linalg.det(m.fit_similarity(src, dst).rotation) == pytest.approx(1.0)


def test_mpjpe_known_offsets_and_root_alignment() -> None:
    gt = np.zeros((3, 2, 3))
    pred = gt.copy()
    pred[:, 1, 0] = 0.01  # one of two joints 10 mm off
    np.testing.assert_allclose(m.mpjpe(pred, gt, root=None), [5.0, 5.0, 5.0])
    shifted = gt + np.array([0.3, 0.1, -2.0])
    np.testing.assert_allclose(m.mpjpe(shifted, gt, root=(0, 1)), 0.0, atol=1e-9)
    assert m.mpjpe(pred, gt, root=None, valid=np.array([True, False, True])).shape == (2,)
    np.testing.assert_allclose(m.mpjpe(pred, gt, root=None, joints=[1]), [10.0] * 3)


def test_pa_mpjpe_three_collinear_points() -> None:
    # gt (-1,0,0),(0,0,0),(1,0,0); pred lifts the middle point by 1 m. Worked by hand: scale 3/4,
    # identity rotation, errors sqrt(1/8), 1/2, sqrt(1/8) m.
    gt = np.array([[[-1.0, 0, 0], [0, 0, 0], [1, 0, 0]]])
    pred = np.array([[[-1.0, 0, 0], [0, 1, 0], [1, 0, 0]]])
    expected = (2 * np.sqrt(1 / 8) + 0.5) / 3 * 1000
    np.testing.assert_allclose(m.pa_mpjpe(pred, gt), [expected], rtol=1e-9)


def test_pa_mpjpe_ignores_similarity_and_pve_follows_joints() -> None:
    gt = _cloud(4, 7)
    rot = Rotation.from_rotvec([0.0, 2.0, 0.1]).as_matrix()
    pred = 0.8 * gt @ rot.T + 1.0
    np.testing.assert_allclose(m.pa_mpjpe(pred, gt), 0.0, atol=1e-9)
    np.testing.assert_allclose(m.pa_pve(pred, gt), 0.0, atol=1e-9)
    verts_gt = gt[:, :3] + 0.05
    moved = verts_gt + np.array([0.0, 0.0, 0.02])
    # joints moved rigidly with the vertices: PVE after root alignment is zero; with still joints it is 20 mm
    np.testing.assert_allclose(m.pve(moved, verts_gt, gt + np.array([0.0, 0.0, 0.02]), gt), 0.0, atol=1e-9)
    np.testing.assert_allclose(m.pve(moved, verts_gt, gt, gt), 20.0, atol=1e-9)


def test_mpjve_constant_velocity() -> None:
    gt = np.zeros((5, 1, 3))
    pred = gt.copy()
    pred[:, 0, 0] = 0.01 * np.arange(5)  # 10 mm per frame
    np.testing.assert_allclose(m.mpjve(pred, gt, root=None), [10.0] * 4)
    np.testing.assert_allclose(m.mpjve(pred, gt, root=None, fps=30), [300.0] * 4)


def test_accel_error_alternating_joint_and_mask() -> None:
    gt = np.zeros((6, 1, 3))
    pred = gt.copy()
    pred[:, 0, 1] = 0.001 * (-1.0) ** np.arange(6)  # +-1 mm: second difference 4 mm/frame^2
    np.testing.assert_allclose(m.accel_error(pred, gt, root=None), [4.0] * 4)
    np.testing.assert_allclose(m.accel_error(pred, gt, root=None, fps=30), [3600.0] * 4)
    valid = np.array([True, True, True, False, True, True])
    # frame 3 invalidates the windows centred on 2, 3 and 4: one window (centred on 1) is left
    assert m.accel_error(pred, gt, root=None, valid=valid).shape == (1,)


def test_motion_derivatives_and_jitter_of_a_cubic() -> None:
    t = np.arange(8, dtype=float)
    x = np.zeros((8, 1, 3))
    x[:, 0, 0] = 0.001 * t**3  # third difference is 6 mm per frame^3
    d = m.motion_derivatives(x, fps=10)
    np.testing.assert_allclose(d.jerk, 6.0 * 1000)  # mm/s^3
    np.testing.assert_allclose(m.jitter(x, fps=10), 0.6)  # 6 m/s^3 = 0.6 x (10 m/s^3)
    lin = np.zeros((4, 2, 3))
    lin[:, :, 2] = 0.02 * np.arange(4)[:, None]
    d = m.motion_derivatives(lin, fps=30)
    np.testing.assert_allclose(d.velocity, 600.0)
    np.testing.assert_allclose(d.acceleration, 0.0, atol=1e-9)


def test_world_metrics_align_per_chunk() -> None:
    gt = _cloud(150, 6)
    pred = gt.copy()
    pred[100:] += np.array([3.0, 0.0, -1.0])  # second chunk is offset: aligned away in both metrics
    np.testing.assert_allclose(m.w_mpjpe(pred, gt, joints=None), 0.0, atol=1e-9)
    np.testing.assert_allclose(m.wa_mpjpe(pred, gt, joints=None), 0.0, atol=1e-9)
    # the offset appears inside the first chunk after its first two frames: W-MPJPE sees it fully
    pred2 = gt.copy()
    pred2[2:100] += np.array([0.05, 0.0, 0.0])
    w = m.w_mpjpe(pred2, gt, joints=None)
    assert w.shape == (150,)
    np.testing.assert_allclose(w[:2], 0.0, atol=1e-9)
    np.testing.assert_allclose(w[2:100], 50.0, atol=1e-9)
    assert m.wa_mpjpe(pred2, gt, joints=None)[:100].mean() < w[:100].mean()


def test_rte_of_a_trajectory_twice_as_long() -> None:
    gt = np.zeros((11, 3))
    gt[:, 0] = np.arange(11) / 10  # 1 m straight walk
    pred = gt * 2.0
    # rigid fit centres both; residual is |x_t - 0.5|, mean 3/11 m, over a 1 m path
    np.testing.assert_allclose(m.rte(pred, gt).mean(), 3 / 11 * 100, rtol=1e-9)
    rot = Rotation.from_rotvec([0.0, 1.0, 0.0]).as_matrix()
    np.testing.assert_allclose(m.rte(gt @ rot.T + 5.0, gt), 0.0, atol=1e-9)
    with pytest.raises(BadRequest):
        m.rte(gt, np.zeros((11, 3)))


def test_foot_sliding_on_contact_frames() -> None:
    gt = np.zeros((5, 2, 3))
    gt[:, 1, 0] = 0.1 * np.arange(5)  # second foot swings: no contact
    pred = gt.copy()
    pred[:, 0, 2] = 0.002 * np.arange(5)  # planted foot slides 2 mm per frame
    contact = m.contact_from_velocity(gt)
    assert contact[:, 0].all() and not contact[:, 1].any()
    np.testing.assert_allclose(m.foot_sliding(pred, contact), [2.0] * 4)
    per_frame = np.array([[True, False]] * 5)
    per_frame[2, 0] = False  # lifting the foot at frame 2 removes pairs (1,2) and (2,3)
    np.testing.assert_allclose(m.foot_sliding(pred, per_frame), [2.0, 2.0])


def test_hand_metrics_root_alignment_and_chunks() -> None:
    gt = _cloud(130, 55, seed=3)
    idx = m.hand_joints("left")
    assert idx[0] == m.LEFT_WRIST and len(idx) == 16
    pred = gt.copy()
    pred[:, list(idx)] += np.array([0.1, 0.2, 0.3])  # whole hand moved: root-aligned metrics are zero
    np.testing.assert_allclose(m.ra_mpjpe(pred, gt, idx), 0.0, atol=1e-9)
    np.testing.assert_allclose(m.ra_acc(pred, gt, idx), 0.0, atol=1e-9)
    np.testing.assert_allclose(m.ga_mpjpe(pred, gt, idx), 0.0, atol=1e-9)
    pred[:, idx[1], 0] += 0.016  # one finger joint 16 mm off: 1 mm mean over 16 joints in RA-MPJPE
    np.testing.assert_allclose(m.ra_mpjpe(pred, gt, idx), 1.0, atol=1e-9)
    assert m.g_mpjpe(pred, gt, idx).shape == (130,)
    with pytest.raises(BadRequest):
        m.hand_joints("middle")  # type: ignore[arg-type]


def test_evaluate_summaries_are_zero_for_perfect_predictions() -> None:
    rng = np.random.default_rng(4)
    t = np.arange(40)
    gt = rng.normal(size=(1, 55, 3)) * 0.3 + np.stack([0.03 * t, 0 * t, 0 * t], axis=1)[:, None]
    body = m.evaluate_body(gt, gt, gt, gt, fps=30.0)
    for key in ("mpjpe", "pa_mpjpe", "mpjve", "accel", "w_mpjpe", "wa_mpjpe", "rte", "jitter"):
        assert body[key] == pytest.approx(0.0, abs=1e-6), key
    whole = m.evaluate_body(gt + 0.01, gt, gt, gt, fps=30.0, joints=m.WHOLE_BODY_JOINTS)
    assert whole["mpjpe"] == pytest.approx(0.0, abs=1e-6)  # a translation is removed by the hip alignment
    hand = m.evaluate_hand(gt, gt, "right")
    assert all(v == pytest.approx(0.0, abs=1e-6) for v in hand.values())
    with pytest.raises(BadRequest):
        m.evaluate_hand(gt[:, :22], gt[:, :22], "right")


def test_shape_mismatch_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        m.mpjpe(np.zeros((3, 2, 3)), np.zeros((3, 3, 3)))
    with pytest.raises(BadRequest):
        m.mpjpe(np.zeros((3, 2, 3)), np.zeros((3, 2, 3)), valid=np.ones(4, bool))


def test_up_error_known_angles_and_valid_frames() -> None:
    """Angles between up directions (any length), frames left out by `valid`."""
    gt = np.array([[0.0, -1.0, 0.0]] * 3)
    pred = np.array([[0.0, -2.0, 0.0], [1.0, 0.0, 0.0], [0.0, -1.0, -1.0]])
    np.testing.assert_allclose(m.up_error(pred, gt), [0.0, 90.0, 45.0], atol=1e-9)
    np.testing.assert_allclose(m.up_error(pred, gt, valid=np.array([False, True, False])), [90.0])
