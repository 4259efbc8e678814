"""Reader of AMASS-style motion files with articulated hands (GRAB, TCDHands, SAMP, ... as SMPL-H or SMPL-X npz).

A file is an `.npz` with `poses` (T,156) = SMPL-H [root, 21 body, left hand 15, right hand 15] or (T,165) =
SMPL-X [root, 21 body, jaw, left eye, right eye, left hand 15, right hand 15], axis-angle, flat-hand convention,
and a frame rate under `mocap_framerate` (AMASS SMPL-H) or `mocap_frame_rate` (AMASS SMPL-X). Both hands are
kept; left hands are mirrored into right hands, the space the prior is trained in. Clips are resampled to 30 fps
by quaternion slerp, and hands that barely move (AMASS fills uncaptured hands with a constant pose) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from backend.geometry.rotations import axis_angle_to_quaternion, quat_slerp, quaternion_to_axis_angle
from protocol.errors import BadRequest

from .skeleton import mirror_hand_pose

TARGET_FPS = 30.0
_HAND_COLUMNS = {156: (66, 111), 165: (75, 120)}  # start column of the left and the right hand
MIN_MOTION_RAD = 0.02  # a hand whose joints' mean temporal std is below this carries no captured motion


@dataclass
class HandClip:
    """One right-hand (or mirrored left-hand) pose sequence at 30 fps, with where it came from."""

    pose: np.ndarray  # (T,15,3) float32 axis-angle, right-hand convention
    source: str  # file path and side


def resample(pose: np.ndarray, fps: float, target: float = TARGET_FPS) -> np.ndarray:
    """Resample local axis-angle (T,J,3) from `fps` to `target` by per-joint quaternion slerp."""
    n = pose.shape[0]
    if n < 2 or abs(fps - target) < 1e-6:
        return pose.astype(np.float32)
    t_new = np.arange(0.0, (n - 1) / fps + 1e-9, 1.0 / target) * fps
    i0 = np.clip(np.floor(t_new).astype(int), 0, n - 2)
    frac = torch.as_tensor(t_new - i0, dtype=torch.float64)
    q = axis_angle_to_quaternion(torch.as_tensor(pose, dtype=torch.float64))
    out = quat_slerp(q[i0], q[i0 + 1], frac[:, None].expand(-1, pose.shape[1]))
    return quaternion_to_axis_angle(out).numpy().astype(np.float32)


def read_amass_file(path: Path) -> list[HandClip]:
    """The moving hands of one AMASS-style file as right-hand clips at 30 fps (empty when no hand moves)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "poses" not in data:
                raise BadRequest(f"{path} has no 'poses' array; not an AMASS-style motion file")
            poses = np.asarray(data["poses"], np.float64)
            key = "mocap_framerate" if "mocap_framerate" in data else "mocap_frame_rate"
            if key not in data:
                raise BadRequest(f"{path} has no mocap_framerate / mocap_frame_rate")
            fps = float(data[key])
    except (OSError, ValueError) as exc:
        raise BadRequest(f"cannot read motion file {path}: {exc}") from exc
    if poses.ndim != 2 or poses.shape[1] not in _HAND_COLUMNS:
        raise BadRequest(f"{path}: poses has shape {poses.shape}, expected (T,156) SMPL-H or (T,165) SMPL-X")
    clips: list[HandClip] = []
    for side, start in zip(("left", "right"), _HAND_COLUMNS[poses.shape[1]], strict=True):
        hand = poses[:, start:start + 45].reshape(-1, 15, 3)
        if hand.shape[0] < 2 or hand.std(axis=0).mean() < MIN_MOTION_RAD:
            continue
        if side == "left":
            hand = mirror_hand_pose(hand)
        clips.append(HandClip(resample(hand, fps), f"{path}:{side}"))
    return clips


def read_amass_dir(root: Path) -> list[HandClip]:
    """Every moving hand of every `*.npz` under `root` (recursively), sorted by path for reproducibility."""
    if not root.is_dir():
        raise BadRequest(f"AMASS folder {root} does not exist")
    files = sorted(p for p in root.rglob("*.npz") if p.name != "shape.npz")
    clips = [clip for f in files for clip in read_amass_file(f)]
    if not clips:
        raise BadRequest(f"no AMASS-style file with moving hands found under {root} ({len(files)} npz files)")
    return clips
