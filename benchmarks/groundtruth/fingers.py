"""Synthetic finger motion for the ground truth: per-joint band-limited random processes (seeded).

CMU captured no fingers, so every clip gets finger motion from this generator. It is deliberately a
different family from the hand-prior training data (postural synergies, grasps, pinches, pointing,
counting, minimum-jerk transitions between handshapes): here every degree of freedom is its own
low-pass-filtered Gaussian noise process with its own cut-off frequency, squashed into a clinical
range of motion; the only coupling is the physiological DIP = 2/3 PIP flexion of the long fingers.
No handshape library, no shared synergy basis, no piecewise transitions.

Angles are turned into SMPL-X axis-angle with axes read from the body model's rest hand, so the
motion means the same thing whatever hand proportions the model has.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.signal import butter, sosfiltfilt
from scipy.spatial.transform import Rotation

from benchmarks.data import SHARED_DATA
from protocol.errors import BadRequest
from protocol.skeleton import JOINT_INDEX, NUM_HAND_JOINTS

LONG_FINGERS = ("index", "middle", "ring", "pinky")
DIP_PER_PIP = 2.0 / 3.0  # physiological DIP/PIP flexion coupling of the long fingers

# Range of motion in degrees (clinical ROM tables, kept slightly inside the extremes).
# MCP abduction is signed: positive spreads away from the middle finger (for the middle: towards the thumb).
ROM_DEG: dict[str, tuple[float, float]] = {
    "mcp_flex": (-10.0, 80.0), "pip_flex": (0.0, 100.0),
    "abd_index": (-12.0, 15.0), "abd_middle": (-8.0, 8.0), "abd_ring": (-10.0, 10.0), "abd_pinky": (-10.0, 20.0),
    "thumb_cmc_flex": (-5.0, 40.0), "thumb_cmc_abd": (0.0, 45.0), "thumb_mcp_flex": (0.0, 50.0),
    "thumb_ip_flex": (-10.0, 70.0),
}
CUTOFF_HZ = (0.3, 2.0)  # per-DoF low-pass cut-off, drawn uniformly per clip, hand and DoF


@dataclass(frozen=True)
class FingerAngles:
    """Joint angles (radians) of one hand over T frames, named by degree of freedom."""

    angles: dict[str, np.ndarray]  # each (T,)


def band_limited(rng: np.random.Generator, frames: int, fps: float, cutoff_hz: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian noise low-pass filtered (4th-order Butterworth, zero phase)."""
    pad = int(3 * fps / cutoff_hz)
    white = rng.standard_normal(frames + 2 * pad)
    sos = butter(4, cutoff_hz, btype="low", fs=fps, output="sos")
    x = sosfiltfilt(sos, white)[pad:pad + frames]
    return (x - x.mean()) / max(float(x.std()), 1e-9)


def _squash(z: np.ndarray, lo: float, hi: float, bias: float) -> np.ndarray:
    """Map a unit process into (lo, hi) degrees through a logistic, offset by `bias`; returns radians."""
    return np.radians(lo + (hi - lo) / (1.0 + np.exp(-(1.2 * z + bias))))


def sample_finger_angles(frames: int, fps: float, seed: int) -> FingerAngles:
    """Joint angles of one hand for `frames` frames; the same seed gives the same motion."""
    if frames < 1 or fps <= 0:
        raise BadRequest(f"finger motion needs frames >= 1 and fps > 0, got {frames} and {fps}")
    rng = np.random.default_rng(seed)

    def dof(lo_hi: tuple[float, float]) -> np.ndarray:
        cutoff = rng.uniform(*CUTOFF_HZ)
        bias = rng.normal(0.0, 0.8)
        return _squash(band_limited(rng, frames, fps, min(cutoff, 0.45 * fps)), *lo_hi, bias)

    out: dict[str, np.ndarray] = {}
    for f in LONG_FINGERS:
        out[f"{f}_mcp_flex"] = dof(ROM_DEG["mcp_flex"])
        out[f"{f}_mcp_abd"] = dof(ROM_DEG[f"abd_{f}"])
        out[f"{f}_pip_flex"] = dof(ROM_DEG["pip_flex"])
        out[f"{f}_dip_flex"] = DIP_PER_PIP * out[f"{f}_pip_flex"]
    for name in ("thumb_cmc_flex", "thumb_cmc_abd", "thumb_mcp_flex", "thumb_ip_flex"):
        out[name] = dof(ROM_DEG[name])
    return FingerAngles(out)


def _unit(v: np.ndarray) -> np.ndarray:
    """Normalise a vector."""
    return v / max(float(np.linalg.norm(v)), 1e-12)


def hand_axes(rest_joints: np.ndarray, side: str) -> dict[str, np.ndarray]:
    """Rotation axes (world-aligned rest frame) of each hand DoF, from the rest joints (55,3).

    Flexion turns a finger towards the palm (palms face -Y in the T-pose); abduction turns it in the
    palm plane away from the middle finger.
    """
    j = {name: rest_joints[i] for name, i in JOINT_INDEX.items() if name.startswith(f"{side}_")}
    palm = np.array([0.0, -1.0, 0.0])  # the direction the palm faces in the T-pose
    mid_base = j[f"{side}_middle1"]
    radial = _unit(j[f"{side}_index1"] - j[f"{side}_pinky1"])  # towards the thumb side
    axes: dict[str, np.ndarray] = {}
    for f in LONG_FINGERS:
        d = _unit(j[f"{side}_{f}2"] - j[f"{side}_{f}1"])
        axes[f"{f}_flex"] = _unit(np.cross(d, palm))
        away = j[f"{side}_{f}1"] - mid_base if f != "middle" else radial
        away = _unit(away - np.dot(away, d) * d)
        axes[f"{f}_abd"] = _unit(np.cross(d, away))
    t = _unit(j[f"{side}_thumb2"] - j[f"{side}_thumb1"])
    across = _unit(mid_base - j[f"{side}_thumb1"])
    across = _unit(across - np.dot(across, t) * t)
    axes["thumb_cmc_flex"] = _unit(np.cross(t, across))
    axes["thumb_cmc_abd"] = _unit(np.cross(t, palm))
    axes["thumb_flex"] = _unit(np.cross(t, _unit(palm + across)))
    return axes


