"""Forward kinematics, skinning and landmark regression against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import torch

from backend.geometry.rotations import axis_angle_to_matrix
from backend.models.base import BodyPose
from backend.models.landmarks import Term, compile_table
from backend.models.lbs import (
    blend_shapes,
    dense_weights,
    forward_kinematics,
    pose_body,
    regress_landmarks,
    skin,
    top_k_weights,
)

CHAIN = (-1, 0, 1)  # root at the origin, two unit bones along +X


def _chain_joints() -> torch.Tensor:
    return torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]]])


def _rots(*aa: tuple[float, float, float]) -> torch.Tensor:
    return axis_angle_to_matrix(torch.tensor([aa], dtype=torch.float32))


def test_fk_middle_joint_quarter_turn_about_z() -> None:
    posed, rot, _ = forward_kinematics(_rots((0, 0, 0), (0, 0, math.pi / 2), (0, 0, 0)), _chain_joints(), CHAIN)
    torch.testing.assert_close(posed[0], torch.tensor([[0.0, 0, 0], [1, 0, 0], [1, 1, 0]]), atol=1e-6, rtol=0)
    torch.testing.assert_close(rot[0, 2], _rots((0, 0, math.pi / 2))[0, 0], atol=1e-6, rtol=0)


def test_fk_rotations_compose_down_the_chain() -> None:
    # root +90 about Y takes +X to -Z; the middle joint then turns +90 about Z (in the root's frame).
    posed, rot, _ = forward_kinematics(
        _rots((0, math.pi / 2, 0), (0, 0, math.pi / 2), (0, 0, 0)), _chain_joints(), CHAIN)
    torch.testing.assert_close(posed[0, 1], torch.tensor([0.0, 0.0, -1.0]), atol=1e-6, rtol=0)
    # child offset +X -> Rz -> +Y -> Ry -> +Y
    torch.testing.assert_close(posed[0, 2], torch.tensor([0.0, 1.0, -1.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(rot[0, 2], rot[0, 0] @ _rots((0, 0, math.pi / 2))[0, 0], atol=1e-6, rtol=0)


def test_skin_rigid_and_blended_vertices() -> None:
    _, _, transforms = forward_kinematics(
        _rots((0, 0, 0), (0, 0, math.pi / 2), (0, 0, 0)), _chain_joints(), CHAIN)
    points = torch.tensor([[[2.0, 0.0, 0.0], [1.5, 0.0, 0.0], [0.5, 0.0, 0.0]]])
    weights = torch.tensor([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    out = skin(points, transforms, weights)
    # fully on joint 1: (2,0,0) -> (1,1,0); half/half: 0.5*(1.5,0,0) + 0.5*(1,0.5,0); root-only: unchanged
    expected = torch.tensor([[1.0, 1.0, 0.0], [1.25, 0.25, 0.0], [0.5, 0.0, 0.0]])
    torch.testing.assert_close(out[0], expected, atol=1e-6, rtol=0)


def test_blend_shapes_linear() -> None:
    template = torch.tensor([[1.0, 2.0, 3.0]])
    dirs = torch.zeros(1, 3, 2)
    dirs[0, 1, 0], dirs[0, 2, 1] = 1.0, -2.0
    out = blend_shapes(torch.tensor([[0.5, 1.0]]), template, dirs)
    torch.testing.assert_close(out, torch.tensor([[[1.0, 2.5, 1.0]]]))


def test_pose_body_adds_translation_and_shapes_joints() -> None:
    template = torch.tensor([[2.0, 0.0, 0.0]])
    jt = _chain_joints()[0]
    jdirs = torch.zeros(3, 3, 1)
    jdirs[2, 0, 0] = 1.0  # beta 0 lengthens the second bone
    verts, joints, _ = pose_body(
        torch.zeros(1, 3, 3), torch.tensor([[1.0]]), torch.tensor([[0.0, 0.0, 5.0]]), template,
        torch.zeros(1, 3, 1), jt, jdirs, torch.tensor([[0.0, 1.0, 0.0]]), CHAIN)
    torch.testing.assert_close(joints[0, 2], torch.tensor([3.0, 0.0, 5.0]))
    torch.testing.assert_close(verts[0, 0], torch.tensor([2.0, 0.0, 5.0]))


def test_top_k_weights_keeps_largest_and_renormalises() -> None:
    w = np.array([[0.1, 0.5, 0.05, 0.3, 0.05], [0.0, 0.0, 1.0, 0.0, 0.0]])
    idx, top = top_k_weights(w, 2)
    assert idx.tolist()[0] == [1, 3]
    np.testing.assert_allclose(top[0], [0.625, 0.375], rtol=1e-6)
    assert idx[1, 0] == 2 and top[1, 0] == 1.0
    np.testing.assert_allclose(dense_weights(idx, top, 5).sum(axis=1), 1.0, rtol=1e-6)


def test_regressor_combines_vertices_and_joints() -> None:
    table = {"a": (Term("vertex", "tip", 0.5), Term("joint", "j1", 0.5)), "b": (Term("joint", "j0"),)}
    reg = compile_table(table, ["b", "a"], {"tip": 1}, {"j0": 0, "j1": 1}, num_vertices=2)
    points = torch.tensor([[[9.0, 9, 9], [2, 0, 0], [0, 0, 4], [0, 6, 0]]])  # 2 vertices then 2 joints
    out = regress_landmarks(points, reg.indices, reg.weights)
    torch.testing.assert_close(out[0], torch.tensor([[0.0, 0, 4], [1, 3, 0]]))


def test_body_pose_full_pose_round_trip() -> None:
    full = torch.randn(4, 55, 3, generator=torch.Generator().manual_seed(1))
    pose = BodyPose.from_full_pose(full)
    assert pose.body_pose.shape == (4, 21, 3) and pose.jaw_pose.shape == (4, 3)
    torch.testing.assert_close(pose.left_hand_pose, full[:, 25:40])
    torch.testing.assert_close(pose.full_pose(), full)
    assert BodyPose.zeros(3).full_pose().abs().sum() == 0
