"""SMPL-X / MANO wrappers and the loader: error paths with no files, and the wiring through the smplx package
checked on small structurally valid fake model files whose skeleton is the default model's."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.models.base import BodyPose, HandPose
from backend.models.default_model import DefaultBodyModel
from backend.models.landmarks import smplx_vertex_ids
from backend.models.loader import (
    MODELS_ENV,
    available_body_models,
    default_model_data,
    load_body_model,
    load_hand_model,
    resolve_models_dir,
)
from backend.models.smplx_model import ManoHandModel, SmplxBodyModel
from protocol.errors import BadRequest, ModelMissing
from protocol.skeleton import JOINT_INDEX as J
from protocol.skeleton import MEDIAPIPE_HAND_NAMES, MEDIAPIPE_POSE_NAMES, PARENTS

MP = {n: i for i, n in enumerate(MEDIAPIPE_POSE_NAMES)}
HP = {n: i for i, n in enumerate(MEDIAPIPE_HAND_NAMES)}
SMPLX_VERTS = 10475  # the real SMPL-X vertex count: the smplx package's landmark ids index into it
MANO_VERTS = 778
HAND_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)


def _one_hot_rig(joints: np.ndarray, num_verts: int) -> dict[str, np.ndarray]:
    """Vertex i rides joint i % J, 1 cm off it (vertex j < J sits on joint j and regresses it)."""
    nj = joints.shape[0]
    owner = np.arange(num_verts) % nj
    offsets = 0.01 * np.sin(np.arange(num_verts * 3, dtype=np.float64)).reshape(num_verts, 3)
    offsets[:nj] = 0.0
    regressor = np.zeros((nj, num_verts))
    regressor[np.arange(nj), np.arange(nj)] = 1.0
    weights = np.zeros((num_verts, nj))
    weights[np.arange(num_verts), owner] = 1.0
    faces = np.arange(num_verts - num_verts % 3).reshape(-1, 3)
    return {"v_template": joints[owner] + offsets, "J_regressor": regressor, "weights": weights,
            "f": faces, "owner": owner}


@pytest.fixture(scope="module")
def fake_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DIR/smplx/SMPLX_NEUTRAL.npz and DIR/mano/MANO_{LEFT,RIGHT}.pkl built on the default skeleton."""
    root = tmp_path_factory.mktemp("models")
    data = default_model_data()
    rig = _one_hot_rig(data.joint_templates["neutral"].astype(np.float64), SMPLX_VERTS)
    shapedirs = np.zeros((SMPLX_VERTS, 3, 20))
    shapedirs[:, :, :10] = data.joint_shapedirs[rig.pop("owner")]
    (root / "smplx").mkdir()
    np.savez(root / "smplx" / "SMPLX_NEUTRAL.npz", **rig, shapedirs=shapedirs,
             posedirs=np.zeros((SMPLX_VERTS, 3, 54 * 9)),
             kintree_table=np.stack([np.array(PARENTS), np.arange(55)]),
             hands_componentsl=np.eye(45), hands_componentsr=np.eye(45),
             hands_meanl=np.zeros(45), hands_meanr=np.zeros(45),
             lmk_faces_idx=np.zeros(51, dtype=np.int64), lmk_bary_coords=np.full((51, 3), 1.0 / 3.0))
    (root / "mano").mkdir()
    for side in ("left", "right"):
        first = J[f"{side}_index1"]
        hand_joints = data.joint_templates["neutral"][[J[f"{side}_wrist"], *range(first, first + 15)]]
        hand = _one_hot_rig(hand_joints.astype(np.float64), MANO_VERTS)
        hand.pop("owner")
        hand |= {"shapedirs": np.zeros((MANO_VERTS, 3, 10)), "posedirs": np.zeros((MANO_VERTS, 3, 135)),
                 "kintree_table": np.stack([np.array(HAND_PARENTS), np.arange(16)]),
                 "hands_components": np.eye(45), "hands_mean": np.zeros(45)}
        with open(root / "mano" / f"MANO_{side.upper()}.pkl", "wb") as fh:
            pickle.dump(hand, fh)
    return root


def test_missing_smplx_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing) as err:
        load_body_model("smplx", tmp_path, gender="female")
    assert str(tmp_path / "smplx" / "SMPLX_FEMALE.npz") in err.value.message


def test_missing_mano_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing) as err:
        load_hand_model("mano", "left", tmp_path)
    assert str(tmp_path / "mano" / "MANO_LEFT.pkl") in err.value.message


def test_no_models_dir_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MODELS_ENV, raising=False)
    with pytest.raises(ModelMissing, match=MODELS_ENV):
        load_body_model("smplx")


