"""Pure functions of skinned body models: shape blending, forward kinematics, linear blend skinning,
top-k skin weights and landmark regression. Torch, batch-first, no classes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from backend.geometry.rotations import axis_angle_to_matrix


def blend_shapes(betas: Tensor, template: Tensor, shapedirs: Tensor) -> Tensor:
    """Shaped points: template (N,3) + shapedirs (N,3,K) @ betas (B,K) -> (B,N,3)."""
    k = shapedirs.shape[-1]
    return template[None] + torch.einsum("bk,nck->bnc", betas[:, :k], shapedirs)


def forward_kinematics(
    rot_mats: Tensor, rest_joints: Tensor, parents: Sequence[int]
) -> tuple[Tensor, Tensor, Tensor]:
    """Chain local rotations (B,J,3,3) about rest joints (B,J,3) down the tree `parents` (parent < child).

    Returns posed joints (B,J,3), global rotations (B,J,3,3) and the skinning transforms (B,J,3,4) that
    map a rest-space point x to G_j (x - J_j) + p_j, p_j being the posed joint j.
    """
    rots: list[Tensor] = []
    pos: list[Tensor] = []
    for j, p in enumerate(parents):
        if p < 0:
            rots.append(rot_mats[:, j])
            pos.append(rest_joints[:, j])
        else:
            rots.append(rots[p] @ rot_mats[:, j])
            offset = rest_joints[:, j] - rest_joints[:, p]
            pos.append(pos[p] + (rots[p] @ offset[..., None])[..., 0])
    global_rot = torch.stack(rots, dim=1)
    posed = torch.stack(pos, dim=1)
    trans = posed - (global_rot @ rest_joints[..., None])[..., 0]
    return posed, global_rot, torch.cat([global_rot, trans[..., None]], dim=-1)


def skin(points: Tensor, transforms: Tensor, weights: Tensor) -> Tensor:
    """Linear blend skinning of rest points (B,N,3) with transforms (B,J,3,4) and dense weights (N,J)."""
    b, j = transforms.shape[:2]
    blended = torch.matmul(weights, transforms.reshape(b, j, 12)).reshape(b, -1, 3, 4)
    return torch.einsum("bnij,bnj->bni", blended[..., :3], points) + blended[..., 3]


def pose_body(
    pose_aa: Tensor, betas: Tensor, transl: Tensor, template: Tensor, shapedirs: Tensor,
    joint_template: Tensor, joint_shapedirs: Tensor, weights: Tensor, parents: Sequence[int],
) -> tuple[Tensor, Tensor, Tensor]:
    """Shape, pose and skin a body: (B,J,3) axis-angle -> vertices (B,V,3), joints (B,J,3), rotations.

    Joints are a linear function of betas (joint_template (J,3) + joint_shapedirs (J,3,K)), as SMPL-X's
    regressed joints are; transl (B,3) is added last.
    """
    b = pose_aa.shape[0]
    betas = betas.expand(b, -1) if betas.shape[0] == 1 else betas
    v_shaped = blend_shapes(betas, template, shapedirs)
    j_rest = blend_shapes(betas, joint_template, joint_shapedirs)
    posed, rot, transforms = forward_kinematics(axis_angle_to_matrix(pose_aa), j_rest, parents)
    verts = skin(v_shaped, transforms, weights)
    return verts + transl[:, None], posed + transl[:, None], rot


def regress_landmarks(points: Tensor, indices: Tensor, weights: Tensor) -> Tensor:
    """Landmarks (B,L,3) as weighted sums of points (B,N,3): indices/weights (L,k) into N."""
    return torch.einsum("blkc,lk->blc", points[:, indices], weights)


def top_k_weights(weights: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The k largest skin weights per vertex of a dense (V,J) matrix, renormalised to sum to 1.

    Returns indices (V,k) int32 (descending weight) and weights (V,k) float32.
    """
    order = np.argsort(-weights, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(weights, order, axis=1).astype(np.float64)
    top = np.clip(top, 0.0, None)
    top /= top.sum(axis=1, keepdims=True)
    return order.astype(np.int32), top.astype(np.float32)


def dense_weights(indices: np.ndarray, weights: np.ndarray, num_joints: int) -> np.ndarray:
    """A dense (V,J) float32 skin-weight matrix from sparse per-vertex indices/weights (V,k)."""
    dense = np.zeros((indices.shape[0], num_joints), dtype=np.float32)
    np.add.at(dense, (np.arange(indices.shape[0])[:, None], indices), weights)
    return dense
