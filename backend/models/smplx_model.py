"""SMPL-X and MANO from the user's own model files, through the smplx package, as BodyModel / HandModel
(flat hands, no PCA, 10 betas)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from backend.geometry.rotations import axis_angle_to_matrix
from backend.models.base import NUM_BETAS, BodyModel, BodyOutput, BodyPose, HandModel, HandOutput, HandPose
from backend.models.landmarks import (
    BODY_ORDER,
    HAND_LANDMARKS,
    HAND_ORDER,
    SMPLX_BODY_LANDMARKS,
    compile_table,
    mano_vertex_ids,
    smplx_vertex_ids,
)
from backend.models.lbs import regress_landmarks, top_k_weights
from protocol.errors import ModelMissing
from protocol.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS

GENDERS = ("neutral", "male", "female")


def smplx_path(models_dir: Path, gender: str) -> Path:
    """Where the smplx package looks for an SMPL-X file: DIR/smplx/SMPLX_<GENDER>.npz."""
    return Path(models_dir) / "smplx" / f"SMPLX_{gender.upper()}.npz"


def mano_path(models_dir: Path, side: str) -> Path:
    """Where the smplx package looks for a MANO file: DIR/mano/MANO_<SIDE>.pkl."""
    return Path(models_dir) / "mano" / f"MANO_{side.upper()}.pkl"


def global_rotations(full_pose: Tensor, parents: tuple[int, ...]) -> Tensor:
    """World rotation of each joint frame (B,J,3,3) from local axis-angle (B,J,3) down the tree."""
    local = axis_angle_to_matrix(full_pose)
    out: list[Tensor] = []
    for j, p in enumerate(parents):
        out.append(local[:, j] if p < 0 else out[p] @ local[:, j])
    return torch.stack(out, dim=1)


class SmplxBodyModel(BodyModel):
    """SMPL-X (smplx package, use_pca=False, flat_hand_mean=True, 10 betas, zero expression)."""

    kind = "smplx"

    def __init__(self, models_dir: Path, gender: str = "neutral") -> None:
        super().__init__()
        import smplx

        if gender not in GENDERS:
            raise ValueError(f"gender must be one of {GENDERS}, not {gender!r}")
        path = smplx_path(models_dir, gender)
        if not path.is_file():
            raise ModelMissing(f"SMPL-X model file not found: {path}",
                               details={"path": str(path), "model": "smplx", "gender": gender})
        self.gender = gender
        self.layer = smplx.create(str(models_dir), model_type="smplx", gender=gender, ext="npz",
                                  use_pca=False, flat_hand_mean=True, num_betas=NUM_BETAS,
                                  num_expression_coeffs=10, use_face_contour=False)
        self.faces = np.asarray(self.layer.faces, dtype=np.int32)
        model_parents = tuple(int(p) for p in self.layer.parents[:NUM_JOINTS])
        if model_parents != PARENTS:
            raise ModelMissing(f"{path} is not a 55-joint SMPL-X model (its kinematic tree differs).")
        self.parents = PARENTS
        nv = int(self.layer.v_template.shape[0])
        body = compile_table(SMPLX_BODY_LANDMARKS, BODY_ORDER, smplx_vertex_ids(), JOINT_INDEX, nv)
        self.register_buffer("body_lmk_idx", body.indices)
        self.register_buffer("body_lmk_w", body.weights)
        hands = [compile_table(HAND_LANDMARKS[s], HAND_ORDER, smplx_vertex_ids(), JOINT_INDEX, nv)
                 for s in ("left", "right")]
        self.register_buffer("hand_lmk_idx", torch.stack([h.indices for h in hands]))
        self.register_buffer("hand_lmk_w", torch.stack([h.weights for h in hands]))

    def forward(self, pose: BodyPose, return_vertices: bool = True) -> BodyOutput:
        """Run the smplx layer and add global joint rotations and mediapipe landmarks."""
        b = pose.batch_size
        dtype = self.layer.v_template.dtype
        betas = pose.betas.expand(b, -1) if pose.betas.shape[0] == 1 else pose.betas
        out = self.layer(
            betas=betas[:, :NUM_BETAS].to(dtype), global_orient=pose.global_orient.to(dtype),
            body_pose=pose.body_pose.reshape(b, -1).to(dtype), jaw_pose=pose.jaw_pose.to(dtype),
            leye_pose=pose.leye_pose.to(dtype), reye_pose=pose.reye_pose.to(dtype),
            left_hand_pose=pose.left_hand_pose.reshape(b, -1).to(dtype),
            right_hand_pose=pose.right_hand_pose.reshape(b, -1).to(dtype),
            expression=torch.zeros(b, 10, dtype=dtype, device=betas.device),
            transl=pose.transl.to(dtype), return_verts=True,
        )
        verts, joints = out.vertices, out.joints[:, :NUM_JOINTS]
        points = torch.cat([verts, joints], dim=1)
        body = regress_landmarks(points, self.body_lmk_idx, self.body_lmk_w)
        hands = torch.stack([regress_landmarks(points, self.hand_lmk_idx[s], self.hand_lmk_w[s])
                             for s in range(2)], dim=1)
        rot = global_rotations(pose.full_pose().to(dtype), PARENTS)
        return BodyOutput(verts if return_vertices else verts[:, :0], joints, rot, body, hands)

    def _rest(self, betas: Tensor) -> BodyOutput:
        """The T-pose body of one shape."""
        pose = BodyPose.zeros(1, device=self.layer.v_template.device, dtype=self.layer.v_template.dtype)
        pose.betas = betas.reshape(1, -1).to(pose.transl)
        return self.forward(pose)

    def rest_joints(self, betas: Tensor) -> Tensor:
        """(55,3) T-pose joints of one shape."""
        return self._rest(betas).joints[0]

    def rest_data(self, betas: np.ndarray) -> dict[str, np.ndarray]:
        """Rig-building data for one shape (see BodyModel.rest_data)."""
        with torch.no_grad():
            rest = self._rest(torch.as_tensor(np.asarray(betas, dtype=np.float32)))
        idx, w = top_k_weights(self.layer.lbs_weights.detach().cpu().numpy(), 4)
        return {
            "joints": rest.joints[0].cpu().numpy().astype(np.float32),
            "parents": np.array(PARENTS, dtype=np.int32),
            "vertices": rest.vertices[0].cpu().numpy().astype(np.float32),
            "faces": self.faces,
            "skin_indices": idx,
            "skin_weights": w,
        }


class ManoHandModel(HandModel):
    """MANO (smplx package, use_pca=False, flat_hand_mean=True, 10 betas) for one side."""

    kind = "mano"

    def __init__(self, models_dir: Path, side: str) -> None:
        super().__init__()
        import smplx

        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', not {side!r}")
        path = mano_path(models_dir, side)
        if not path.is_file():
            raise ModelMissing(f"MANO model file not found: {path}",
                               details={"path": str(path), "model": "mano", "side": side})
        self.side = side
        self.layer = smplx.create(str(models_dir), model_type="mano", is_rhand=side == "right", ext="pkl",
                                  use_pca=False, flat_hand_mean=True, num_betas=NUM_BETAS)
        self.faces = np.asarray(self.layer.faces, dtype=np.int32)
        self.parents = tuple(int(p) for p in self.layer.parents)
        first = JOINT_INDEX[f"{side}_index1"]
        local = {JOINT_NAMES[j]: i + 1 for i, j in enumerate(range(first, first + 15))}
        local[f"{side}_wrist"] = 0
        nv = int(self.layer.v_template.shape[0])
        reg = compile_table(HAND_LANDMARKS[side], HAND_ORDER, mano_vertex_ids(side), local, nv)
        self.register_buffer("lmk_idx", reg.indices)
        self.register_buffer("lmk_w", reg.weights)

    def forward(self, pose: HandPose) -> HandOutput:
        """Run the MANO layer and add mediapipe hand landmarks."""
        b = pose.batch_size
        dtype = self.layer.v_template.dtype
        betas = pose.betas.expand(b, -1) if pose.betas.shape[0] == 1 else pose.betas
        out = self.layer(betas=betas[:, :NUM_BETAS].to(dtype), global_orient=pose.global_orient.to(dtype),
                         hand_pose=pose.hand_pose.reshape(b, -1).to(dtype), transl=pose.transl.to(dtype))
        joints = out.joints[:, :16]
        lmk = regress_landmarks(torch.cat([out.vertices, joints], dim=1), self.lmk_idx, self.lmk_w)
        return HandOutput(out.vertices, joints, lmk)
