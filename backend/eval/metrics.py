"""Pose, motion and trajectory error metrics (numpy), defined as GVHMR, WHAM, HMP and Dyn-HaMR evaluate.

Inputs are positions in metres, shaped (T, J, 3) (frames, joints or vertices, xyz). Every metric
returns one value per frame (or per frame pair / window) so callers can average, take medians or
report per-clip numbers; `evaluate_body` and `evaluate_hand` average them into named scalars.

Units (stated once here and in each docstring):
- position errors (MPJPE, PA-MPJPE, PVE, PA-PVE, RA-MPJPE, W/WA/G/GA-MPJPE, foot sliding): millimetres;
- MPJVE: mm/frame, or mm/s when `fps` is given;
- acceleration error (Accel, RA-ACC): mm/frame^2, or mm/s^2 when `fps` is given;
- jitter: GVHMR/WHAM unit, 10 m/s^3 (third difference times fps^3, mean over joints, divided by 10);
- motion derivatives: mm/s, mm/s^2, mm/s^3 (mean magnitude of the 1st/2nd/3rd finite difference);
- RTE: percent of the ground-truth path length.

A `valid` mask (T,) bool drops frames where the ground truth (or the prediction) does not exist, as the
papers do: per-frame metrics skip invalid frames, finite differences skip every window that touches
an invalid frame, and chunked world metrics (W-MPJPE, WA-MPJPE, G-MPJPE, GA-MPJPE) and RTE first
remove invalid frames and then cut the remaining sequence into chunks, as WHAM's evaluation does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from protocol.errors import BadRequest
from protocol.skeleton import JOINT_INDEX, LEFT_HAND_JOINTS, NUM_JOINTS, RIGHT_HAND_JOINTS

M_TO_MM = 1000.0

# Joint subsets in SMPL-X order.
BODY_JOINTS: tuple[int, ...] = tuple(range(22))  # pelvis + 21 body joints (SMPL's 22 body joints)
WHOLE_BODY_JOINTS: tuple[int, ...] = tuple(range(NUM_JOINTS))  # body, face and both hands
HIP_JOINTS: tuple[int, int] = (JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"])
LEFT_WRIST = JOINT_INDEX["left_wrist"]
RIGHT_WRIST = JOINT_INDEX["right_wrist"]
LEFT_HAND_WITH_WRIST: tuple[int, ...] = (LEFT_WRIST, *LEFT_HAND_JOINTS)
RIGHT_HAND_WITH_WRIST: tuple[int, ...] = (RIGHT_WRIST, *RIGHT_HAND_JOINTS)
# Ankles stand in for heels and the SMPL-X "foot" joints for toes: left heel, left toe, right heel, right toe.
FOOT_JOINTS: tuple[int, ...] = (
    JOINT_INDEX["left_ankle"], JOINT_INDEX["left_foot"], JOINT_INDEX["right_ankle"], JOINT_INDEX["right_foot"],
)

WORLD_CHUNK_BODY = 100  # WHAM / GVHMR evaluate world metrics on 100-frame segments
WORLD_CHUNK_HAND = 128  # Dyn-HaMR evaluates global hand metrics on 128-frame segments

Side = Literal["left", "right"]


@dataclass(frozen=True)
class Similarity:
    """A similarity transform x -> scale * rotation @ x + translation, batched over leading dims."""

    scale: np.ndarray  # (...,)
    rotation: np.ndarray  # (..., 3, 3)
    translation: np.ndarray  # (..., 3)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform points (..., N, 3) whose leading dims match the transform's."""
        rotated = np.einsum("...ij,...nj->...ni", self.rotation, points)
        return self.scale[..., None, None] * rotated + self.translation[..., None, :]


@dataclass(frozen=True)
class MotionDerivatives:
    """Mean magnitude per window of the 1st, 2nd and 3rd time derivative of positions."""

    velocity: np.ndarray  # (T-1,) mm/s
    acceleration: np.ndarray  # (T-2,) mm/s^2
    jerk: np.ndarray  # (T-3,) mm/s^3


