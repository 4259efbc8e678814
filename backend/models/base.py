"""Common types of every body and hand model: pose and output dataclasses and the model base classes."""

from __future__ import annotations

import abc
from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from protocol.skeleton import NUM_HAND_JOINTS, NUM_JOINTS, POSES_LAYOUT

NUM_BETAS = 10


@dataclass
class BodyPose:
    """SMPL-X pose parameters for a batch of B frames (axis-angle, metres), as torch tensors."""

    global_orient: Tensor  # (B,3) axis-angle of the pelvis in the world frame
    body_pose: Tensor  # (B,21,3)
    jaw_pose: Tensor  # (B,3)
    leye_pose: Tensor  # (B,3)
    reye_pose: Tensor  # (B,3)
    left_hand_pose: Tensor  # (B,15,3), flat hand at zero
    right_hand_pose: Tensor  # (B,15,3), flat hand at zero
    betas: Tensor  # (B,10) or (1,10), broadcast over the batch
    transl: Tensor  # (B,3) world translation added to every vertex and joint

    @classmethod
    def zeros(
        cls, batch: int = 1, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> BodyPose:
        """The rest pose (T-pose, mean shape, no translation) for `batch` frames."""

        def z(*shape: int) -> Tensor:
            return torch.zeros(batch, *shape, device=device, dtype=dtype)

        return cls(z(3), z(21, 3), z(3), z(3), z(3), z(15, 3), z(15, 3), z(NUM_BETAS), z(3))

    @property
    def batch_size(self) -> int:
        """Number of frames B."""
        return int(self.global_orient.shape[0])

    def full_pose(self) -> Tensor:
        """All 55 joint rotations as (B,55,3) axis-angle in SMPL-X joint order."""
        b = self.batch_size
        parts = [getattr(self, name).reshape(b, count, 3) for name, count in POSES_LAYOUT]
        return torch.cat(parts, dim=1)

    @classmethod
    def from_full_pose(cls, full_pose: Tensor, betas: Tensor | None = None,
                       transl: Tensor | None = None) -> BodyPose:
        """Split a (B,55,3) or (B,165) axis-angle pose into the named parts; betas/transl default to 0."""
        b = full_pose.shape[0]
        full = full_pose.reshape(b, NUM_JOINTS, 3)
        parts: dict[str, Tensor] = {}
        start = 0
        for name, count in POSES_LAYOUT:
            chunk = full[:, start:start + count]
            parts[name] = chunk[:, 0] if count == 1 else chunk
            start += count
        zeros = full.new_zeros
        return cls(**parts, betas=zeros(1, NUM_BETAS) if betas is None else betas,
                   transl=zeros(b, 3) if transl is None else transl)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> BodyPose:
        """A copy with every tensor moved to `device` and/or cast to `dtype`."""
        moved = {f.name: getattr(self, f.name).to(device=device, dtype=dtype) for f in fields(self)}
        return BodyPose(**moved)


@dataclass
class BodyOutput:
    """What a body model's forward pass returns, everything in the world frame (transl included)."""

    vertices: Tensor  # (B,V,3)
    joints: Tensor  # (B,55,3) posed SMPL-X joints
    joint_rotations: Tensor  # (B,55,3,3) global rotation of each joint frame (identity at rest)
    landmarks_body: Tensor  # (B,33,3) mediapipe Pose layout
    landmarks_hands: Tensor  # (B,2,21,3) mediapipe Hand layout; 0 = the person's left hand, 1 = right


class BodyModel(torch.nn.Module, abc.ABC):
    """A 55-joint SMPL-X-compatible body model (SMPL-X itself or the built-in default)."""

    kind: str  # "smplx" | "default"
    gender: str  # "neutral" | "male" | "female"
    faces: np.ndarray  # (F,3) int32
    parents: tuple[int, ...]  # == protocol.skeleton.PARENTS

    @abc.abstractmethod
    def forward(self, pose: BodyPose, return_vertices: bool = True) -> BodyOutput:
        """Pose and shape the body for a batch of frames.

        return_vertices=False lets a model skip skinning the full mesh when only joints and landmarks are
        needed (fitting); `vertices` is then an empty (B,0,3) tensor.
        """

    @abc.abstractmethod
    def rest_joints(self, betas: Tensor) -> Tensor:
        """The (55,3) T-pose joint positions for one shape `betas` (10,) or (1,10)."""

    @abc.abstractmethod
    def rest_data(self, betas: np.ndarray) -> dict[str, np.ndarray]:
        """Everything a rig builder needs without model files, for one shape.

        Keys: joints (55,3) f32, parents (55,) i32, vertices (V,3) f32, faces (F,3) i32,
        skin_indices (V,4) i32, skin_weights (V,4) f32 (top-4 weights per vertex, renormalised).
        """


@dataclass
class HandPose:
    """MANO-style pose of one hand in the world frame, batch B."""

    global_orient: Tensor  # (B,3) axis-angle of the wrist frame in the world
    hand_pose: Tensor  # (B,15,3), flat hand at zero, SMPL-X hand joint order
    betas: Tensor  # (B,10) or (1,10)
    transl: Tensor  # (B,3)

    @classmethod
    def zeros(
        cls, batch: int = 1, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
    ) -> HandPose:
        """The flat rest hand for `batch` frames."""

        def z(*shape: int) -> Tensor:
            return torch.zeros(batch, *shape, device=device, dtype=dtype)

        return cls(z(3), z(NUM_HAND_JOINTS, 3), z(NUM_BETAS), z(3))

    @property
    def batch_size(self) -> int:
        """Number of frames B."""
        return int(self.global_orient.shape[0])


@dataclass
class HandOutput:
    """What a hand model's forward pass returns, in the world frame (transl included)."""

    vertices: Tensor  # (B,V,3)
    joints: Tensor  # (B,16,3) wrist + 15 finger joints in SMPL-X hand order
    landmarks: Tensor  # (B,21,3) mediapipe Hand layout


class HandModel(torch.nn.Module, abc.ABC):
    """A 16-joint MANO-compatible hand model (MANO itself or the default body's hand)."""

    kind: str  # "mano" | "default"
    side: str  # "left" | "right"
    faces: np.ndarray  # (F,3) int32
    parents: tuple[int, ...]  # 16 entries, wrist = -1

    @abc.abstractmethod
    def forward(self, pose: HandPose) -> HandOutput:
        """Pose and shape the hand for a batch of frames."""
