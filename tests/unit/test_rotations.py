"""Rotation conversions against closed-form values and round trips."""

import math

import torch

from backend.geometry import rotations as R


def test_axis_angle_quarter_turn_about_z_maps_x_to_y():
    m = R.axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    assert torch.allclose(
        m @ torch.tensor([1.0, 0, 0], dtype=torch.float64), torch.tensor([0.0, 1, 0], dtype=torch.float64), atol=1e-12
    )


def test_zero_rotation_is_identity_and_has_gradient():
    aa = torch.zeros(4, 3, requires_grad=True)
    m = R.axis_angle_to_matrix(aa)
    assert torch.allclose(m, torch.eye(3).expand(4, 3, 3))
    m[:, 0, 1].sum().backward()
    assert torch.isfinite(aa.grad).all()
    assert aa.grad[:, 2].abs().min() > 0.5  # d(R01)/d(z) = -1 at identity


def test_round_trips_including_near_pi():
    g = torch.Generator().manual_seed(0)
    aa = torch.randn(500, 3, generator=g, dtype=torch.float64)
    aa = aa / aa.norm(dim=-1, keepdim=True) * torch.rand(500, 1, generator=g, dtype=torch.float64) * math.pi * 0.999
    m = R.axis_angle_to_matrix(aa)
    assert torch.allclose(R.matrix_to_axis_angle(m), aa, atol=1e-7)
    assert torch.allclose(R.quaternion_to_matrix(R.matrix_to_quaternion(m)), m, atol=1e-10)
    assert torch.allclose(R.rot6d_to_matrix(R.matrix_to_rot6d(m)), m, atol=1e-10)
    assert torch.allclose(R.quaternion_to_axis_angle(R.axis_angle_to_quaternion(aa)), aa, atol=1e-7)


def test_slerp_halfway_and_geodesic():
    q0 = R.axis_angle_to_quaternion(torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64))
    q1 = R.axis_angle_to_quaternion(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    mid = R.quat_slerp(q0, q1, torch.tensor(0.5, dtype=torch.float64))
    assert torch.allclose(
        R.quaternion_to_axis_angle(mid), torch.tensor([0.0, 0.5, 0.0], dtype=torch.float64), atol=1e-9
    )
    ang = R.geodesic_angle(R.quaternion_to_matrix(q0), R.quaternion_to_matrix(q1))
    assert abs(float(ang) - 1.0) < 1e-6
