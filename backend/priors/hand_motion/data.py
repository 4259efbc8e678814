"""Training data for the hand prior: clips (synthetic or AMASS) held as one padded tensor, sampled as windows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from backend.geometry.rotations import axis_angle_to_matrix


@dataclass
class WindowSampler:
    """Random fixed-length windows from a set of clips of varying length (each at least one window long)."""

    clips: list[np.ndarray]  # each (T_i,15,3) axis-angle, T_i >= window
    window: int

    def __post_init__(self) -> None:
        """Stack the clips (padded) into one rotation-matrix tensor for fast gathering."""
        self.clips = [c for c in self.clips if c.shape[0] >= self.window]
        if not self.clips:
            raise ValueError(f"no clip is at least {self.window} frames long")
        longest = max(c.shape[0] for c in self.clips)
        padded = np.zeros((len(self.clips), longest, 15, 3), np.float32)
        for i, c in enumerate(self.clips):
            padded[i, : c.shape[0]] = c
        self.rots = axis_angle_to_matrix(torch.from_numpy(padded))  # (N,T,15,3,3)
        self.lengths = np.array([c.shape[0] for c in self.clips])
        # sample clips in proportion to how many windows they hold
        self.weights = (self.lengths - self.window + 1) / (self.lengths - self.window + 1).sum()

    def sample(self, batch: int, rng: np.random.Generator) -> Tensor:
        """`batch` random windows (B,window,15,3,3)."""
        idx = rng.choice(len(self.clips), size=batch, p=self.weights)
        starts = (rng.random(batch) * (self.lengths[idx] - self.window + 1)).astype(int)
        frames = torch.as_tensor(starts[:, None] + np.arange(self.window)[None])
        return self.rots[torch.as_tensor(idx)[:, None], frames]

    def all_windows(self, stride: int) -> Tensor:
        """Every window at `stride` frames, in order (M,window,15,3,3), for evaluation."""
        out = [self.rots[i, s : s + self.window] for i, n in enumerate(self.lengths)
               for s in range(0, int(n) - self.window + 1, stride)]
        return torch.stack(out)


def split_clips(clips: list[np.ndarray], val_share: float, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Split whole clips (never windows of one clip) into train and validation sets, reproducibly."""
    order = np.random.default_rng(seed).permutation(len(clips))
    n_val = max(1, round(val_share * len(clips))) if len(clips) > 1 else 0
    val = [clips[i] for i in order[:n_val]]
    train = [clips[i] for i in order[n_val:]]
    return train, val
