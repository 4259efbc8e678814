"""A generator of plausible right-hand finger motion, the prior's built-in training data.

Motion is a chain of key handshapes joined by minimum-jerk transitions (Flash & Hogan 1985) with holds:
- key handshapes come from a small library of named shapes (flat, relaxed, fist, pointing, counting one to
  five, thumbs-up, sign-language-like shapes B, C, L, O, V, W, Y, I, horns, OK), grasps (power, spherical,
  tripod, lateral/key) and pinches, or from free draws of the postural synergies (Santello et al. 1998:
  one coordinated curl of all fingers, a hook that trades MCP for PIP/DIP flexion, a spread, thumb opposition);
- every key shape is perturbed along those synergies, with neighbouring fingers coupled (enslavement:
  the ring finger follows the middle and the little finger);
- fingers start their transitions a few tens of milliseconds apart, some segments repeat (tapping,
  opening-closing), and a small physiological drift rides on holds;
- every frame is clipped into the anatomical limits of `skeleton.LIMITS_DEG`.

Shapes are written in anatomical coordinates (flexion, abduction, twist per joint, `skeleton.JOINT_AXES`)
and returned as SMPL-X right-hand local axis-angle (T,15,3). Unlike band-limited per-joint random processes,
joints here move together in task-shaped synergies between meaningful postures, with bell-shaped velocity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .skeleton import FINGERS, JOINT_AXES, clamp_to_limits

FPS = 30.0
_LONG_FINGERS = ("index", "middle", "ring", "pinky")
_SPREAD_DEG = {"index": 14.0, "middle": 3.0, "ring": -8.0, "pinky": -18.0}


@dataclass(frozen=True)
class Shape:
    """A handshape in synergy parameters: per long finger curl (0 open .. 1 closed) and hook, spread, thumb."""

    curl: tuple[float, float, float, float]  # index, middle, ring, pinky
    spread: float = 0.0  # -0.3 squeezed .. 1 fully spread
    hook: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # >0 moves flexion from MCP to PIP/DIP
    opposition: float = 0.0  # thumb rotated in front of the palm, 0..1
    thumb_flex: float = 0.0  # thumb MCP/IP flexion, -0.2..1
    thumb_abd: float = 0.0  # thumb away from the index, -0.5..1


SHAPES: dict[str, Shape] = {
    "flat": Shape((0.0, 0.0, 0.0, 0.0)),
    "relaxed": Shape((0.2, 0.25, 0.3, 0.35), 0.1, opposition=0.2, thumb_flex=0.2, thumb_abd=0.2),
    "spread": Shape((0.0, 0.0, 0.0, 0.0), 1.0, thumb_abd=0.9),
    "fist": Shape((1.0, 1.0, 1.0, 1.0), -0.1, opposition=0.55, thumb_flex=0.7),
    "fist_thumb_side": Shape((1.0, 1.0, 1.0, 1.0), -0.1, thumb_flex=0.1, thumb_abd=-0.3),
    "point": Shape((0.0, 0.95, 1.0, 1.0), opposition=0.5, thumb_flex=0.6),
    "count_two": Shape((0.0, 0.0, 1.0, 1.0), 0.6, opposition=0.55, thumb_flex=0.7),
    "count_three": Shape((0.0, 0.0, 0.0, 1.0), 0.5, opposition=0.6, thumb_flex=0.8),
    "count_four": Shape((0.0, 0.0, 0.0, 0.0), 0.5, opposition=0.6, thumb_flex=0.9),
    "count_five": Shape((0.0, 0.0, 0.0, 0.0), 0.8, thumb_abd=0.8),
    "thumbs_up": Shape((1.0, 1.0, 1.0, 1.0), thumb_flex=-0.15, thumb_abd=0.6),
    "sign_b": Shape((0.0, 0.0, 0.0, 0.0), -0.2, opposition=0.7, thumb_flex=0.6),
    "sign_c": Shape((0.45, 0.45, 0.45, 0.45), 0.1, hook=(0.3, 0.3, 0.3, 0.3), opposition=0.5, thumb_flex=0.3),
    "sign_l": Shape((0.0, 1.0, 1.0, 1.0), thumb_abd=1.0, thumb_flex=-0.1),
    "sign_o": Shape((0.65, 0.65, 0.65, 0.65), hook=(0.2, 0.2, 0.2, 0.2), opposition=0.9, thumb_flex=0.5),
    "sign_v": Shape((0.0, 0.0, 1.0, 1.0), 1.0, opposition=0.6, thumb_flex=0.7),
    "sign_w": Shape((0.0, 0.0, 0.0, 1.0), 0.8, opposition=0.8, thumb_flex=0.8),
    "sign_y": Shape((1.0, 1.0, 1.0, 0.0), 0.6, thumb_abd=1.0, thumb_flex=-0.1),
    "sign_i": Shape((1.0, 1.0, 1.0, 0.0), opposition=0.6, thumb_flex=0.7),
    "horns": Shape((0.0, 1.0, 1.0, 0.0), 0.6, opposition=0.6, thumb_flex=0.7),
    "ok": Shape((0.6, 0.05, 0.1, 0.15), 0.4, hook=(0.2, 0.0, 0.0, 0.0), opposition=0.85, thumb_flex=0.45),
    "pinch": Shape((0.5, 0.35, 0.4, 0.45), hook=(0.1, 0.0, 0.0, 0.0), opposition=0.8, thumb_flex=0.35),
    "tripod": Shape((0.5, 0.5, 0.7, 0.8), opposition=0.85, thumb_flex=0.4),
    "power_grasp": Shape((0.75, 0.8, 0.85, 0.9), -0.1, opposition=0.6, thumb_flex=0.6),
    "spherical_grasp": Shape((0.45, 0.45, 0.5, 0.5), 0.6, hook=(0.2, 0.2, 0.2, 0.2), opposition=0.7,
                             thumb_flex=0.3),
    "lateral_pinch": Shape((0.8, 0.85, 0.9, 0.95), -0.1, hook=(0.3, 0.2, 0.2, 0.2), thumb_flex=0.15,
                           thumb_abd=-0.2),
    "hook_grip": Shape((0.6, 0.6, 0.6, 0.6), hook=(0.6, 0.6, 0.6, 0.6), thumb_abd=0.2),
}


def shape_angles(s: Shape) -> np.ndarray:
    """Anatomical angles (15,3) radians (flex, abd, twist) of a handshape, before clipping."""
    deg = np.zeros((15, 3))
    for name, curl, hook in zip(_LONG_FINGERS, s.curl, s.hook, strict=True):
        base = 3 * FINGERS.index(name)
        deg[base, 0] = curl * 82.0 * (1.0 - 0.6 * hook) - 6.0 * max(0.0, -curl)
        deg[base + 1, 0] = curl * 98.0 * (1.0 + 0.25 * hook) + 40.0 * max(hook, 0.0) * (1.0 - curl)
        deg[base + 2, 0] = 0.72 * deg[base + 1, 0] - 4.0 * (1.0 - curl)
        deg[base, 1] = _SPREAD_DEG[name] * s.spread * (1.0 - 0.7 * min(max(curl, 0.0), 1.0))
    t = 3 * FINGERS.index("thumb")
    deg[t, 0] = 38.0 * s.opposition + 10.0 * s.thumb_flex
    deg[t, 1] = 28.0 * s.opposition + 32.0 * s.thumb_abd
    deg[t, 2] = 28.0 * s.opposition
    deg[t + 1, 0] = 55.0 * s.thumb_flex
    deg[t + 2, 0] = 70.0 * s.thumb_flex
    return np.radians(deg)


def _perturb(s: Shape, rng: np.random.Generator, amount: float) -> Shape:
    """Move a shape along the synergies: common curl, hook and spread, coupled per-finger curls, thumb."""
    common = rng.normal(0.0, 0.08 * amount)
    own = rng.normal(0.0, 0.07 * amount, 4)
    own[2] = 0.5 * own[2] + 0.25 * (own[1] + own[3])  # the ring finger follows its neighbours
    curl = tuple(float(np.clip(c + common + o, -0.15, 1.05)) for c, o in zip(s.curl, own, strict=True))
    hook_common = rng.normal(0.0, 0.1 * amount)
    hook = tuple(float(np.clip(h + hook_common + rng.normal(0.0, 0.05 * amount), -0.5, 0.8)) for h in s.hook)
    return Shape(
        curl=curl,  # type: ignore[arg-type]
        spread=float(np.clip(s.spread + rng.normal(0.0, 0.15 * amount), -0.3, 1.1)),
        hook=hook,  # type: ignore[arg-type]
        opposition=float(np.clip(s.opposition + rng.normal(0.0, 0.1 * amount), 0.0, 1.0)),
        thumb_flex=float(np.clip(s.thumb_flex + rng.normal(0.0, 0.12 * amount), -0.2, 1.0)),
        thumb_abd=float(np.clip(s.thumb_abd + rng.normal(0.0, 0.12 * amount), -0.5, 1.0)),
    )


def _free_synergy_shape(rng: np.random.Generator) -> Shape:
    """A shape drawn directly in synergy space (not from the library)."""
    curl0 = rng.uniform(-0.05, 1.0)
    gradient = rng.normal(0.0, 0.15)
    curl = tuple(float(np.clip(curl0 + gradient * k + rng.normal(0.0, 0.08), -0.1, 1.0)) for k in range(4))
    hook = float(rng.uniform(-0.3, 0.6))
    return Shape(
        curl=curl,  # type: ignore[arg-type]
        spread=float(rng.uniform(-0.2, 1.0) * (1.0 - 0.5 * curl0)),
        hook=(hook, hook, hook, hook),
        opposition=float(rng.uniform(0.0, 1.0)),
        thumb_flex=float(rng.uniform(-0.15, 1.0)),
        thumb_abd=float(rng.uniform(-0.3, 1.0)),
    )


def sample_key_angles(rng: np.random.Generator) -> np.ndarray:
    """One key posture (15,3) anatomical radians: a perturbed library shape (75%) or a free synergy draw."""
    if rng.random() < 0.75:
        names = sorted(SHAPES)
        shape = _perturb(SHAPES[names[int(rng.integers(len(names)))]], rng, amount=1.0)
    else:
        shape = _free_synergy_shape(rng)
    return clamp_to_limits(shape_angles(shape))


def min_jerk(tau: np.ndarray) -> np.ndarray:
    """Minimum-jerk position profile on [0,1]: 10 t^3 - 15 t^4 + 6 t^5 (zero velocity and acceleration at ends)."""
    t = np.clip(tau, 0.0, 1.0)
    return t**3 * (10.0 - 15.0 * t + 6.0 * t * t)


def _finger_of_joint() -> np.ndarray:
    return np.repeat(np.arange(5), 3)


def generate_angles(rng: np.random.Generator, n_frames: int, fps: float = FPS) -> np.ndarray:
    """Anatomical angles (T,15,3) radians of one synthetic clip of `n_frames` frames."""
    keys: list[np.ndarray] = [sample_key_angles(rng)]
    starts: list[float] = []  # transition start times (s)
    durations: list[float] = []
    t = rng.uniform(0.0, 0.6)
    total = n_frames / fps
    while t < total:
        if rng.random() < 0.2:  # a repeated movement: tapping or opening-closing
            other = sample_key_angles(rng)
            home = keys[-1]
            for _ in range(int(rng.integers(2, 5))):
                for target in (other, home):
                    d = rng.uniform(0.18, 0.35)
                    keys.append(target)
                    starts.append(t)
                    durations.append(d)
                    t += d + rng.uniform(0.0, 0.12)
        else:
            d = rng.uniform(0.25, 1.0)
            keys.append(sample_key_angles(rng))
            starts.append(t)
            durations.append(d)
            t += d + rng.uniform(0.05, 0.9)
    times = np.arange(n_frames) / fps
    out = np.broadcast_to(keys[0], (n_frames, 15, 3)).copy()
    finger = _finger_of_joint()
    for k, (s0, d) in enumerate(zip(starts, durations, strict=True)):
        delay = rng.uniform(0.0, 0.08, 5)[finger]  # (15,) per-finger start offsets
        tau = (times[:, None] - s0 - delay[None]) / d
        w = min_jerk(tau)[..., None]  # (T,15,1)
        out = out + w * (keys[k + 1] - keys[k])[None]
    out = out + _drift(rng, times)
    return clamp_to_limits(out)


def _drift(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """Small slow physiological drift (about one degree) as a sum of three low-frequency sinusoids."""
    freq = rng.uniform(0.2, 1.5, (3, 15, 3))
    phase = rng.uniform(0.0, 2 * np.pi, (3, 15, 3))
    amp = np.radians(rng.uniform(0.2, 0.8, (3, 15, 3)))
    return (amp[None] * np.sin(2 * np.pi * freq[None] * times[:, None, None, None] + phase[None])).sum(1)


def angles_to_pose(angles: np.ndarray) -> np.ndarray:
    """Anatomical angles (...,15,3) -> right-hand local axis-angle (...,15,3)."""
    return np.einsum("jab,...ja->...jb", JOINT_AXES, angles)


def generate_sequence(rng: np.random.Generator, n_frames: int, fps: float = FPS) -> np.ndarray:
    """One synthetic right-hand clip: local axis-angle (T,15,3) float32 at `fps`."""
    return angles_to_pose(generate_angles(rng, n_frames, fps)).astype(np.float32)


def generate_dataset(n_sequences: int, n_frames: int, seed: int, fps: float = FPS) -> list[np.ndarray]:
    """`n_sequences` independent clips (each (T,15,3)), reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    return [generate_sequence(rng, n_frames, fps) for _ in range(n_sequences)]
