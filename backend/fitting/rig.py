"""A fast differentiable landmark rig of a body model: forward kinematics plus rigidly attached landmarks.

Evaluating a full mesh for every frame of every iteration is what makes whole-clip fitting slow. The rig keeps
what the fit needs: the 55 joints by forward kinematics of the model's own rest skeleton (exact: joints do not
depend on skinning), and the 33 body / 2x21 hand mediapipe landmarks rigidly attached to one joint each
(`backend.fitting.mapping`), placed where the model's own forward pass puts them at rest. Shape enters linearly:
rest joints and landmarks are sampled at betas = 0 and at each unit beta, exact for linear shape spaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from backend.models.base import NUM_BETAS, BodyModel, BodyPose
from protocol.skeleton import NUM_JOINTS, PARENTS

from .mapping import BODY_LANDMARK_JOINT, HAND_LANDMARK_JOINT


@dataclass
class RigOutput:
    """Posed joints, joint frames and landmarks for a batch of frames (world frame of the root given)."""

    joints: Tensor  # (B,55,3)
    rotations: Tensor  # (B,55,3,3) global joint frames
    landmarks_body: Tensor  # (B,33,3)
    landmarks_hands: Tensor  # (B,2,21,3)


def _levels(parents: tuple[int, ...]) -> list[list[int]]:
    """Joints grouped by depth in the tree (root first), so each level is one batched matmul."""
    depth = [0] * len(parents)
    for j, p in enumerate(parents):
        depth[j] = 0 if p < 0 else depth[p] + 1
    return [[j for j in range(len(parents)) if depth[j] == d] for d in range(max(depth) + 1)]


class LandmarkRig(torch.nn.Module):
    """Joints and mediapipe landmarks of a body model as a cheap function of local rotations, root and shape."""

    def __init__(self, model: BodyModel, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        """Sample the model's rest joints and landmarks at betas 0 and each unit beta (11 rest evaluations)."""
        super().__init__()
        with torch.no_grad():
            pose = BodyPose.zeros(NUM_BETAS + 1, device=device, dtype=dtype)
            pose.betas = torch.cat([torch.zeros(1, NUM_BETAS), torch.eye(NUM_BETAS)]).to(device=device, dtype=dtype)
            model_dtype = next((p.dtype for p in model.buffers()), dtype)
            out = model(pose.to(dtype=model_dtype))
            joints = out.joints.to(dtype)
            body = out.landmarks_body.to(dtype)
            hands = out.landmarks_hands.to(dtype).reshape(NUM_BETAS + 1, 42, 3)
        lm = torch.cat([body, hands], dim=1)
        self.register_buffer("joints0", joints[0].clone())
        self.register_buffer("joints_dirs", (joints[1:] - joints[:1]).clone())
        self.register_buffer("lm0", lm[0].clone())
        self.register_buffer("lm_dirs", (lm[1:] - lm[:1]).clone())
        attach = list(BODY_LANDMARK_JOINT) + list(HAND_LANDMARK_JOINT[0]) + list(HAND_LANDMARK_JOINT[1])
        self.register_buffer("attach", torch.tensor(attach, dtype=torch.long, device=device))
        self.parents = tuple(PARENTS)
        levels = _levels(self.parents)
        # Parents of each level's joints all sit in the level before: gather them by position in that level.
        self.parent_slots = [
            torch.tensor([levels[d - 1].index(self.parents[j]) for j in levels[d]], device=device)
            for d in range(1, len(levels))
        ]
        self.level_joints = [torch.tensor(level, device=device) for level in levels]
        order = [j for level in levels for j in level]
        # ancestors[j, k-1] = 1 when joint k (1..54) lies on the path from the root to joint j (k itself included).
        ancestors = torch.zeros(NUM_JOINTS, NUM_JOINTS - 1)
        for j in range(1, NUM_JOINTS):
            k = j
            while k > 0:
                ancestors[j, k - 1] = 1.0
                k = self.parents[k]
        self.register_buffer("ancestors", ancestors.to(device=device, dtype=dtype))
        self.register_buffer("parent_index", torch.tensor(self.parents[1:], dtype=torch.long, device=device))
        self.register_buffer("unpermute", torch.tensor([order.index(j) for j in range(NUM_JOINTS)], device=device))

    def rest(self, betas: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Rest joints (55,3) and rest landmarks (75,3) = 33 body + 21 left + 21 right for one shape."""
        if betas is None:
            return self.joints0, self.lm0
        b = betas.reshape(NUM_BETAS)
        return (self.joints0 + torch.einsum("k,kjc->jc", b, self.joints_dirs),
                self.lm0 + torch.einsum("k,kjc->jc", b, self.lm_dirs))

    def forward(self, local_rot: Tensor, root_pos: Tensor, betas: Tensor | None = None) -> RigOutput:
        """Pose the rig.

        local_rot: (B,55,3,3) local joint rotations (index 0 = the root's global orientation);
        root_pos: (B,3) where the pelvis joint goes; betas: (10,) shape, None for the mean shape.
        """
        rest_j, rest_lm = self.rest(betas)
        bsz = local_rot.shape[0]
        g_prev = local_rot[:, :1]
        g_levels = [g_prev]
        for joints, slots in zip(self.level_joints[1:], self.parent_slots, strict=True):
            g_prev = g_prev[:, slots] @ local_rot[:, joints]
            g_levels.append(g_prev)
        rotations = torch.cat(g_levels, dim=1)[:, self.unpermute]
        # Each bone, turned by its parent's frame; a joint sits at the root plus the bones on its path.
        bones = rest_j[1:] - rest_j[self.parent_index]
        turned = torch.einsum("tjab,jb->tja", rotations[:, self.parent_index], bones)
        joints_out = root_pos[:, None] + torch.einsum("jk,tkc->tjc", self.ancestors, turned)
        offsets = rest_lm - rest_j[self.attach]
        lm = joints_out[:, self.attach] + torch.einsum("tnab,nb->tna", rotations[:, self.attach], offsets)
        return RigOutput(joints_out, rotations, lm[:, :33], lm[:, 33:].reshape(bsz, 2, 21, 3))

    def transl_from_root(self, root_pos: Tensor, betas: Tensor | None = None) -> Tensor:
        """SMPL-X `transl` that puts the pelvis at root_pos (the model rotates about its rest pelvis)."""
        return root_pos - self.rest(betas)[0][0]
