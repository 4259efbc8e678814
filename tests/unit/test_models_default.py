"""The built-in default body model: skeleton, T-pose, world-aligned joint frames, skin, shape, landmarks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backend.models.base import BodyPose, HandPose
from backend.models.default_model import DEFAULT_MODEL_PATH, DefaultBodyModel, DefaultModelData
from backend.models.loader import default_model_data, load_body_model, load_hand_model
from protocol.errors import ModelMissing
from protocol.skeleton import JOINT_INDEX as J
from protocol.skeleton import JOINT_NAMES, MEDIAPIPE_HAND_NAMES, MEDIAPIPE_POSE_NAMES, PARENTS

MP = {n: i for i, n in enumerate(MEDIAPIPE_POSE_NAMES)}
HP = {n: i for i, n in enumerate(MEDIAPIPE_HAND_NAMES)}


@pytest.fixture(scope="module")
def model() -> DefaultBodyModel:
    m = load_body_model("default")
    assert isinstance(m, DefaultBodyModel)
    return m


def _rest(model: DefaultBodyModel):
    with torch.no_grad():
        return model(BodyPose.zeros(1))


def _posed(model: DefaultBodyModel, joint: str, aa: tuple[float, float, float]):
    pose = BodyPose.zeros(1)
    full = pose.full_pose()
    full[0, J[joint]] = torch.tensor(aa)
    with torch.no_grad():
        return model(BodyPose.from_full_pose(full))


def test_file_is_small_and_has_the_protocol_skeleton(model: DefaultBodyModel) -> None:
    assert DEFAULT_MODEL_PATH.stat().st_size < 6_000_000
    with np.load(DEFAULT_MODEL_PATH) as z:
        assert tuple(z["joint_names"]) == JOINT_NAMES
        assert tuple(z["parents"].tolist()) == PARENTS
    assert model.parents == PARENTS and model.kind == "default"
    assert model.faces.dtype == np.int32 and model.faces.max() < model.v_template.shape[0]


def test_missing_file_names_the_path(tmp_path) -> None:
    with pytest.raises(ModelMissing, match=r"nothing\.npz"):
        DefaultModelData.load(tmp_path / "nothing.npz")


def test_zero_pose_is_the_rest_shape(model: DefaultBodyModel) -> None:
    betas = torch.tensor([[1.0, -0.5, 0.3, 0, 0, 0, 0, 0, 0.2, 0]])
    pose = BodyPose.zeros(1)
    pose.betas = betas
    with torch.no_grad():
        out = model(pose)
        torch.testing.assert_close(out.joints[0], model.rest_joints(betas), atol=1e-5, rtol=0)
        torch.testing.assert_close(out.vertices[0], model.rest_vertices(betas), atol=1e-5, rtol=0)
    eye = torch.eye(3).expand(55, 3, 3)
    torch.testing.assert_close(out.joint_rotations[0], eye, atol=1e-6, rtol=0)


def test_t_pose_facts(model: DefaultBodyModel) -> None:
    j = _rest(model).joints[0]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        wrist, shoulder = j[J[f"{side}_wrist"]], j[J[f"{side}_shoulder"]]
        assert abs(wrist[1] - shoulder[1]) < 0.03, "arms horizontal"
        assert sign * wrist[0] > 0.5, "wrists out to the sides, left at +X"
        assert abs(wrist[2] - shoulder[2]) < 0.03
        assert j[J[f"{side}_ankle"], 1] < j[J["pelvis"], 1] - 0.7, "feet below the pelvis"
        # Fingers straight along the arm, palm plane horizontal.
        for finger in ("index", "middle", "ring", "pinky"):
            tip, base = j[J[f"{side}_{finger}3"]], j[J[f"{side}_{finger}1"]]
            assert sign * (tip[0] - base[0]) > 0.02 and abs(tip[1] - base[1]) < 0.01
    assert j[J["head"], 1] > j[J["neck"], 1] > j[J["spine3"], 1] > j[J["pelvis"], 1]
    torch.testing.assert_close(j[J["left_hip"], 0], -j[J["right_hip"], 0], atol=1e-4, rtol=0)
    lmk = _rest(model).landmarks_body[0]
    assert lmk[MP["nose"], 2] > j[J["head"], 2] + 0.05, "faces +Z"


def test_left_elbow_bends_forward_about_minus_y(model: DefaultBodyModel) -> None:
    rest = _rest(model).joints[0]
    out = _posed(model, "left_elbow", (0.0, -math.pi / 2, 0.0))
    elbow, wrist = out.joints[0, J["left_elbow"]], out.joints[0, J["left_wrist"]]
    forearm = (rest[J["left_wrist"]] - rest[J["left_elbow"]]).norm()
    torch.testing.assert_close(wrist - elbow, torch.stack([0 * forearm, 0 * forearm, forearm]),
                               atol=1e-4, rtol=0)
    # The world-aligned frame: the wrist's global rotation is the elbow's local one.
    torch.testing.assert_close(out.joint_rotations[0, J["left_wrist"]], out.joint_rotations[0, J["left_elbow"]])
    # The skin follows: the left middle fingertip landmark ends up in front of the elbow.
    tip = out.landmarks_hands[0, 0, HP["middle_tip"]]
    assert tip[2] > elbow[2] + forearm and abs(tip[0] - elbow[0]) < 0.05


def test_right_elbow_mirrors(model: DefaultBodyModel) -> None:
    out = _posed(model, "right_elbow", (0.0, math.pi / 2, 0.0))
    d = out.joints[0, J["right_wrist"]] - out.joints[0, J["right_elbow"]]
    assert d[2] > 0.2 and abs(d[0]) < 1e-3


def test_knee_bends_backward_about_plus_x(model: DefaultBodyModel) -> None:
    out = _posed(model, "left_knee", (math.pi / 2, 0.0, 0.0))
    d = out.joints[0, J["left_ankle"]] - out.joints[0, J["left_knee"]]
    assert d[2] < -0.3 and abs(d[1]) < 0.05
    heel = out.landmarks_body[0, MP["left_heel"]]
    assert heel[1] > out.joints[0, J["left_ankle"], 1] + 0.02, "the heel is now above the ankle"


def test_global_orient_and_transl(model: DefaultBodyModel) -> None:
    pose = BodyPose.zeros(1)
    pose.global_orient = torch.tensor([[0.0, math.pi, 0.0]])
    pose.transl = torch.tensor([[1.0, 2.0, 3.0]])
    with torch.no_grad():
        out = model(pose)
    rest = _rest(model)
    pelvis = rest.joints[0, 0]
    expected = (rest.joints[0] - pelvis) * torch.tensor([-1.0, 1.0, -1.0]) + pelvis + pose.transl[0]
    torch.testing.assert_close(out.joints[0], expected, atol=1e-5, rtol=0)
    assert out.landmarks_body[0, MP["nose"], 2] < out.joints[0, J["head"], 2], "turned to face -Z"


def test_skin_weights(model: DefaultBodyModel) -> None:
    rd = model.rest_data(np.zeros(10))
    assert rd["skin_indices"].shape == rd["skin_weights"].shape == (rd["vertices"].shape[0], 4)
    np.testing.assert_allclose(rd["skin_weights"].sum(axis=1), 1.0, atol=1e-5)
    assert rd["skin_weights"].min() >= 0 and rd["skin_indices"].max() < 55
    assert rd["joints"].shape == (55, 3) and rd["parents"].dtype == np.int32
    assert rd["faces"].dtype == np.int32 and rd["vertices"].dtype == np.float32
    # Every joint moves some skin; the eyes carry the eyeballs and the jaw the chin.
    assert (np.bincount(rd["skin_indices"][rd["skin_weights"] > 0], minlength=55) > 50).all()
    carried = np.bincount(rd["skin_indices"][rd["skin_weights"] > 0.5], minlength=55)
    assert (carried[[J["left_eye_smplhf"], J["right_eye_smplhf"], J["jaw"], J["left_index3"]]] > 50).all()


def _stature(model: DefaultBodyModel, betas: torch.Tensor) -> float:
    v = model.rest_vertices(betas)
    return float(v[:, 1].max() - v[:, 1].min())


def test_betas_change_height_plausibly(model: DefaultBodyModel) -> None:
    base = _stature(model, torch.zeros(10))
    assert 1.55 < base < 1.85
    changes = []
    for k in range(10):
        for s in (2.0, -2.0):
            b = torch.zeros(10)
            b[k] = s
            h = _stature(model, b)
            assert 1.3 < h < 2.2
            changes.append(abs(h - base))
    assert max(changes) > 0.05, "one direction changes stature by more than 5 cm at 2 sigma"


def test_gendered_templates() -> None:
    male = load_body_model("default", gender="male")
    female = load_body_model("default", gender="female")
    assert isinstance(male, DefaultBodyModel) and isinstance(female, DefaultBodyModel)
    assert _stature(male, torch.zeros(10)) > _stature(female, torch.zeros(10)) + 0.03


def test_body_landmarks_land_on_the_right_parts(model: DefaultBodyModel) -> None:
    out = _rest(model)
    j, lm = out.joints[0], out.landmarks_body[0]
    torch.testing.assert_close(lm[MP["left_wrist"]], j[J["left_wrist"]])
    head = j[J["head"]]
    assert lm[MP["nose"], 2] > head[2] + 0.05
    for side, sign in (("left", 1.0), ("right", -1.0)):
        eye, ear = lm[MP[f"{side}_eye"]], lm[MP[f"{side}_ear"]]
        inner, outer = lm[MP[f"{side}_eye_inner"]], lm[MP[f"{side}_eye_outer"]]
        assert sign * inner[0] < sign * eye[0] < sign * outer[0] < sign * ear[0]
        assert (eye - j[J[f"{side}_eye_smplhf"]]).norm() < 0.03
        mouth = lm[MP[f"mouth_{side}"]]
        assert sign * mouth[0] > 0.01 and mouth[1] < lm[MP["nose"], 1] - 0.01
        heel, ankle = lm[MP[f"{side}_heel"]], j[J[f"{side}_ankle"]]
        assert heel[2] < ankle[2] - 0.03 and heel[1] < ankle[1]
        toe = lm[MP[f"{side}_foot_index"]]
        assert toe[2] > ankle[2] + 0.1 and toe[1] < ankle[1]
        assert (lm[MP[f"{side}_index"]] - j[J[f"{side}_index1"]]).norm() < 1e-6


def test_hand_landmarks_belong_to_their_side(model: DefaultBodyModel) -> None:
    out = _rest(model)
    hands, j = out.landmarks_hands[0], out.joints[0]
    assert (hands[0, :, 0] > 0.5).all() and (hands[1, :, 0] < -0.5).all()
    torch.testing.assert_close(hands[0, HP["wrist"]], j[J["left_wrist"]])
    torch.testing.assert_close(hands[1, HP["thumb_cmc"]], j[J["right_thumb1"]])
    for side, sign, h in (("left", 1.0, 0), ("right", -1.0, 1)):
        for finger in ("index", "middle", "ring", "pinky"):
            tip, dip = hands[h, HP[f"{finger}_tip"]], hands[h, HP[f"{finger}_dip"]]
            assert 0.005 < sign * (tip[0] - dip[0]) < 0.05, f"{side} {finger} tip beyond its DIP"
        tip, ip = hands[h, HP["thumb_tip"]], j[J[f"{side}_thumb3"]]
        assert 0.005 < (tip - ip).norm() < 0.05


def test_fast_path_matches_full_mesh(model: DefaultBodyModel) -> None:
    g = torch.Generator().manual_seed(3)
    pose = BodyPose.from_full_pose(0.3 * torch.randn(5, 55, 3, generator=g), betas=torch.randn(5, 10, generator=g))
    with torch.no_grad():
        full, fast = model(pose), model(pose, return_vertices=False)
    assert fast.vertices.shape == (5, 0, 3)
    torch.testing.assert_close(fast.landmarks_body, full.landmarks_body)
    torch.testing.assert_close(fast.landmarks_hands, full.landmarks_hands)
    torch.testing.assert_close(fast.joints, full.joints)


def test_default_hand_model() -> None:
    data = default_model_data()
    body_rest = data.joint_templates["neutral"]
    for side, sign in (("left", 1.0), ("right", -1.0)):
        hand = load_hand_model("default", side)
        assert hand.side == side and len(hand.parents) == 16
        with torch.no_grad():
            rest = hand(HandPose.zeros(1))
        torch.testing.assert_close(rest.joints[0, 0], torch.zeros(3))
        wrist = body_rest[J[f"{side}_wrist"]]
        first = J[f"{side}_index1"]
        np.testing.assert_allclose(rest.joints[0, 1:].numpy(), body_rest[first:first + 15] - wrist, atol=1e-5)
        torch.testing.assert_close(rest.landmarks[0, 0], rest.joints[0, 0])
        assert (sign * rest.landmarks[0, 1:, 0] > 0).all(), "fingers point away from the body"
        # Turn the hand half a turn about Y and move it: fingers now point the other way.
        pose = HandPose.zeros(1)
        pose.global_orient = torch.tensor([[0.0, math.pi, 0.0]])
        pose.transl = torch.tensor([[0.0, 1.0, 0.0]])
        with torch.no_grad():
            turned = hand(pose)
        torch.testing.assert_close(turned.joints[0, 0], torch.tensor([0.0, 1.0, 0.0]))
        assert (sign * turned.landmarks[0, 1:, 0] < 0).all()


def test_gradients_reach_pose_and_shape(model: DefaultBodyModel) -> None:
    pose = BodyPose.zeros(2)
    pose.body_pose = torch.full((2, 21, 3), 0.1, requires_grad=True)
    pose.betas = torch.zeros(1, 10, requires_grad=True)
    out = model(pose, return_vertices=False)
    (out.landmarks_body.square().sum() + out.landmarks_hands.square().sum()).backward()
    assert pose.body_pose.grad is not None and pose.betas.grad is not None
    assert torch.isfinite(pose.body_pose.grad).all() and pose.body_pose.grad.abs().sum() > 0
    assert pose.betas.grad.abs().sum() > 0
