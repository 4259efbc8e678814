"""Training of the hand motion prior (`vidrig train hand-prior`): seeded, CPU-friendly, reproducible."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from backend.geometry.rotations import geodesic_angle

from .amass import read_amass_dir
from .data import WindowSampler, split_clips
from .model import DEFAULT_CHECKPOINT, HandMotionPrior, PriorConfig, save_checkpoint
from .skeleton import hand_fk
from .synthetic import generate_dataset

W_ROT, W_POS, W_KL = 1.0, 10.0, 1e-5  # geodesic rotation, landmark position L1, KL (annealed)


@dataclass
class TrainConfig:
    """Everything that defines a training run; stored in the checkpoint."""

    steps: int = 3000
    seed: int = 0
    batch: int = 32  # windows per step
    frames_per_window: int = 32  # decoder is queried at this many random times of each window per step
    lr: float = 1e-3  # Adamax
    kl_cycle: int = 1000  # steps per cyclical KL annealing cycle (weight ramps up over its first half)
    synthetic_clips: int = 800  # synthetic training clips when no AMASS folder is given
    synthetic_frames: int = 256  # frames per synthetic clip (30 fps)
    val_clips: int = 64  # held-out synthetic clips (or 10% of AMASS clips)
    save_every: int = 500  # also write the checkpoint every this many steps (0: only at the end)
    amass: str | None = None  # folder of AMASS-style npz files with hands; replaces the synthetic data
    model: PriorConfig = field(default_factory=PriorConfig)


@dataclass
class TrainReport:
    """What a run achieved: duration, final training losses and the held-out round-trip error."""

    steps: int
    seconds: float
    train_windows_seen: int
    final_losses: dict[str, float]
    val_rot_deg: float  # mean geodesic error of encode(mean) -> decode over held-out windows
    val_landmark_mm: float  # mean 3D landmark error of the same, canonical hand, wrist at the origin
    data: str


def _clips(cfg: TrainConfig) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """Training and held-out clips plus a description of where they came from."""
    if cfg.amass:
        clips = [c.pose for c in read_amass_dir(Path(cfg.amass))]
        train, val = split_clips(clips, 0.1, cfg.seed)
        return train, val, f"AMASS-style folder {cfg.amass}: {len(train)} train / {len(val)} held-out hand clips"
    train = generate_dataset(cfg.synthetic_clips, cfg.synthetic_frames, seed=cfg.seed)
    val = generate_dataset(cfg.val_clips, cfg.synthetic_frames, seed=cfg.seed + 10_000)
    return train, val, (f"synthetic: {len(train)} x {cfg.synthetic_frames} frames train (seed {cfg.seed}), "
                        f"{len(val)} held-out clips (seed {cfg.seed + 10_000})")


def kl_weight(step: int, cycle: int) -> float:
    """Cyclical annealing: within each cycle the KL weight rises linearly over the first half, then holds."""
    phase = (step % cycle) / cycle
    return W_KL * min(1.0, 2.0 * phase)


def losses(model: HandMotionPrior, rots: Tensor, t_idx: Tensor, step: int, cycle: int) -> dict[str, Tensor]:
    """Training losses of a batch of windows (B,W,15,3,3) decoded at frame indices t_idx (B,K)."""
    t = t_idx.to(rots.dtype) * (2.0 / (model.cfg.window - 1)) - 1.0
    pred, mu, logvar = model(rots, t, sample=True)
    target = torch.gather(rots, 1, t_idx[:, :, None, None, None].expand(-1, -1, *rots.shape[2:]))
    rot = geodesic_angle(pred, target).mean()
    _, lm_pred = hand_fk(pred)
    _, lm_gt = hand_fk(target)
    pos = (lm_pred - lm_gt).abs().mean()
    kl = (-0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).sum(-1)).mean()
    total = W_ROT * rot + W_POS * pos + kl_weight(step, cycle) * kl
    return {"total": total, "rot": rot, "pos": pos, "kl": kl}


@torch.no_grad()
def round_trip_error(model: HandMotionPrior, windows: Tensor, batch: int = 64) -> tuple[float, float]:
    """Mean geodesic error (degrees) and landmark error (mm) of encode (mean) -> decode over windows (M,W,15,3,3)."""
    rot_sum, pos_sum, n = 0.0, 0.0, 0
    for i in range(0, windows.shape[0], batch):
        w = windows[i : i + batch]
        mu, _ = model.encode(w)
        pred = model.decode(mu)
        rot_sum += float(geodesic_angle(pred, w).mean()) * w.shape[0]
        _, a = hand_fk(pred)
        _, b = hand_fk(w)
        pos_sum += float((a - b).norm(dim=-1).mean()) * w.shape[0]
        n += w.shape[0]
    return math.degrees(rot_sum / n), 1000.0 * pos_sum / n


def train_hand_prior(cfg: TrainConfig, out: Path = DEFAULT_CHECKPOINT, command: str = "",
                     log: Callable[[str], None] = print) -> TrainReport:
    """Train the prior with `cfg`, write the checkpoint to `out` and report losses and held-out error."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train_clips, val_clips, data_desc = _clips(cfg)
    log(f"data: {data_desc}")
    sampler = WindowSampler(train_clips, cfg.model.window)
    val_windows = WindowSampler(val_clips, cfg.model.window).all_windows(stride=cfg.model.window // 2)
    model = HandMotionPrior(cfg.model)
    opt = torch.optim.Adamax(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps, eta_min=cfg.lr * 0.05)
    t0 = time.perf_counter()
    running: dict[str, float] = {}
    model.train()
    for step in range(cfg.steps):
        rots = sampler.sample(cfg.batch, rng)
        t_idx = torch.as_tensor(
            np.sort(rng.integers(0, cfg.model.window, (cfg.batch, cfg.frames_per_window)), axis=1))
        terms = losses(model, rots, t_idx, step, cfg.kl_cycle)
        opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        for k, v in terms.items():
            val = float(v.detach())
            running[k] = 0.98 * running.get(k, val) + 0.02 * val
        if cfg.save_every and step > 0 and step % cfg.save_every == 0:
            save_checkpoint(model, out, _info(cfg, command, {"steps_done": step}))
        if step % 200 == 0 or step == cfg.steps - 1:
            log(f"step {step:5d}  total {running['total']:.4f}  rot {math.degrees(running['rot']):.2f} deg  "
                f"pos {1000 * running['pos']:.2f} mm  kl {running['kl']:.1f}  {time.perf_counter() - t0:.0f} s")
    seconds = time.perf_counter() - t0
    model.eval()
    val_rot, val_pos = round_trip_error(model, val_windows)
    log(f"held-out round trip: {val_rot:.2f} deg, {val_pos:.2f} mm over {val_windows.shape[0]} windows")
    report = TrainReport(
        steps=cfg.steps, seconds=seconds, train_windows_seen=cfg.steps * cfg.batch,
        final_losses={"total": running["total"], "rot_deg": math.degrees(running["rot"]),
                      "pos_mm": 1000 * running["pos"], "kl": running["kl"]},
        val_rot_deg=val_rot, val_landmark_mm=val_pos, data=data_desc,
    )
    save_checkpoint(model, out, _info(cfg, command, asdict(report)))
    log(f"wrote {out}")
    return report


def _info(cfg: TrainConfig, command: str, report: dict[str, object]) -> dict[str, object]:
    """Provenance stored in a checkpoint (plain types only, so it loads with weights_only=True)."""
    return {"command": command, "train": {k: v for k, v in asdict(cfg).items() if k != "model"},
            "report": report, "torch": str(torch.__version__)}
