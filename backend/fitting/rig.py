"""A fast differentiable landmark rig of a body model: forward kinematics plus rigidly attached landmarks.

Evaluating a full mesh for every frame of every iteration is what makes whole-clip fitting slow. The rig keeps
what the fit needs: the 55 joints by forward kinematics of the model's own rest skeleton (exact: joints do not
depend on skinning), and the 33 body / 2x21 hand mediapipe landmarks rigidly attached to one joint each
(`backend.fitting.mapping`), placed where the model's own forward pass puts them at rest. Shape enters linearly:
rest joints and landmarks are sampled at betas = 0 and at each unit beta, exact for linear shape spaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from backend.models.base import NUM_BETAS, BodyModel, BodyPose
from protocol.skeleton import NUM_JOINTS, PARENTS

from .mapping import BODY_LANDMARK_JOINT, HAND_LANDMARK_JOINT


@dataclass
class RigOutput:
    """Posed joints and landmarks for a batch of frames (world frame of the root given)."""

    joints: Tensor  # (B,55,3)
    landmarks: Tensor  # (B,75,3): 33 body, then 21 left hand, then 21 right hand

    @property
    def landmarks_body(self) -> Tensor:
        """(B,33,3) mediapipe pose landmarks."""
        return self.landmarks[:, :33]

    @property
    def landmarks_hands(self) -> Tensor:
        """(B,2,21,3) mediapipe hand landmarks, left then right."""
        return self.landmarks[:, 33:].reshape(-1, 2, 21, 3)


@dataclass
class HeldPose:
    """A batch of poses held below the root: their points about an unturned root at the origin, linear in shape."""

    base: Tensor  # (B,130,3) the 55 joints then the 75 landmarks at betas = 0
    shape_dirs: Tensor  # (10,B,130,3) change per unit of each beta

    def place(self, root_rot: Tensor, root_pos: Tensor, betas: Tensor) -> RigOutput:
        """The rig's output for root rotations (B,3,3), root positions (B,3) and shape (10,): exactly what the
        full rig gives for the held pose with this root."""
        # a plain vector-matrix product: einsum would copy all of shape_dirs into its own layout every call
        about_root = self.base + (betas.reshape(NUM_BETAS) @ self.shape_dirs.flatten(1)).view_as(self.base)
        points = root_pos[:, None] + torch.einsum("bij,bpj->bpi", root_rot, about_root)
        return RigOutput(points[:, :NUM_JOINTS], points[:, NUM_JOINTS:])


@dataclass
class HeldLimbs:
    """A batch of poses with everything held but some limbs (whole subtrees, e.g. the legs): the held part's
    points once, and what it takes to turn the free joints' vectors again."""

    fixed: Tensor  # (B,130,3) the points without the free joints' turned vectors
    levels: list[tuple[Tensor, Tensor | None, Tensor]]  # per depth: rows of free_rot, held parent frames, parents
    vector_slots: Tensor  # (V,) which free joint (position in depth order of the free joints) turns each vector
    vectors: Tensor  # (V,3) the free joints' rest vectors
    paths: Tensor  # (130,V) which of them lie on each point's path

    def place(self, free_rot: Tensor) -> RigOutput:
        """The rig's output with these local rotations (B,F,3,3) of the free joints (in the order they were
        named): exactly what the full rig gives for the held pose with them."""
        frames: list[Tensor] = []
        before: Tensor | None = None
        for rows, held_parents, parents in self.levels:
            pool = [x for x in (held_parents, before) if x is not None]
            parent = (torch.cat(pool, dim=1) if len(pool) > 1 else pool[0]).index_select(1, parents)
            before = parent @ free_rot.index_select(1, rows)
            frames.append(before)
        turned = (torch.cat(frames, dim=1).index_select(1, self.vector_slots) @ self.vectors[:, :, None])[..., 0]
        points = self.fixed + torch.einsum("pv,bvc->bpc", self.paths, turned)
        return RigOutput(points[:, :NUM_JOINTS], points[:, NUM_JOINTS:])


def _levels(parents: tuple[int, ...]) -> list[list[int]]:
    """Joints grouped by depth in the tree (root first), so each level is one batched matmul."""
    depth = [0] * len(parents)
    for j, p in enumerate(parents):
        depth[j] = 0 if p < 0 else depth[p] + 1
    return [[j for j in range(len(parents)) if depth[j] == d] for d in range(max(depth) + 1)]


def _parents_of_level(slots: list[int], device: torch.device | str) -> slice | Tensor:
    """How a level picks its parents' frames out of the level before: a slice (a view) where they are that
    level's frames in order, else an index."""
    if slots == list(range(slots[0], slots[0] + len(slots))):
        return slice(slots[0], slots[0] + len(slots))
    return torch.tensor(slots, device=device)


def _pick(frames: Tensor, which: slice | Tensor) -> Tensor:
    """Frames (J,B,...) picked along the joint axis by a slice or an index; an index goes through index_select,
    several times cheaper forwards and backwards on CPU than indexing with a tensor (which sorts to scatter)."""
    return frames[which] if isinstance(which, slice) else frames.index_select(0, which)


