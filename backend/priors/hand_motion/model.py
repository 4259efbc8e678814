"""The hand motion prior: a VAE whose encoder reads a 128-frame window of local hand pose and whose decoder is
a neural motion field (an MLP of time and the latent code) returning the pose at any time of the window.

Sizes are chosen to train on a laptop CPU in minutes (see README.md); the reference design (HMP, Duran et al.,
WACV 2024) uses a 1024-d latent and 8 layers of width 1024.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from backend.geometry.rotations import axis_angle_to_matrix, matrix_to_rot6d, rot6d_to_matrix
from protocol.errors import ModelMissing

from .skeleton import FINGERS

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "hand_prior.pt"
N_JOINTS = 15


@dataclass
class PriorConfig:
    """Architecture of the prior; stored in every checkpoint."""

    window: int = 128  # frames per window (30 fps)
    latent: int = 128  # latent code size
    width: int = 256  # decoder MLP width
    layers: int = 6  # decoder layers (the last one is the linear output)
    frequencies: int = 7  # positional-encoding octaves 2^0 .. 2^(n-1)
    enc_channels: tuple[int, ...] = field(default_factory=lambda: (160, 160, 192, 128))  # 4 stride-2 convs

    def __post_init__(self) -> None:
        """Accept lists (from a checkpoint) for the channel tuple."""
        self.enc_channels = tuple(int(c) for c in self.enc_channels)


def _finger_order() -> list[int]:
    """Joint indices grouped by finger in FINGERS order (already contiguous in SMPL-X hand order)."""
    return [3 * f + k for f in range(len(FINGERS)) for k in range(3)]


class WindowEncoder(nn.Module):
    """Temporal convolutions over a window (B,T,15,6) -> latent mean and log-variance.

    Skeleton-aware: the first two layers convolve each finger's joints separately (grouped convolutions),
    the last two mix fingers; each layer halves time (128 -> 8 steps).
    """

    def __init__(self, cfg: PriorConfig) -> None:
        super().__init__()
        c = cfg.enc_channels
        groups = len(FINGERS)
        layers: list[nn.Module] = []
        ins = (N_JOINTS * 6, c[0], c[1], c[2])
        for i, (cin, cout) in enumerate(zip(ins, c, strict=True)):
            layers.append(nn.Conv1d(cin, cout, 4, stride=2, padding=1, groups=groups if i < 2 else 1,
                                    padding_mode="replicate"))
            layers.append(nn.LeakyReLU(0.2))
        self.convs = nn.Sequential(*layers)
        steps = cfg.window // 2 ** len(c)
        self.head = nn.Linear(c[-1] * steps, 2 * cfg.latent)
        self.order = _finger_order()

    def forward(self, rot6d: Tensor) -> tuple[Tensor, Tensor]:
        """rot6d (B,T,15,6) -> (mu, logvar) each (B,latent)."""
        b, t = rot6d.shape[:2]
        x = rot6d[:, :, self.order].reshape(b, t, -1).transpose(1, 2)
        h = self.convs(x).flatten(1)
        mu, logvar = self.head(h).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)


class MotionField(nn.Module):
    """Decoder: MLP of [positional encoding of t in [-1,1], z] -> 15 local rotations (6D); input re-fed each layer."""

    def __init__(self, cfg: PriorConfig) -> None:
        super().__init__()
        self.frequencies = cfg.frequencies
        d_in = 1 + 2 * cfg.frequencies + cfg.latent
        self.layers = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(cfg.layers - 1):
            self.layers.append(nn.Linear(d_in if i == 0 else cfg.width + d_in, cfg.width))
            self.norms.append(nn.LayerNorm(cfg.width))
        self.out = nn.Linear(cfg.width, N_JOINTS * 6)
        with torch.no_grad():  # start at the flat hand: 6D of the identity
            self.out.weight.mul_(0.01)
            self.out.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).repeat(N_JOINTS))

    def encode_time(self, t: Tensor) -> Tensor:
        """t (...,) -> [t, sin(2^k pi t), cos(2^k pi t)] (..., 1 + 2F)."""
        k = torch.arange(self.frequencies, dtype=t.dtype, device=t.device)
        arg = t[..., None] * (2.0**k) * math.pi
        return torch.cat([t[..., None], torch.sin(arg), torch.cos(arg)], dim=-1)

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        """z (B,D), t (B,K) or (K,) -> rotation matrices (B,K,15,3,3)."""
        b = z.shape[0]
        if t.dim() == 1:
            t = t.expand(b, -1)
        x = torch.cat([self.encode_time(t), z[:, None].expand(-1, t.shape[1], -1)], dim=-1)
        h = x
        for i, (layer, norm) in enumerate(zip(self.layers, self.norms, strict=True)):
            h = torch.relu(norm(layer(h if i == 0 else torch.cat([h, x], dim=-1))))
        d6 = self.out(h).reshape(b, t.shape[1], N_JOINTS, 6)
        return rot6d_to_matrix(d6)


class HandMotionPrior(nn.Module):
    """The VAE: `encode` a window of right-hand poses, `decode` a latent code at chosen times."""

    def __init__(self, cfg: PriorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or PriorConfig()
        self.encoder = WindowEncoder(self.cfg)
        self.decoder = MotionField(self.cfg)
        self.info: dict[str, Any] = {}  # training provenance, filled by load_hand_prior

    def times(self, n: int | None = None, device: torch.device | str = "cpu") -> Tensor:
        """Normalised times in [-1,1] of the first `n` frames of a window (all `window` frames by default)."""
        w = self.cfg.window
        return torch.arange(w if n is None else n, device=device, dtype=torch.float32) * (2.0 / (w - 1)) - 1.0

    def encode(self, rot_mats: Tensor) -> tuple[Tensor, Tensor]:
        """Local rotations (B,window,15,3,3) -> latent mean and log-variance (B,latent)."""
        return self.encoder(matrix_to_rot6d(rot_mats))

    def encode_pose(self, pose: Tensor) -> Tensor:
        """Axis-angle windows (B,T<=window,15,3) -> latent means (B,latent); short windows repeat their last frame."""
        t = pose.shape[1]
        if t < self.cfg.window:
            pose = torch.cat([pose, pose[:, -1:].expand(-1, self.cfg.window - t, -1, -1)], dim=1)
        mu, _ = self.encode(axis_angle_to_matrix(pose))
        return mu

    def decode(self, z: Tensor, t: Tensor | None = None) -> Tensor:
        """Latent codes (B,latent) -> local rotations (B,K,15,3,3) at times t (default: the whole window)."""
        return self.decoder(z, self.times(device=z.device) if t is None else t)

    def forward(self, rot_mats: Tensor, t: Tensor, sample: bool = True) -> tuple[Tensor, Tensor, Tensor]:
        """Encode a window, sample (or take the mean of) its code and decode at times t: (rots, mu, logvar)."""
        mu, logvar = self.encode(rot_mats)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        return self.decode(z, t), mu, logvar


def save_checkpoint(model: HandMotionPrior, path: Path, info: dict[str, Any]) -> None:
    """Write config, half-precision weights and training info (command, seed, losses) to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().to(torch.float16) if v.is_floating_point() else v.cpu()
             for k, v in model.state_dict().items()}
    torch.save({"format": "vidrig-hand-prior-1", "config": asdict(model.cfg), "state": state, "info": info}, path)


def load_hand_prior(path: str | Path | None = None, device: torch.device | str = "cpu") -> HandMotionPrior:
    """The trained prior from `path` (default: the committed checkpoint), in eval mode, float32, frozen."""
    p = Path(path) if path is not None else DEFAULT_CHECKPOINT
    if not p.is_file():
        raise ModelMissing(f"hand motion prior checkpoint not found at {p}; train one with `vidrig train hand-prior`")
    blob = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != "vidrig-hand-prior-1":
        raise ModelMissing(f"{p} is not a VidRig hand motion prior checkpoint")
    model = HandMotionPrior(PriorConfig(**blob["config"]))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state"].items()})
    model.info = dict(blob.get("info", {}))
    model.eval().requires_grad_(False)
    return model.to(device)