def hand_pose_from_angles(angles: FingerAngles, rest_joints: np.ndarray, side: str) -> np.ndarray:
    """SMPL-X hand pose (T,15,3) axis-angle for one side from joint angles, SMPL-X finger order."""
    if side not in ("left", "right"):
        raise BadRequest(f"hand side must be 'left' or 'right', got {side!r}")
    ax = hand_axes(np.asarray(rest_joints, dtype=np.float64), side)
    a = angles.angles
    frames = next(iter(a.values())).shape[0]
    first = JOINT_INDEX[f"{side}_index1"]
    out = np.zeros((frames, NUM_HAND_JOINTS, 3))

    def rv(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
        return angle[:, None] * axis[None]

    for f in LONG_FINGERS:
        base = JOINT_INDEX[f"{side}_{f}1"] - first
        mcp = Rotation.from_rotvec(rv(ax[f"{f}_abd"], a[f"{f}_mcp_abd"])) * Rotation.from_rotvec(
            rv(ax[f"{f}_flex"], a[f"{f}_mcp_flex"]))
        out[:, base] = mcp.as_rotvec()
        out[:, base + 1] = rv(ax[f"{f}_flex"], a[f"{f}_pip_flex"])
        out[:, base + 2] = rv(ax[f"{f}_flex"], a[f"{f}_dip_flex"])
    base = JOINT_INDEX[f"{side}_thumb1"] - first
    cmc = Rotation.from_rotvec(rv(ax["thumb_cmc_abd"], a["thumb_cmc_abd"])) * Rotation.from_rotvec(
        rv(ax["thumb_cmc_flex"], a["thumb_cmc_flex"]))
    out[:, base] = cmc.as_rotvec()
    out[:, base + 1] = rv(ax["thumb_flex"], a["thumb_mcp_flex"])
    out[:, base + 2] = rv(ax["thumb_flex"], a["thumb_ip_flex"])
    return out


def synthetic_hands(frames: int, fps: float, rest_joints: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Left and right hand poses (T,15,3) each, from independent seeded streams."""
    left = hand_pose_from_angles(sample_finger_angles(frames, fps, seed * 2 + 0), rest_joints, "left")
    right = hand_pose_from_angles(sample_finger_angles(frames, fps, seed * 2 + 1), rest_joints, "right")
    return left, right


# ---------------------------------------------------------------- Hand-BMC plausibility check

HAND_BMC_DIR = SHARED_DATA / "hand_bmc"
_ROOT_ORDER = ("thumb", "index", "middle", "ring", "pinky")  # Hand-BMC / OpenPose finger order


@dataclass(frozen=True)
class BmcReport:
    """Rest-hand proportions compared with the Hand-BMC tables (RHD + GANerated statistics)."""

    root_angles: np.ndarray  # (4,) radians between neighbouring wrist->MCP bones
    root_angles_ok: np.ndarray  # (4,) bool, inside [PHI_min, PHI_max]
    bone_ratios: np.ndarray  # (5,2) MCP->PIP and PIP->DIP lengths / wrist->middle-MCP length
    bone_ratios_ok: np.ndarray  # (5,2) bool, inside [bone_len_min, bone_len_max]


def check_hand_bmc(joints: np.ndarray, side: str, bmc_dir: Path = HAND_BMC_DIR) -> BmcReport:
    """Compare one hand of SMPL-X joints (55,3) with the Hand-BMC limit tables (MIT, Hao Meng 2021)."""
    try:
        phi_min, phi_max = np.load(bmc_dir / "PHI_min.npy"), np.load(bmc_dir / "PHI_max.npy")
        len_min, len_max = np.load(bmc_dir / "bone_len_min.npy"), np.load(bmc_dir / "bone_len_max.npy")
    except OSError as exc:
        raise BadRequest(f"Hand-BMC tables not readable in {bmc_dir}: {exc}") from exc
    wrist = joints[JOINT_INDEX[f"{side}_wrist"]]
    roots = [joints[JOINT_INDEX[f"{side}_{f}1"]] - wrist for f in _ROOT_ORDER]
    angles = np.array([np.arccos(np.clip(np.dot(_unit(a), _unit(b)), -1, 1))
                       for a, b in itertools.pairwise(roots)])
    norm = float(np.linalg.norm(roots[2]))
    ratios = np.zeros((5, 2))
    ok = np.zeros((5, 2), dtype=bool)
    for k, f in enumerate(_ROOT_ORDER):
        p1, p2, p3 = (joints[JOINT_INDEX[f"{side}_{f}{i}"]] for i in (1, 2, 3))
        ratios[k] = [np.linalg.norm(p2 - p1) / norm, np.linalg.norm(p3 - p2) / norm]
        bones = [4 * k + 1, 4 * k + 2]  # Hand-BMC bone indices MCP->PIP and PIP->DIP of finger k
        ok[k] = (ratios[k] >= len_min[bones]) & (ratios[k] <= len_max[bones])
    return BmcReport(angles, (angles >= phi_min) & (angles <= phi_max), ratios, ok)