def test_bad_names_are_bad_requests() -> None:
    with pytest.raises(BadRequest):
        load_body_model("smpl")
    with pytest.raises(BadRequest):
        load_body_model("default", gender="robot")
    with pytest.raises(BadRequest):
        load_hand_model("default", "middle")


def test_models_dir_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake_models: Path) -> None:
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    assert resolve_models_dir(None) == tmp_path
    assert resolve_models_dir(fake_models) == fake_models
    assert available_body_models(None) == ["default"]
    monkeypatch.setenv(MODELS_ENV, str(fake_models))
    assert available_body_models(None) == ["default", "smplx"]
    monkeypatch.delenv(MODELS_ENV)
    assert available_body_models(None) == ["default"]


def test_models_are_cached() -> None:
    assert load_body_model("default") is load_body_model("default")
    assert load_hand_model("default", "left") is load_hand_model("default", "left")
    assert load_body_model("default", gender="male") is not load_body_model("default")


def _random_pose(batch: int, seed: int) -> BodyPose:
    g = torch.Generator().manual_seed(seed)
    return BodyPose.from_full_pose(0.4 * torch.randn(batch, 55, 3, generator=g),
                                   betas=torch.randn(batch, 10, generator=g), transl=torch.randn(batch, 3, generator=g))


def test_smplx_wrapper_matches_the_same_skeleton(fake_models: Path) -> None:
    smplx_model = load_body_model("smplx", fake_models)
    default = load_body_model("default")
    assert isinstance(smplx_model, SmplxBodyModel) and isinstance(default, DefaultBodyModel)
    assert smplx_model.kind == "smplx" and smplx_model.parents == PARENTS
    pose = _random_pose(3, 7)
    with torch.no_grad():
        a, b = smplx_model(pose), default(pose)
    assert a.vertices.shape == (3, SMPLX_VERTS, 3) and a.joints.shape == (3, 55, 3)
    torch.testing.assert_close(a.joints, b.joints, atol=1e-4, rtol=0)
    torch.testing.assert_close(a.joint_rotations, b.joint_rotations, atol=1e-5, rtol=0)
    # Joint landmarks agree; vertex landmarks read the smplx package's ids.
    for name in ("left_wrist", "right_knee", "left_index", "right_thumb"):
        torch.testing.assert_close(a.landmarks_body[:, MP[name]], b.landmarks_body[:, MP[name]], atol=1e-4, rtol=0)
    ids = smplx_vertex_ids()
    torch.testing.assert_close(a.landmarks_body[:, MP["nose"]], a.vertices[:, ids["nose"]])
    torch.testing.assert_close(a.landmarks_hands[:, 0, HP["thumb_tip"]], a.vertices[:, ids["lthumb"]])
    torch.testing.assert_close(a.landmarks_hands[:, 1, HP["index_pip"]], a.joints[:, J["right_index2"]])
    fast = smplx_model(pose, return_vertices=False)
    assert fast.vertices.shape == (3, 0, 3)


def test_smplx_rest_data(fake_models: Path) -> None:
    model = load_body_model("smplx", fake_models)
    rd = model.rest_data(np.zeros(10))
    np.testing.assert_allclose(rd["joints"], default_model_data().joint_templates["neutral"], atol=1e-5)
    assert rd["vertices"].shape == (SMPLX_VERTS, 3) and rd["faces"].dtype == np.int32
    np.testing.assert_allclose(rd["skin_weights"].sum(axis=1), 1.0, atol=1e-6)
    assert (rd["skin_indices"][:, 0] == np.arange(SMPLX_VERTS) % 55).all()
    torch.testing.assert_close(model.rest_joints(torch.zeros(10)), torch.as_tensor(rd["joints"]))


def test_mano_wrapper_matches_the_default_hand(fake_models: Path) -> None:
    for side in ("left", "right"):
        mano = load_hand_model("mano", side, fake_models)
        default = load_hand_model("default", side)
        assert isinstance(mano, ManoHandModel) and mano.parents == HAND_PARENTS == default.parents
        g = torch.Generator().manual_seed(11)
        pose = HandPose(global_orient=torch.tensor([[0.0, math.pi / 3, 0.0]]),
                        hand_pose=0.3 * torch.randn(1, 15, 3, generator=g),
                        betas=torch.zeros(1, 10), transl=torch.zeros(1, 3))
        with torch.no_grad():
            a, b = mano(pose), default(pose)
        # The fake MANO keeps the wrist where the body has it; the default hand puts it at the origin.
        wrist = torch.as_tensor(default_model_data().joint_templates["neutral"][J[f"{side}_wrist"]])
        torch.testing.assert_close(a.joints - wrist, b.joints, atol=1e-5, rtol=0)
        torch.testing.assert_close(a.landmarks[:, HP["middle_dip"]], a.joints[:, 6])
        torch.testing.assert_close(a.landmarks[:, HP["thumb_tip"]], a.vertices[:, 744])