class LandmarkRig(torch.nn.Module):
    """Joints and mediapipe landmarks of a body model as a cheap function of local rotations, root and shape.

    Every point (55 joints, 75 landmarks) is the root plus a sum of turned vectors: each bone turned by its
    parent's frame and each landmark's offset turned by its joint's frame. One batched turn of the vectors
    and one matrix product (which vectors lie on each point's path) place them all, with few and large
    operations: whole-clip fitting calls this hundreds of times and pays per operation.
    """

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
        parents = self.parents = tuple(PARENTS)
        attach = list(BODY_LANDMARK_JOINT) + list(HAND_LANDMARK_JOINT[0]) + list(HAND_LANDMARK_JOINT[1])
        # Landmarks placed on their joint (most hand points, the wrists) have no offset to turn: only the others
        # get a vector.
        offsets = lm - joints[:, attach]
        moved = [n for n in range(len(attach)) if float(offsets[:, n].norm(dim=-1).max()) > 1e-7]
        self.register_buffer("offset_landmarks", torch.tensor(moved, dtype=torch.long, device=device))
        self.register_buffer("offset_joints", torch.tensor([attach[n] for n in moved], dtype=torch.long, device=device))
        self.register_buffer("parent_index", torch.tensor(parents[1:], dtype=torch.long, device=device))
        # Forward kinematics runs in depth order: each level is a contiguous run of that order.
        levels = _levels(parents)
        order = [j for level in levels for j in level]
        slot = {j: i for i, j in enumerate(order)}
        self.register_buffer("order", torch.tensor(order, device=device))
        self.level_sizes = [len(level) for level in levels]
        self.level_parents: list[slice | Tensor] = [
            _parents_of_level([levels[d - 1].index(parents[j]) for j in level], device)
            for d, level in enumerate(levels[1:], start=1)]
        # The frame (slot in depth order) turning each vector: bones of joints 1..54, then landmark offsets.
        frames = [slot[parents[j]] for j in range(1, NUM_JOINTS)] + [slot[attach[n]] for n in moved]
        self.register_buffer("vector_frames", torch.tensor(frames, device=device))
        # paths[p, v] = 1 when vector v lies on the path from the root to point p (joints, then landmarks).
        paths = torch.zeros(NUM_JOINTS + len(attach), NUM_JOINTS - 1 + len(moved))
        for j in range(1, NUM_JOINTS):
            k = j
            while k > 0:
                paths[j, k - 1] = 1.0
                k = parents[k]
        for n, a in enumerate(attach):
            paths[NUM_JOINTS + n] = paths[a]
        for v, n in enumerate(moved):
            paths[NUM_JOINTS + n, NUM_JOINTS - 1 + v] = 1.0
        self.register_buffer("paths", paths.to(device=device, dtype=dtype))
        # The rest vectors are linear in shape like the rest points: sampled once, one product a pose.
        self.register_buffer("vectors0", self._vectors(self.joints0, self.lm0))
        self.register_buffer("vector_dirs", self._vectors(self.joints_dirs, self.lm_dirs).flatten(1))

    def rest(self, betas: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Rest joints (55,3) and rest landmarks (75,3) = 33 body + 21 left + 21 right for one shape."""
        if betas is None:
            return self.joints0, self.lm0
        b = betas.reshape(NUM_BETAS)
        return (self.joints0 + (b @ self.joints_dirs.flatten(1)).view_as(self.joints0),
                self.lm0 + (b @ self.lm_dirs.flatten(1)).view_as(self.lm0))

    def rest_vectors(self, betas: Tensor | None = None) -> Tensor:
        """The rest vectors (V,3) of one shape (see `_vectors`)."""
        if betas is None:
            return self.vectors0
        return self.vectors0 + (betas.reshape(NUM_BETAS) @ self.vector_dirs).view_as(self.vectors0)

    def _frames(self, local_rot: Tensor) -> Tensor:
        """Global joint frames (55,B,3,3), joint-major in depth order, by forward kinematics one tree level at a
        time. Joint-major, each level's frames are one contiguous block: its product is a single `bmm` on views,
        with no copies into matmul's layout and back."""
        b = local_rot.shape[0]
        # one split, not a slice per level: its backward is one concatenation, where each slice's would fill a
        # whole gradient with zeros
        g_prev, *local = local_rot.transpose(0, 1).index_select(0, self.order).split(self.level_sizes)
        frames = [g_prev]
        for level, parents in zip(local, self.level_parents, strict=True):
            g_prev = torch.bmm(_pick(g_prev, parents).reshape(-1, 3, 3), level.reshape(-1, 3, 3)).view(-1, b, 3, 3)
            frames.append(g_prev)
        return torch.cat(frames)

    def _turned(self, frames: Tensor, vectors: Tensor) -> Tensor:
        """Rest vectors (V,3) turned by the frames (55,B,3,3) that carry them -> (V,B,3): one product of each
        vector with its frame over all frames at once."""
        v, b = vectors.shape[0], frames.shape[1]
        picked = frames.index_select(0, self.vector_frames).view(v, b * 3, 3)
        return torch.bmm(picked, vectors[:, :, None]).view(v, b, 3)

    def _vectors(self, rest_j: Tensor, rest_lm: Tensor) -> Tensor:
        """The rest vectors (..., V, 3) of a rest pose: bones of joints 1..54, then the landmark offsets."""
        return torch.cat([rest_j[..., 1:, :] - rest_j[..., self.parent_index, :],
                          rest_lm[..., self.offset_landmarks, :] - rest_j[..., self.offset_joints, :]], dim=-2)

    def forward(self, local_rot: Tensor, root_pos: Tensor, betas: Tensor | None = None) -> RigOutput:
        """Pose the rig.

        local_rot: (B,55,3,3) local joint rotations (index 0 = the root's global orientation);
        root_pos: (B,3) where the pelvis joint goes; betas: (10,) shape, None for the mean shape.
        """
        turned = self._turned(self._frames(local_rot), self.rest_vectors(betas))
        about_root = (self.paths @ turned.view(turned.shape[0], -1)).view(self.paths.shape[0], -1, 3)
        points = root_pos[:, None] + about_root.transpose(0, 1)
        return RigOutput(points[:, :NUM_JOINTS], points[:, NUM_JOINTS:])

    def held_below_root(self, local_rot: Tensor) -> HeldPose:
        """These poses (B,55,3,3) with everything below the root held, for a solve that moves only the root and
        the shape: one forward kinematics now, and each later evaluation a single turn per frame."""
        unturned = torch.cat([torch.eye(3, dtype=local_rot.dtype, device=local_rot.device).expand(
            local_rot.shape[0], 1, 3, 3), local_rot[:, 1:]], dim=1)
        # (11,V,3): the vectors at betas 0, then per unit beta
        vectors = torch.cat([self.vectors0[None], self.vector_dirs.view(NUM_BETAS, *self.vectors0.shape)])
        turned = torch.einsum("bvij,kvj->kbvi", self._frames(unturned).transpose(0, 1)[:, self.vector_frames],
                              vectors)
        # contiguous: einsum hands back a permuted view, which every `place` would otherwise copy whole to flatten
        points = torch.einsum("pv,kbvc->kbpc", self.paths, turned).contiguous()
        return HeldPose(points[0], points[1:])

    def held_except(self, local_rot: Tensor, root_pos: Tensor, betas: Tensor | None,
                    free: Sequence[int]) -> HeldLimbs:
        """These poses with every joint but `free` held, for a solve that moves only those (the legs of the foot
        lock): the held points are computed once, and each evaluation runs forward kinematics of the free joints
        only. `free` must hold whole subtrees (every child of a free joint is free)."""
        free = [int(j) for j in free]
        if any(self.parents[j] in free and j not in free for j in range(1, NUM_JOINTS)) or 0 in free:
            raise ValueError(f"free joints {free} must be whole subtrees below the root")
        order = self.order.tolist()
        depth_slot = {j: i for i, j in enumerate(order)}
        g = self._frames(local_rot).detach().transpose(0, 1)
        vectors = self.rest_vectors(betas).detach()
        turned_by_free = [order[f] in free for f in self.vector_frames.tolist()]
        free_v = [v for v, is_free in enumerate(turned_by_free) if is_free]
        held_v = [v for v, is_free in enumerate(turned_by_free) if not is_free]
        turned = (g[:, self.vector_frames[held_v]] @ vectors[held_v, :, None])[..., 0]
        fixed = root_pos.detach()[:, None] + torch.einsum("pv,bvc->bpc", self.paths[:, held_v], turned)
        levels: list[tuple[Tensor, Tensor | None, Tensor]] = []
        done: list[int] = []  # free joints placed so far, in depth order
        previous: list[int] = []
        for level in _levels(self.parents)[1:]:
            mine = [j for j in level if j in free]
            if not mine:
                continue
            held = [self.parents[j] for j in mine if self.parents[j] not in free]
            held_frames = g[:, [depth_slot[p] for p in held]] if held else None
            pick = [held.index(self.parents[j]) if self.parents[j] not in free
                    else len(held) + previous.index(self.parents[j]) for j in mine]
            rows = torch.tensor([free.index(j) for j in mine], device=g.device)
            levels.append((rows, held_frames, torch.tensor(pick, device=g.device)))
            done += mine
            previous = mine
        slots = torch.tensor([done.index(order[self.vector_frames[v]]) for v in free_v], device=g.device)
        return HeldLimbs(fixed, levels, slots, vectors[free_v], self.paths[:, free_v])

    def transl_from_root(self, root_pos: Tensor, betas: Tensor | None = None) -> Tensor:
        """SMPL-X `transl` that puts the pelvis at root_pos (the model rotates about its rest pelvis)."""
        return root_pos - self.rest(betas)[0][0]
