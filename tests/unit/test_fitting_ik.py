"""The landmark rig reproduces the body model, and analytic IK recovers known poses from exact landmarks."""

from __future__ import annotations

import pytest
import torch

from backend.fitting.ik import hinge_axis, solve_ik, swing
from backend.fitting.rig import LandmarkRig
from backend.geometry.rotations import axis_angle_to_matrix, geodesic_angle
from backend.models.base import BodyModel, BodyPose
from backend.models.loader import load_body_model
from protocol.skeleton import JOINT_INDEX, LEFT_HAND_JOINTS, RIGHT_HAND_JOINTS
from tests.support.skeleton_model import SkeletonBodyModel

THUMBS = {JOINT_INDEX[f"{s}_thumb{k}"] for s in ("left", "right") for k in (1, 2, 3)}
FINGERS = [j for j in (*LEFT_HAND_JOINTS, *RIGHT_HAND_JOINTS) if j not in THUMBS]


@pytest.fixture(scope="module", params=["skeleton", "default"])
def model(request: pytest.FixtureRequest) -> BodyModel:
    """The tiny test skeleton and the shipped default body model."""
    return SkeletonBodyModel() if request.param == "skeleton" else load_body_model("default")


def _pose(t: int, seed: int = 0) -> BodyPose:
    """Random poses the landmarks determine: hinge knees/elbows, twist-free forearms, shared spine and neck."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape: int, sd: float = 0.2) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * sd

    def u(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=g)

    pose = BodyPose.zeros(t)
    pose.global_orient = r(t, 3, sd=0.6)
    bp = torch.zeros(t, 21, 3)
    for i in (0, 1):
        bp[:, i] = torch.stack([-u(t) * 1.2, r(t), r(t)], -1)  # hips
    for i in (3, 4):
        bp[:, i, 0] = u(t) * 1.5 + 0.3  # knees
    spine = torch.stack([torch.zeros(t), r(t), torch.zeros(t)], -1)
    bp[:, 2], bp[:, 5], bp[:, 8] = spine, spine, spine
    neck = r(t, 3)
    bp[:, 11], bp[:, 14] = neck, neck
    bp[:, 6], bp[:, 7] = r(t, 3), r(t, 3)  # ankles
    bp[:, 15] = torch.stack([r(t), r(t), -u(t)], -1)  # shoulders
    bp[:, 16] = torch.stack([r(t), r(t), u(t)], -1)
    bp[:, 17, 1] = -(u(t) * 1.5 + 0.4)  # elbows
    bp[:, 18, 1] = u(t) * 1.5 + 0.4
    bp[:, 19], bp[:, 20] = r(t, 3, sd=0.3), r(t, 3, sd=0.3)  # wrists
    pose.body_pose = bp
    for name, sign in (("left_hand_pose", -1.0), ("right_hand_pose", 1.0)):
        hand = torch.zeros(t, 15, 3)
        hand[:, :12, 2] = sign * u(t, 12) * 0.8  # finger flexion
        hand[:, 0:12:3, 1] = r(t, 4, sd=0.15)  # knuckle spread
        hand[:, 12:] = r(t, 3, 3, sd=0.05)  # thumbs: small
        setattr(pose, name, hand)
    return pose


def test_rig_reproduces_the_model(model: BodyModel) -> None:
    rig = LandmarkRig(model)
    pose = _pose(8, seed=3)
    pose.betas = torch.randn(1, 10, generator=torch.Generator().manual_seed(1)) * 0.5
    pose.transl = torch.randn(8, 3)
    with torch.no_grad():
        ref = model(pose)
        out = rig(axis_angle_to_matrix(pose.full_pose()), ref.joints[:, 0], pose.betas[0])
    assert (out.joints - ref.joints).norm(dim=-1).max() < 1e-3
    assert (out.landmarks_body - ref.landmarks_body).norm(dim=-1).max() < 2e-3
    assert (out.landmarks_hands - ref.landmarks_hands).norm(dim=-1).max() < 2e-3
    assert torch.allclose(rig.transl_from_root(ref.joints[:, 0], pose.betas[0]), pose.transl, atol=1e-4)


def test_held_poses_place_points_like_the_full_rig(model: BodyModel) -> None:
    """The solve's shortcuts (only the root moves; only the legs, or legs and a hand, move) give the full rig's
    points for the moved pose, and a free set that is not whole subtrees is refused."""
    rig = LandmarkRig(model)
    pose = _pose(6, seed=4)
    betas = torch.randn(10, generator=torch.Generator().manual_seed(2)) * 0.5
    rot = axis_angle_to_matrix(pose.full_pose())
    root = torch.randn(6, 3)
    moved = axis_angle_to_matrix(_pose(6, seed=5).full_pose())
    legs = [JOINT_INDEX[f"{s}_{p}"] for p in ("hip", "knee", "ankle", "foot") for s in ("left", "right")]

    def close(a: torch.Tensor, b: torch.Tensor) -> bool:
        return float((a - b).norm(dim=-1).max()) < 1e-5

    new_root = torch.cat([moved[:, :1], rot[:, 1:]], dim=1)
    full = rig(new_root, root + 1.0, betas)
    held = rig.held_below_root(rot).place(moved[:, 0], root + 1.0, betas)
    assert close(held.joints, full.joints) and close(held.landmarks, full.landmarks)
    for free in (legs, legs[::-1] + list(LEFT_HAND_JOINTS)):
        new = rot.clone()
        new[:, free] = moved[:, free]
        full = rig(new, root, betas)
        limbs = rig.held_except(rot, root, betas, free).place(moved[:, free])
        assert close(limbs.joints, full.joints) and close(limbs.landmarks, full.landmarks)
        assert not close(limbs.joints, rig(rot, root, betas).joints)
    with pytest.raises(ValueError, match="whole subtrees"):
        rig.held_except(rot, root, betas, [JOINT_INDEX["left_knee"]])


def test_ik_recovers_known_poses_from_exact_landmarks(model: BodyModel) -> None:
    rig = LandmarkRig(model)
    pose = _pose(48)
    with torch.no_grad():
        out = model(pose)
    ik = solve_ik(rig, out.landmarks_body, out.landmarks_hands)
    err = torch.rad2deg(geodesic_angle(axis_angle_to_matrix(pose.full_pose()), ik.local_rot))
    body = err[:, :22]
    assert body.mean() < 2.0
    assert body.mean(0).max() < 4.0  # every body joint within a few degrees on average
    assert err[:, FINGERS].mean() < 5.0
    assert err[:, sorted(THUMBS)].mean() < 12.0  # thumbs: swing only, no twist information
    glob = torch.rad2deg(geodesic_angle(out.joint_rotations[:, :22], ik.global_rot[:, :22]))
    assert glob.mean() < 2.0


def test_missing_hands_take_the_given_relaxed_pose() -> None:
    model = SkeletonBodyModel()
    rig = LandmarkRig(model)
    pose = _pose(4)
    with torch.no_grad():
        out = model(pose)
    relaxed = torch.full((2, 15, 3), 0.1)
    valid = torch.tensor([[True, False]] * 4)
    ik = solve_ik(rig, out.landmarks_body, out.landmarks_hands, valid, relaxed_hands=relaxed)
    right = ik.axis_angle()[:, list(RIGHT_HAND_JOINTS)]
    assert torch.allclose(right, relaxed[1].expand(4, 15, 3), atol=1e-4)


def test_swing_and_hinge_axis_geometry() -> None:
    u, v = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    assert torch.allclose(swing(u, v) @ u, v, atol=1e-6)
    # A knee bent by 60 degrees about +x: thigh down, shin back.
    thigh = torch.tensor([0.0, -1.0, 0.0])
    shin = axis_angle_to_matrix(torch.tensor([1.0472, 0.0, 0.0])) @ thigh
    axis, bend = hinge_axis(torch.tensor([0.0]), torch.tensor([0.0]), thigh, shin)
    assert torch.allclose(axis, torch.tensor([1.0, 0.0, 0.0]), atol=1e-5)
    assert bend.item() == pytest.approx(1.0472, abs=1e-4)