def fit_similarity(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> Similarity:
    """Least-squares similarity (Umeyama) taking points `src` (..., N, 3) onto `dst` (..., N, 3).

    With `with_scale=False` the scale is fixed to 1 (a rigid fit). Reflections are excluded.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.shape[-1] != 3 or src.ndim < 2:
        raise BadRequest(f"similarity fit needs two (..., N, 3) point sets of one shape, got {src.shape} "
                         f"and {dst.shape}")
    mu_src = src.mean(axis=-2)
    mu_dst = dst.mean(axis=-2)
    xs = src - mu_src[..., None, :]
    ys = dst - mu_dst[..., None, :]
    n = src.shape[-2]
    cov = np.einsum("...ni,...nj->...ij", ys, xs) / n
    u, d, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    sign = np.where(sign == 0, 1.0, sign)
    fix = np.ones(d.shape)
    fix[..., -1] = sign
    rotation = np.einsum("...ij,...j,...jk->...ik", u, fix, vt)
    if with_scale:
        var_src = (xs**2).sum(axis=(-1, -2)) / n
        scale = (d * fix).sum(axis=-1) / np.maximum(var_src, 1e-18)
    else:
        scale = np.ones(src.shape[:-2])
    translation = mu_dst - scale[..., None] * np.einsum("...ij,...j->...i", rotation, mu_src)
    return Similarity(scale=np.asarray(scale), rotation=rotation, translation=translation)


def _pair(pred: np.ndarray, gt: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as float64 (T, N, 3), checked to have one shape."""
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape or p.ndim != 3 or p.shape[-1] != 3:
        raise BadRequest(f"{what}: prediction and ground truth must both be (T, N, 3), got {p.shape} and {g.shape}")
    return p, g


def _valid(valid: np.ndarray | None, frames: int) -> np.ndarray:
    """The (T,) boolean frame mask, all true when none is given."""
    if valid is None:
        return np.ones(frames, dtype=bool)
    v = np.asarray(valid, dtype=bool)
    if v.shape != (frames,):
        raise BadRequest(f"valid mask must have shape ({frames},), got {v.shape}")
    return v


def _windows_valid(valid: np.ndarray, width: int) -> np.ndarray:
    """(T-width+1,) mask: true where all `width` consecutive frames starting there are valid."""
    frames = valid.shape[0]
    if frames < width:
        return np.zeros(0, dtype=bool)
    out = np.ones(frames - width + 1, dtype=bool)
    for k in range(width):
        out &= valid[k:frames - width + 1 + k]
    return out


def _subset(x: np.ndarray, joints: Sequence[int] | None) -> np.ndarray:
    """Select joints along axis 1 (all when `joints` is None)."""
    return x if joints is None else x[:, list(joints)]


def _root_align(x: np.ndarray, root: Sequence[int] | int | None, ref: np.ndarray | None = None) -> np.ndarray:
    """Subtract the mean of the root joint(s) of `ref` (default `x`) from every point of `x`."""
    if root is None:
        return x
    idx = [root] if isinstance(root, int) else list(root)
    src = x if ref is None else ref
    return x - src[:, idx].mean(axis=1, keepdims=True)


def _per_frame_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean Euclidean distance per frame, in millimetres."""
    return np.linalg.norm(pred - gt, axis=-1).mean(axis=-1) * M_TO_MM


def _difference(x: np.ndarray, order: int) -> np.ndarray:
    """The `order`-th forward finite difference along time (axis 0)."""
    return np.diff(x, n=order, axis=0)


# ---------------------------------------------------------------- per-frame (camera-frame) metrics


def mpjpe(pred: np.ndarray, gt: np.ndarray, root: Sequence[int] | int | None = HIP_JOINTS,
          joints: Sequence[int] | None = None, valid: np.ndarray | None = None) -> np.ndarray:
    """Mean per-joint position error (mm) per valid frame, after subtracting each side's root.

    `root` is the joint index (or indices, averaged) both skeletons are translated to; GVHMR and WHAM
    use the mean of the two hips. `None` compares absolute positions. `joints` selects the scored
    joints after alignment.
    """
    p, g = _pair(pred, gt, "MPJPE")
    v = _valid(valid, p.shape[0])
    p, g = _subset(_root_align(p, root), joints), _subset(_root_align(g, root), joints)
    return _per_frame_error(p[v], g[v])


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray, joints: Sequence[int] | None = None,
             valid: np.ndarray | None = None) -> np.ndarray:
    """Procrustes-aligned MPJPE (mm): per frame, the prediction's `joints` are similarity-fitted
    (rotation, translation and scale) to the ground truth before measuring."""
    p, g = _pair(pred, gt, "PA-MPJPE")
    v = _valid(valid, p.shape[0])
    p, g = _subset(p, joints)[v], _subset(g, joints)[v]
    aligned = fit_similarity(p, g, with_scale=True).apply(p)
    return _per_frame_error(aligned, g)


def pve(pred_verts: np.ndarray, gt_verts: np.ndarray, pred_joints: np.ndarray, gt_joints: np.ndarray,
        root: Sequence[int] | int = HIP_JOINTS, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-vertex error (mm): vertices translated by their own skeleton's root joint(s), as GVHMR does."""
    pv, gv = _pair(pred_verts, gt_verts, "PVE")
    pj, gj = _pair(pred_joints, gt_joints, "PVE joints")
    if pj.shape[0] != pv.shape[0]:
        raise BadRequest(f"PVE: {pv.shape[0]} frames of vertices but {pj.shape[0]} frames of joints")
    v = _valid(valid, pv.shape[0])
    return _per_frame_error(_root_align(pv, root, pj)[v], _root_align(gv, root, gj)[v])


def pa_pve(pred_verts: np.ndarray, gt_verts: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Procrustes-aligned per-vertex error (mm): per-frame similarity fit on all vertices."""
    return pa_mpjpe(pred_verts, gt_verts, None, valid)


def mpjve(pred: np.ndarray, gt: np.ndarray, root: Sequence[int] | int | None = HIP_JOINTS,
          joints: Sequence[int] | None = None, valid: np.ndarray | None = None,
          fps: float | None = None) -> np.ndarray:
    """Mean per-joint velocity error: mean over joints of ||v_pred - v_gt|| with v the first difference.

    Per frame pair (t, t+1) where both frames are valid; mm/frame, or mm/s when `fps` is given.
    """
    p, g = _pair(pred, gt, "MPJVE")
    v = _windows_valid(_valid(valid, p.shape[0]), 2)
    p, g = _subset(_root_align(p, root), joints), _subset(_root_align(g, root), joints)
    err = np.linalg.norm(_difference(p, 1) - _difference(g, 1), axis=-1).mean(axis=-1) * M_TO_MM
    return err[v] * (1.0 if fps is None else fps)


def accel_error(pred: np.ndarray, gt: np.ndarray, root: Sequence[int] | int | None = HIP_JOINTS,
                joints: Sequence[int] | None = None, valid: np.ndarray | None = None,
                fps: float | None = None) -> np.ndarray:
    """Acceleration error as in HMMR/VIBE/GVHMR: mean over joints of ||a_pred - a_gt||, a_t = x_{t-1} - 2x_t + x_{t+1}.

    One value per window (t-1, t, t+1) of three valid frames; mm/frame^2, or mm/s^2 when `fps` is given.
    The default hip alignment is the camera-frame variant; pass `root=None` for world-frame joints.
    """
    p, g = _pair(pred, gt, "Accel")
    v = _windows_valid(_valid(valid, p.shape[0]), 3)
    p, g = _subset(_root_align(p, root), joints), _subset(_root_align(g, root), joints)
    err = np.linalg.norm(_difference(p, 2) - _difference(g, 2), axis=-1).mean(axis=-1) * M_TO_MM
    return err[v] * (1.0 if fps is None else fps**2)


# ---------------------------------------------------------------- smoothness of one motion


def motion_derivatives(positions: np.ndarray, fps: float, joints: Sequence[int] | None = None,
                       valid: np.ndarray | None = None) -> MotionDerivatives:
    """Mean magnitude (over joints) of the 1st, 2nd and 3rd finite differences times fps^k, in mm/s^k."""
    x, _ = _pair(positions, positions, "motion derivatives")
    vmask = _valid(valid, x.shape[0])
    x = _subset(x, joints)
    out = []
    for order in (1, 2, 3):
        mag = np.linalg.norm(_difference(x, order), axis=-1).mean(axis=-1) * M_TO_MM * fps**order
        out.append(mag[_windows_valid(vmask, order + 1)])
    return MotionDerivatives(velocity=out[0], acceleration=out[1], jerk=out[2])


def jitter(positions: np.ndarray, fps: float, joints: Sequence[int] | None = None,
           valid: np.ndarray | None = None) -> np.ndarray:
    """Jitter as GVHMR and WHAM report it: mean over joints of ||x_{t+3} - 3x_{t+2} + 3x_{t+1} - x_t|| * fps^3,
    in units of 10 m/s^3 (metres/s^3 divided by 10). One value per window of four valid frames."""
    jerk = motion_derivatives(positions, fps, joints, valid).jerk
    return jerk / M_TO_MM / 10.0


# ---------------------------------------------------------------- world-frame metrics


def _chunks(frames: int, length: int) -> list[slice]:
    """Consecutive slices of `length` frames covering 0..frames (the last may be shorter)."""
    return [slice(s, min(s + length, frames)) for s in range(0, frames, length)]


def _chunked_world_error(pred: np.ndarray, gt: np.ndarray, chunk: int, joints: Sequence[int] | None,
                         valid: np.ndarray | None, first_frames: int | None, what: str) -> np.ndarray:
    """Per-frame error (mm) after one similarity fit per chunk on its first `first_frames` frames
    (all frames when None)."""
    p, g = _pair(pred, gt, what)
    v = _valid(valid, p.shape[0])
    p, g = _subset(p, joints)[v], _subset(g, joints)[v]
    out = []
    for sl in _chunks(p.shape[0], chunk):
        pc, gc = p[sl], g[sl]
        fit_len = pc.shape[0] if first_frames is None else min(first_frames, pc.shape[0])
        sim = fit_similarity(pc[:fit_len].reshape(-1, 3), gc[:fit_len].reshape(-1, 3), with_scale=True)
        aligned = sim.apply(pc.reshape(-1, 3)).reshape(pc.shape)
        out.append(_per_frame_error(aligned, gc))
    return np.concatenate(out) if out else np.zeros(0)


def w_mpjpe(pred: np.ndarray, gt: np.ndarray, chunk: int = WORLD_CHUNK_BODY,
            joints: Sequence[int] | None = BODY_JOINTS, valid: np.ndarray | None = None) -> np.ndarray:
    """World MPJPE (mm, WHAM's W-MPJPE100): each `chunk`-frame segment is similarity-aligned to the ground
    truth using its first two frames only, then every frame of the segment is scored."""
    return _chunked_world_error(pred, gt, chunk, joints, valid, 2, "W-MPJPE")


def wa_mpjpe(pred: np.ndarray, gt: np.ndarray, chunk: int = WORLD_CHUNK_BODY,
             joints: Sequence[int] | None = BODY_JOINTS, valid: np.ndarray | None = None) -> np.ndarray:
    """World-aligned MPJPE (mm, WHAM's WA-MPJPE100): each `chunk`-frame segment is similarity-aligned using
    all its frames, then scored."""
    return _chunked_world_error(pred, gt, chunk, joints, valid, None, "WA-MPJPE")


def rte(pred_root: np.ndarray, gt_root: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Root translation error (%): after one rigid (no scale) fit of the whole predicted root trajectory
    (T,3) onto the ground truth, the per-frame distance divided by the ground-truth path length, x100."""
    p, g = _pair(np.asarray(pred_root)[:, None], np.asarray(gt_root)[:, None], "RTE")
    v = _valid(valid, p.shape[0])
    p, g = p[v, 0], g[v, 0]
    path = float(np.linalg.norm(np.diff(g, axis=0), axis=-1).sum())
    if path <= 0.0:
        raise BadRequest("RTE is undefined: the ground-truth root does not move")
    aligned = fit_similarity(p, g, with_scale=False).apply(p)
    return np.linalg.norm(aligned - g, axis=-1) / path * 100.0


def up_error(pred_up: np.ndarray, gt_up: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Per-frame angle (degrees) between the solved world's up and the true one, both as directions (T,3) in the
    camera frame: how far the world leans (the rig tips over and its floor slopes by this much). No alignment takes
    it away, as it would in the world MPJPEs."""
    p, g = _pair(np.asarray(pred_up)[:, None], np.asarray(gt_up)[:, None], "up error")
    v = _valid(valid, p.shape[0])
    p, g = p[v, 0], g[v, 0]
    cos = (p * g).sum(-1) / np.maximum(np.linalg.norm(p, axis=-1) * np.linalg.norm(g, axis=-1), 1e-12)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def contact_from_velocity(points: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """Contact labels (T-1, F) as GVHMR/WHAM derive them: a point moves less than `threshold` metres
    (default 1 cm) from frame t to t+1."""
    x, _ = _pair(points, points, "contact")
    return np.linalg.norm(np.diff(x, axis=0), axis=-1) < threshold


def foot_sliding(pred_feet: np.ndarray, contact: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Foot sliding (mm per frame): how far each predicted foot point (T,F,3) moves from t to t+1, over
    every (t, foot) where the ground truth says that foot is in contact.

    `contact` is either per frame (T,F) (a pair counts when the foot is in contact at both t and t+1) or
    per frame pair (T-1,F) as `contact_from_velocity` returns; `valid` drops pairs touching invalid frames.
    """
    p, _ = _pair(pred_feet, pred_feet, "foot sliding")
    c = np.asarray(contact, dtype=bool)
    frames, feet = p.shape[:2]
    if c.shape == (frames, feet):
        c = c[:-1] & c[1:]
    elif c.shape != (frames - 1, feet):
        raise BadRequest(f"contact must be ({frames},{feet}) or ({frames - 1},{feet}), got {c.shape}")
    c = c & _windows_valid(_valid(valid, frames), 2)[:, None]
    disp = np.linalg.norm(np.diff(p, axis=0), axis=-1) * M_TO_MM
    return disp[c]


# ---------------------------------------------------------------- hands


def hand_joints(side: Side) -> tuple[int, ...]:
    """The 16 SMPL-X joints of one hand, wrist first (MANO's 16 joints; no fingertips)."""
    if side == "left":
        return LEFT_HAND_WITH_WRIST
    if side == "right":
        return RIGHT_HAND_WITH_WRIST
    raise BadRequest(f"hand side must be 'left' or 'right', got {side!r}")


def ra_mpjpe(pred: np.ndarray, gt: np.ndarray, joints: Sequence[int], valid: np.ndarray | None = None) -> np.ndarray:
    """Root-aligned MPJPE (mm) of a hand: `joints` (wrist first) translated so the wrist is at the origin."""
    p, g = _pair(pred, gt, "RA-MPJPE")
    idx = list(joints)
    return mpjpe(p[:, idx], g[:, idx], root=0, valid=valid)


def ra_acc(pred: np.ndarray, gt: np.ndarray, joints: Sequence[int], valid: np.ndarray | None = None,
           fps: float | None = None) -> np.ndarray:
    """Root-aligned acceleration error of a hand (HMP's RA-ACC): `accel_error` on wrist-centred `joints`;
    mm/frame^2, or mm/s^2 with `fps`."""
    p, g = _pair(pred, gt, "RA-ACC")
    idx = list(joints)
    return accel_error(p[:, idx], g[:, idx], root=0, valid=valid, fps=fps)


def g_mpjpe(pred: np.ndarray, gt: np.ndarray, joints: Sequence[int], chunk: int = WORLD_CHUNK_HAND,
            valid: np.ndarray | None = None) -> np.ndarray:
    """Global hand MPJPE (mm, Dyn-HaMR's G-MPJPE): world joints per 128-frame segment, similarity-aligned
    on the segment's first two frames (the W-MPJPE protocol)."""
    return _chunked_world_error(pred, gt, chunk, joints, valid, 2, "G-MPJPE")


def ga_mpjpe(pred: np.ndarray, gt: np.ndarray, joints: Sequence[int], chunk: int = WORLD_CHUNK_HAND,
             valid: np.ndarray | None = None) -> np.ndarray:
    """Globally aligned hand MPJPE (mm, Dyn-HaMR's GA-MPJPE): each 128-frame segment similarity-aligned
    using all its frames."""
    return _chunked_world_error(pred, gt, chunk, joints, valid, None, "GA-MPJPE")


# ---------------------------------------------------------------- summaries


def _mean(x: np.ndarray) -> float:
    """Mean of a metric's values, NaN when there are none (e.g. every frame masked)."""
    return float(np.mean(x)) if x.size else float("nan")


def _check_full(x: np.ndarray, what: str) -> np.ndarray:
    """A (T,55,3) float64 array of SMPL-X joints."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 3 or a.shape[1:] != (NUM_JOINTS, 3):
        raise BadRequest(f"{what} must be SMPL-X joints (T, {NUM_JOINTS}, 3), got {a.shape}")
    return a


def evaluate_body(pred_cam: np.ndarray, gt_cam: np.ndarray, pred_world: np.ndarray, gt_world: np.ndarray,
                  fps: float, contact: np.ndarray | None = None, valid: np.ndarray | None = None,
                  pred_verts_cam: np.ndarray | None = None, gt_verts_cam: np.ndarray | None = None,
                  joints: Sequence[int] = BODY_JOINTS) -> dict[str, float]:
    """Every body metric averaged over a clip, from SMPL-X joints (T,55,3) in the camera and world frames.

    `joints` picks the scored subset: BODY_JOINTS (default, as the body papers) or WHOLE_BODY_JOINTS.
    Keys (units): mpjpe, pa_mpjpe, pve, pa_pve (mm; pve only with vertices), mpjve (mm/frame),
    accel (mm/frame^2), w_mpjpe, wa_mpjpe (mm, 100-frame chunks), rte (%), jitter (10 m/s^3, of the
    prediction in the world frame), jitter_gt (same, of the ground truth), foot_sliding (mm/frame, on
    `contact` (T,4) ground-truth labels for FOOT_JOINTS, or on GT velocity < 1 cm/frame when None).
    """
    pc, gc = _check_full(pred_cam, "pred_cam"), _check_full(gt_cam, "gt_cam")
    pw, gw = _check_full(pred_world, "pred_world"), _check_full(gt_world, "gt_world")
    feet = list(FOOT_JOINTS)
    c = contact_from_velocity(gw[:, feet]) if contact is None else contact
    out = {
        "mpjpe": _mean(mpjpe(pc, gc, joints=joints, valid=valid)),
        "pa_mpjpe": _mean(pa_mpjpe(pc, gc, joints=joints, valid=valid)),
        "mpjve": _mean(mpjve(pc, gc, joints=joints, valid=valid)),
        "accel": _mean(accel_error(pc, gc, joints=joints, valid=valid)),
        "w_mpjpe": _mean(w_mpjpe(pw, gw, joints=joints, valid=valid)),
        "wa_mpjpe": _mean(wa_mpjpe(pw, gw, joints=joints, valid=valid)),
        "rte": _mean(rte(pw[:, 0], gw[:, 0], valid=valid)),
        "jitter": _mean(jitter(pw, fps, joints=joints, valid=valid)),
        "jitter_gt": _mean(jitter(gw, fps, joints=joints, valid=valid)),
        "foot_sliding": _mean(foot_sliding(pw[:, feet], c, valid=valid)),
    }
    if pred_verts_cam is not None and gt_verts_cam is not None:
        out["pve"] = _mean(pve(pred_verts_cam, gt_verts_cam, pc, gc, valid=valid))
        out["pa_pve"] = _mean(pa_pve(pred_verts_cam, gt_verts_cam, valid=valid))
    return out


def evaluate_hand(pred_world: np.ndarray, gt_world: np.ndarray, side: Side, valid: np.ndarray | None = None,
                  fps: float | None = None) -> dict[str, float]:
    """Every hand metric for one side, averaged over a clip, from SMPL-X joints (T,55,3) in the world frame.

    Keys (units): pa_mpjpe, ra_mpjpe (mm, 16 hand joints), ra_acc (mm/frame^2, or mm/s^2 with `fps`),
    g_mpjpe, ga_mpjpe (mm, 128-frame chunks). `valid` is typically the per-frame hand visibility.
    """
    pw, gw = _check_full(pred_world, "pred_world"), _check_full(gt_world, "gt_world")
    idx = hand_joints(side)
    return {
        "pa_mpjpe": _mean(pa_mpjpe(pw, gw, joints=idx, valid=valid)),
        "ra_mpjpe": _mean(ra_mpjpe(pw, gw, idx, valid=valid)),
        "ra_acc": _mean(ra_acc(pw, gw, idx, valid=valid, fps=fps)),
        "g_mpjpe": _mean(g_mpjpe(pw, gw, idx, valid=valid)),
        "ga_mpjpe": _mean(ga_mpjpe(pw, gw, idx, valid=valid)),
    }
