"""`vidrig bench`: run presets over ground-truth clips (and real videos), score them with the papers' metrics
next to a raw-mediapipe baseline, print one table and write a JSON record for comparison across commits.

Every row of the ground-truth table is scored on the same joints and frames: the body columns on the 12 joints
mediapipe's pose also defines (see `landmark_joints`), on frames where mediapipe found the body; the hand columns
on the 16 SMPL-X hand joints, on frames where the hand is visible in the render and mediapipe found it. The body
columns also need the torso in view: both hips and both shoulders inside the rendered image, since root-relative
and aligned errors hang on them (a frame filled by a hand scores no body instead of mediapipe's guesses). Methods'
joints come from the body model's forward pass of the result (camera frame: `global_orient_c`/`transl_c`; world:
the world parameters). The JSON also holds each method's full `evaluate_body` / `evaluate_hand` summaries on all
frames. Perception runs once per clip and perception settings: the pipeline's StageCache is shared by every run.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from protocol.errors import BadRequest, NotFound, VidrigError
from protocol.skeleton import JOINT_INDEX, NUM_JOINTS

from ..cache.stage_cache import StageCache
from . import metrics as M
from .landmark_joints import BODY_SUBSET, BODY_SUBSET_LABEL, SIDES, body_landmarks_to_joints, hand_landmarks_to_joints

REPO_ROOT = Path(__file__).resolve().parents[2]
SMOKE_DIR = REPO_ROOT / "tests" / "data" / "groundtruth"
GT_DIR_ENV = "VIDRIG_GT_DIR"
BASELINE = "raw mediapipe (per-frame)"
DEFAULT_PRESETS = ("fullbody-default", "preview-fast")
KP2D_MIN_CONFIDENCE = 0.5  # 2D detections below this confidence are left out of the reprojection error
TORSO_JOINTS = tuple(JOINT_INDEX[n] for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder"))
FORWARD_BATCH = 256


@dataclass(frozen=True)
class Column:
    """One table column: the metric key in the JSON and its printed header."""

    key: str
    header: str


TRUTH_COLUMNS: tuple[Column, ...] = (
    Column("mpjpe", "MPJPE"), Column("pa_mpjpe", "PA-MPJPE"), Column("accel", "Accel"), Column("jitter", "Jitter"),
    Column("w_mpjpe", "W-MPJPE"), Column("wa_mpjpe", "WA-MPJPE"), Column("rte", "RTE%"),
    Column("foot_sliding", "FootSlide"), Column("up_err", "Up-err"), Column("hand_pa_mpjpe", "H-PA-MPJPE"),
    Column("hand_ra_mpjpe", "H-RA-MPJPE"), Column("hand_ra_acc", "H-RA-ACC"), Column("fps", "fps"),
)
TRUTH_NOTES = (
    f"body columns: {BODY_SUBSET_LABEL}, frames with mediapipe's body and the torso (hips, shoulders) in view; "
    "MPJPE/PA-MPJPE/W-/WA-MPJPE mm, "
    "Accel mm/frame^2, Jitter 10 m/s^3 (hip-centred camera frame), RTE % of path, FootSlide mm/frame on GT contacts, "
    "Up-err deg between the solved world's up and the true one (how far the rig and its floor lean)",
    "hand columns: 16 joints (wrist + 15) per hand in the camera frame, frames where the hand is visible and "
    "mediapipe found it, mean of both hands; PA/RA-MPJPE mm, RA-ACC mm/frame^2",
    "fps: frames / seconds of the whole preset run (cached stages counted at their original cost); "
    "'-' = not defined for that row (mediapipe has no world trajectory)",
)
VIDEO_COLUMNS: tuple[Column, ...] = (
    Column("jitter", "Jitter"), Column("hand_jitter", "H-Jitter"), Column("reproj_px", "Reproj px"),
    Column("foot_skating", "FootSkate"), Column("coverage_body", "Body cov"), Column("coverage_left", "L-hand cov"),
    Column("coverage_right", "R-hand cov"),
    Column("fps", "fps"),
)
VIDEO_NOTES = (
    f"Jitter 10 m/s^3 on {BODY_SUBSET_LABEL}, hip-centred camera frame; H-Jitter 10 m/s^3 on the 16 hand joints, "
    "wrist-centred, on frames where mediapipe found that hand, mean of both hands; Reproj: mean pixel distance of the "
    f"projected body landmarks to mediapipe's 2D detections (confidence >= {KP2D_MIN_CONFIDENCE})",
    "FootSkate mm/frame of ankles/feet while in contact (within 5 cm of their lowest height and slower than "
    "0.35 m/s); coverage: fraction of frames with a body / hand (mediapipe: detected; methods: solved)",
)


# ---------------------------------------------------------------- suites and ground truth


@dataclass(frozen=True)
class BenchClip:
    """One video to benchmark, with its ground-truth file when there is one."""

    name: str
    video: Path
    truth: Path | None = None


@dataclass
class GroundTruth:
    """The rendered clip's known motion, as SMPL-X joints in the world and camera frames."""

    fps: float
    joints_world: np.ndarray  # (T,55,3)
    joints_cam: np.ndarray  # (T,55,3)
    contacts: np.ndarray  # (T,4) bool: left heel, left toe, right heel, right toe
    hand_visible: np.ndarray  # (T,2) bool, 0 = left hand
    body_visible: np.ndarray  # (T,) bool: the torso joints (TORSO_JOINTS) project inside the image
    up_cam: np.ndarray | None = None  # (T,3) the world's up in the camera frame

    def frames(self, indices: Sequence[int]) -> GroundTruth:
        """The ground truth at the given source frame indices; BadRequest when one lies outside the clip."""
        idx = np.asarray(indices, dtype=np.int64)
        total = self.joints_world.shape[0]
        if idx.size and (idx.min() < 0 or idx.max() >= total):
            raise BadRequest(f"frames {idx.min()}..{idx.max()} lie outside the ground truth's {total} frames")
        return GroundTruth(self.fps, self.joints_world[idx], self.joints_cam[idx], self.contacts[idx],
                           self.hand_visible[idx], self.body_visible[idx],
                           None if self.up_cam is None else self.up_cam[idx])


def resolve_suite(suite: str) -> Path:
    """The folder of a suite: `smoke` (committed clips), `full` ($VIDRIG_GT_DIR or the user cache) or a path."""
    if suite == "smoke":
        folder = SMOKE_DIR
    elif suite == "full":
        env = os.environ.get(GT_DIR_ENV)
        folder = Path(env).expanduser() if env else Path.home() / ".cache" / "vidrig" / "groundtruth-full"
        if not folder.is_dir() or not any(folder.glob("*.npz")):
            raise NotFound(f"the full ground-truth suite is not at {folder}; make it with "
                           f"`python -m benchmarks.groundtruth --suite full --out {folder}` "
                           f"(or set {GT_DIR_ENV} to where it is)")
    else:
        folder = Path(suite).expanduser()
    if not folder.is_dir():
        raise NotFound(f"benchmark suite folder not found: {folder}")
    return folder.resolve()


def list_clips(folder: Path, only: Sequence[str] | None = None) -> list[BenchClip]:
    """Clips of a suite folder: those named in index.json, else every NAME.mp4 with a NAME.npz beside it."""
    index = folder / "index.json"
    if index.is_file():
        names = [str(c["name"]) for c in json.loads(index.read_text())["clips"]]
    else:
        names = sorted(p.stem for p in folder.glob("*.mp4") if p.with_suffix(".npz").is_file())
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise BadRequest(f"no clip named {', '.join(unknown)} in {folder}; it has {', '.join(names) or 'none'}")
        names = [n for n in names if n in set(only)]
    clips = []
    for name in names:
        video, truth = folder / f"{name}.mp4", folder / f"{name}.npz"
        for path in (video, truth):
            if not path.is_file():
                raise NotFound(f"benchmark clip {name}: {path} is missing")
        clips.append(BenchClip(name, video, truth))
    if not clips:
        raise NotFound(f"no benchmark clips (index.json, or NAME.mp4 + NAME.npz pairs) in {folder}")
    return clips


def load_ground_truth(path: Path) -> GroundTruth:
    """Read a generator's NAME.npz: world joints, camera extrinsics, foot contacts and hand visibility."""
    try:
        with np.load(path, allow_pickle=False) as data:
            joints = np.asarray(data["joints"], np.float64)
            r_w2c = np.asarray(data["R_w2c"], np.float64)
            t_w2c = np.asarray(data["t_w2c"], np.float64)
            contacts = np.asarray(data["contacts"], bool)
            hand_visible = np.asarray(data["hand_visible"], bool)
            fps = float(data["fps"])
            k = np.asarray(data["K"], np.float64)
            size = (int(data["width"]), int(data["height"]))
    except (OSError, KeyError, ValueError) as exc:
        raise BadRequest(f"ground truth {path} is unreadable or lacks a key: {exc}") from exc
    cam = np.einsum("tij,tnj->tni", r_w2c, joints) + t_w2c[:, None]
    return GroundTruth(fps, joints, cam, contacts, hand_visible, body_in_view(cam, k, size), r_w2c[:, :, 1])


def body_in_view(joints_cam: np.ndarray, k: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(T,) whether both hips and both shoulders (joints (T,55,3), camera frame) project into the image of
    `size` (width, height) through K."""
    pts = joints_cam[:, list(TORSO_JOINTS)]
    z = pts[..., 2]
    uv = np.einsum("ij,tnj->tni", k, pts)[..., :2] / np.where(z > 1e-6, z, 1.0)[..., None]
    inside = (z > 1e-6) & (uv[..., 0] >= 0) & (uv[..., 0] < size[0]) & (uv[..., 1] >= 0) & (uv[..., 1] < size[1])
    return inside.all(axis=1)


# ---------------------------------------------------------------- joints of a result


@dataclass
class Solved:
    """A method's result as SMPL-X joints (NaN where it has none), plus its landmarks and hand validity."""

    joints_world: np.ndarray  # (T,55,3)
    joints_cam: np.ndarray  # (T,55,3)
    landmarks_world: np.ndarray | None  # (T,33,3) mediapipe body layout, world frame
    hand_valid: np.ndarray  # (T,2) bool
    has_body: bool


def _world_to_cam(points: np.ndarray, r_w2c: np.ndarray, t_w2c: np.ndarray) -> np.ndarray:
    """World points (T,N,3) into the camera frame with per-frame (T,3,3), (T,3) extrinsics."""
    return np.einsum("tij,tnj->tni", r_w2c, points) + t_w2c[:, None]


def solved_joints(result: Any, models_dir: str | None = None) -> Solved:
    """Joints of a Result: the body model's forward of the SMPL-X parameters, or of the MANO hands alone."""
    import torch

    from backend.models.base import BodyPose, HandPose
    from backend.models.loader import load_body_model, load_hand_model

    frames = len(result.meta.frame_indices)
    hand_valid = np.ones((frames, 2), bool)
    if result.smplx is not None:
        sm = result.smplx
        frames = sm.num_frames
        model = load_body_model(result.meta.body_model, models_dir, result.meta.gender)
        poses = torch.as_tensor(sm.poses(), dtype=torch.float32).reshape(frames, NUM_JOINTS, 3)
        betas = torch.as_tensor(sm.betas, dtype=torch.float32).reshape(1, -1)
        parts: dict[str, list[np.ndarray]] = {"world": [], "cam": [], "lm": []}
        with torch.no_grad():
            for s in range(0, frames, FORWARD_BATCH):
                sl = slice(s, min(s + FORWARD_BATCH, frames))
                world = BodyPose.from_full_pose(poses[sl], betas=betas,
                                                transl=torch.as_tensor(sm.transl[sl], dtype=torch.float32))
                out_w = model(world, return_vertices=False)
                cam_pose = poses[sl].clone()
                cam_pose[:, 0] = torch.as_tensor(sm.global_orient_c[sl], dtype=torch.float32)
                cam = BodyPose.from_full_pose(cam_pose, betas=betas,
                                              transl=torch.as_tensor(sm.transl_c[sl], dtype=torch.float32))
                parts["world"].append(out_w.joints.double().numpy())
                parts["lm"].append(out_w.landmarks_body.double().numpy())
                parts["cam"].append(model(cam, return_vertices=False).joints.double().numpy())
        for col, side in enumerate(SIDES):
            if side in result.hands:
                hand_valid[:, col] = np.asarray(result.hands[side].valid, bool)
        return Solved(np.concatenate(parts["world"]), np.concatenate(parts["cam"]), np.concatenate(parts["lm"]),
                      hand_valid, True)
    if not result.hands or result.camera is None:
        raise BadRequest(f"the {result.meta.method} result has neither a body nor hands with a camera to score")
    world = np.full((frames, NUM_JOINTS, 3), np.nan)
    name = "mano" if result.meta.body_model == "smplx" else "default"
    for col, side in enumerate(SIDES):
        hand = result.hands.get(side)
        if hand is None:
            hand_valid[:, col] = False
            continue
        pose = HandPose(global_orient=torch.as_tensor(hand.global_orient, dtype=torch.float32),
                        hand_pose=torch.as_tensor(hand.hand_pose, dtype=torch.float32),
                        betas=torch.as_tensor(hand.betas, dtype=torch.float32).reshape(1, -1),
                        transl=torch.as_tensor(hand.transl, dtype=torch.float32))
        with torch.no_grad():
            joints = load_hand_model(name, side, models_dir)(pose).joints.double().numpy()
        world[:, list(M.hand_joints(side))] = joints
        hand_valid[:, col] = np.asarray(hand.valid, bool)
    cam = _world_to_cam(world, np.asarray(result.camera.R_w2c, np.float64), np.asarray(result.camera.t_w2c, np.float64))
    return Solved(world, cam, None, hand_valid, False)


# ---------------------------------------------------------------- scoring


def _nanmean(values: Sequence[float]) -> float:
    """Mean of the finite values, NaN when there are none."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _metric(fn: Callable[[], np.ndarray]) -> float:
    """A metric's mean over its values; NaN when it has none or is undefined (e.g. RTE of a still root)."""
    try:
        values = fn()
    except BadRequest:
        return float("nan")
    return float(np.mean(values)) if values.size else float("nan")


def _finite(x: np.ndarray, joints: Sequence[int], valid: np.ndarray) -> bool:
    """Whether the chosen joints are finite on every valid frame (and there is at least one)."""
    return bool(valid.any()) and bool(np.isfinite(x[valid][:, list(joints)]).all())


def _hip_centred(x: np.ndarray) -> np.ndarray:
    """Joints relative to the mid-point of the two hips, per frame."""
    return x - x[:, list(M.HIP_JOINTS)].mean(axis=1, keepdims=True)


def score_body_camera(pred_cam: np.ndarray, gt_cam: np.ndarray, fps: float, valid: np.ndarray) -> dict[str, float]:
    """MPJPE, PA-MPJPE, accel error and hip-centred jitter on the common body subset (camera frame)."""
    keys = ("mpjpe", "pa_mpjpe", "accel", "jitter")
    if not _finite(pred_cam, BODY_SUBSET, valid):
        return {k: float("nan") for k in keys}
    j = BODY_SUBSET
    return {
        "mpjpe": _metric(lambda: M.mpjpe(pred_cam, gt_cam, joints=j, valid=valid)),
        "pa_mpjpe": _metric(lambda: M.pa_mpjpe(pred_cam, gt_cam, joints=j, valid=valid)),
        "accel": _metric(lambda: M.accel_error(pred_cam, gt_cam, joints=j, valid=valid)),
        "jitter": _metric(lambda: M.jitter(_hip_centred(pred_cam), fps, joints=j, valid=valid)),
    }


def score_body_world(pred_world: np.ndarray, gt: GroundTruth, valid: np.ndarray) -> dict[str, float]:
    """W-MPJPE, WA-MPJPE (common subset), RTE (pelvis) and foot sliding on the GT contacts (world frame)."""
    keys = ("w_mpjpe", "wa_mpjpe", "rte", "foot_sliding")
    if not _finite(pred_world, (*BODY_SUBSET, 0, *M.FOOT_JOINTS), valid):
        return {k: float("nan") for k in keys}
    gw, j = gt.joints_world, BODY_SUBSET
    return {
        "w_mpjpe": _metric(lambda: M.w_mpjpe(pred_world, gw, joints=j, valid=valid)),
        "wa_mpjpe": _metric(lambda: M.wa_mpjpe(pred_world, gw, joints=j, valid=valid)),
        "rte": _metric(lambda: M.rte(pred_world[:, 0], gw[:, 0], valid=valid)),
        "foot_sliding": _metric(lambda: M.foot_sliding(pred_world[:, list(M.FOOT_JOINTS)], gt.contacts, valid=valid)),
    }


def score_hands_camera(pred_cam: np.ndarray, gt_cam: np.ndarray, valid: np.ndarray) -> dict[str, float]:
    """Hand PA-MPJPE, RA-MPJPE and RA-ACC in the camera frame, each the mean of the two hands' clip means.

    `valid` (T,2) picks each hand's frames; a hand with no valid frame (or non-finite joints there) is left out.
    """
    per_side: dict[str, list[float]] = {"hand_pa_mpjpe": [], "hand_ra_mpjpe": [], "hand_ra_acc": []}
    for col, side in enumerate(SIDES):
        idx = M.hand_joints(side)
        v = valid[:, col]
        if not _finite(pred_cam, idx, v):
            continue
        per_side["hand_pa_mpjpe"].append(_metric(lambda idx=idx, v=v: M.pa_mpjpe(pred_cam, gt_cam, joints=idx,
                                                                               valid=v)))
        per_side["hand_ra_mpjpe"].append(_metric(lambda idx=idx, v=v: M.ra_mpjpe(pred_cam, gt_cam, idx, valid=v)))
        per_side["hand_ra_acc"].append(_metric(lambda idx=idx, v=v: M.ra_acc(pred_cam, gt_cam, idx, valid=v)))
    return {k: _nanmean(v) for k, v in per_side.items()}


def full_summaries(solved: Solved, gt: GroundTruth) -> dict[str, Any]:
    """A method's complete `evaluate_body` (22 body joints, all frames) and world `evaluate_hand` per visible hand."""
    out: dict[str, Any] = {}
    if solved.has_body and gt.body_visible.any():
        try:
            out["body"] = M.evaluate_body(solved.joints_cam, gt.joints_cam, solved.joints_world, gt.joints_world,
                                          gt.fps, contact=gt.contacts, valid=gt.body_visible)
        except BadRequest as exc:
            out["body"] = {"error": exc.message}
    for col, side in enumerate(SIDES):
        v = gt.hand_visible[:, col] & solved.hand_valid[:, col]
        if _finite(solved.joints_world, M.hand_joints(side), v):
            out[f"hand_{side}"] = M.evaluate_hand(solved.joints_world, gt.joints_world, side, valid=v)
    return out


def reprojection_px(landmarks_world: np.ndarray, camera: Any, kp2d: np.ndarray, valid: np.ndarray) -> float:
    """Mean pixel distance between the projected model landmarks (T,33,3) and the 2D detections (T,33,3)."""
    pts = _world_to_cam(landmarks_world, np.asarray(camera.R_w2c, np.float64), np.asarray(camera.t_w2c, np.float64))
    k = np.asarray(camera.K, np.float64)
    z = pts[..., 2:3]
    uv = np.einsum("ij,tnj->tni", k, pts)[..., :2] / np.where(np.abs(z) < 1e-6, 1e-6, z)
    mask = valid[:, None] & (kp2d[..., 2] >= KP2D_MIN_CONFIDENCE) & (z[..., 0] > 0)
    if not mask.any():
        return float("nan")
    return float(np.linalg.norm(uv - kp2d[..., :2], axis=-1)[mask].mean())


def foot_contacts(feet_world: np.ndarray, fps: float, height: float = 0.05, speed: float = 0.35) -> np.ndarray:
    """Contact labels (T,F) without ground truth: the foot point is within `height` m of its lowest height in the
    clip (world Y up) and slower than `speed` m/s (the ground-truth generator's rule)."""
    y = feet_world[..., 1]
    low = y <= np.nanmin(y, axis=0, keepdims=True) + height
    vel = np.linalg.norm(np.diff(feet_world, axis=0), axis=-1) * fps
    slow = np.concatenate([vel[:1], vel], axis=0) < speed if len(feet_world) > 1 else np.ones(low.shape, bool)
    return low & slow


def hand_jitter(joints: np.ndarray, fps: float, valid: np.ndarray) -> float:
    """Mean over the two hands of the jitter (10 m/s^3) of the 16 wrist-centred hand joints of (T,55,3), on each
    hand's `valid` (T,2) frames; NaN when neither hand has four valid frames in a row."""
    out = []
    for col, side in enumerate(SIDES):
        idx = list(M.hand_joints(side))
        v = np.asarray(valid[:, col], bool)
        if _finite(joints, idx, v):
            centred = joints - joints[:, idx[:1]]
            out.append(_metric(lambda centred=centred, idx=idx, v=v: M.jitter(centred, fps, joints=idx, valid=v)))
    return _nanmean(out)


def score_video(solved: Solved | None, obs: Any, result: Any | None, detections: Any | None = None) -> dict[str, float]:
    """What can be measured on a video without ground truth, for a method (solved) or the mediapipe baseline.

    `detections`: the observations the method itself solved from (its preset's perception settings), which its
    2D reprojection error is measured against; `obs` (the baseline's) when None. With other perception settings
    a method may follow another person in a crowd, and against the baseline's detections it would score that."""
    valid = np.asarray(obs.body_valid, bool)
    hands_seen = np.asarray(obs.hand_valid, bool)
    if solved is None:
        joints = body_landmarks_to_joints(obs.body_kp3d)
        return {
            "jitter": _metric(lambda: M.jitter(_hip_centred(joints), obs.fps, joints=BODY_SUBSET, valid=valid))
            if _finite(joints, BODY_SUBSET, valid) else float("nan"),
            "hand_jitter": hand_jitter(hand_landmarks_to_joints(obs.hand_kp3d), obs.fps, hands_seen),
            "reproj_px": float("nan"), "foot_skating": float("nan"),
            "coverage_body": float(valid.mean()),
            "coverage_left": float(obs.hand_valid[:, 0].mean()), "coverage_right": float(obs.hand_valid[:, 1].mean()),
        }
    frames = solved.joints_cam.shape[0]
    all_frames = np.ones(frames, bool)
    same = len(valid) == frames  # then jitter uses the baseline's frames, so the rows compare
    out = {"jitter": float("nan"), "reproj_px": float("nan"), "foot_skating": float("nan"),
           "hand_jitter": hand_jitter(solved.joints_cam, obs.fps, hands_seen & solved.hand_valid) if same
           else float("nan")}
    if solved.has_body and _finite(solved.joints_cam, BODY_SUBSET, all_frames):
        out["jitter"] = _metric(lambda: M.jitter(_hip_centred(solved.joints_cam), obs.fps, joints=BODY_SUBSET,
                                                 valid=valid if same else None))
        feet = solved.joints_world[:, list(M.FOOT_JOINTS)]
        out["foot_skating"] = _metric(lambda: M.foot_sliding(feet, foot_contacts(feet, obs.fps)))
        if solved.landmarks_world is not None and result.camera is not None and same:
            seen = obs if detections is None else detections
            out["reproj_px"] = reprojection_px(solved.landmarks_world, result.camera, seen.body_kp2d,
                                               np.asarray(seen.body_valid, bool))
    body_ok = np.isfinite(solved.joints_world[:, BODY_SUBSET]).all(axis=(1, 2)) if solved.has_body else ~all_frames
    out["coverage_body"] = float(body_ok.mean())
    out["coverage_left"] = float(solved.hand_valid[:, 0].mean())
    out["coverage_right"] = float(solved.hand_valid[:, 1].mean())
    return out


def score_truth(body_cam: np.ndarray, hands_cam: np.ndarray, body_world: np.ndarray | None, gt: GroundTruth,
                body_valid: np.ndarray, hand_valid: np.ndarray, up_cam: np.ndarray | None = None) -> dict[str, float]:
    """One row's ground-truth columns (without fps) on the common joints and frames.

    The body columns use `body_valid` frames that also have the body in view (`gt.body_visible`). Body and hand
    joints (T,55,3) come apart because mediapipe's hands have their own wrists; a method passes its one skeleton
    twice. `body_world` None (no world trajectory) leaves the world columns undefined, and `up_cam` None (T,3: the
    solved world's up in the camera frame) the up error.
    """
    body_valid = np.asarray(body_valid, bool) & gt.body_visible
    out = score_body_camera(body_cam, gt.joints_cam, gt.fps, body_valid)
    if body_world is None:
        out.update({k: float("nan") for k in ("w_mpjpe", "wa_mpjpe", "rte", "foot_sliding")})
    else:
        out.update(score_body_world(body_world, gt, body_valid))
    out["up_err"] = (float("nan") if up_cam is None or gt.up_cam is None
                     else _metric(lambda: M.up_error(up_cam, gt.up_cam, valid=body_valid)))
    out.update(score_hands_camera(hands_cam, gt.joints_cam, hand_valid))
    return out


# ---------------------------------------------------------------- running


class TimedStageCache(StageCache):
    """The pipeline's StageCache that also notes how long each stage served from it originally took."""

    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.hits: dict[str, float] = {}

    def get(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """As StageCache.get; a hit on a timed stage records its stage name and original seconds."""
        hit = super().get(key)
        if hit is not None and "seconds" in hit[1]:
            self.hits[str(hit[1].get("stage", key))] = float(hit[1]["seconds"])
        return hit


@dataclass
class RowRun:
    """One row on one clip: its metrics, frame count, cost and per-stage timings."""

    metrics: dict[str, float]
    frames: int
    seconds: float  # wall time of the run plus the original cost of the stages that came from the cache
    timings: dict[str, float] = field(default_factory=dict)  # the result's seconds per stage run now, and total
    cached: dict[str, float] = field(default_factory=dict)  # stages served from the cache: original seconds
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchOptions:
    """What to run: presets, frame range and where the pipeline runs."""

    presets: list[str]
    cache_dir: Path
    frames: list[int] | None = None
    device: str = "cpu"
    body_model: str | None = None
    models_dir: str | None = None


Log = Callable[[str], None]


def _run_preset(video: Path, preset: str, options: BenchOptions, cache: TimedStageCache,
                log: Log) -> tuple[Any, RowRun]:
    """Run one preset on one video through the pipeline; the RowRun's metrics are filled by the caller."""
    from ..pipeline import make_spec, run_job

    spec = make_spec(str(video), preset=preset, frames=options.frames, body_model=options.body_model,
                     models_dir=options.models_dir)
    cache.hits = {}
    t0 = time.perf_counter()
    result, ctx = run_job(spec, cache, device=options.device)
    wall = time.perf_counter() - t0
    cached = {k: v for k, v in cache.hits.items() if k not in ctx.timings}
    seconds = wall + sum(cached.values())
    frames = len(result.meta.frame_indices)
    log(f"bench: {video.name} / {preset}: {frames} frames in {wall:.1f} s"
        + (f" (cached: {', '.join(cached)})" if cached else ""))
    timings = {k: float(v) for k, v in result.meta.timings.items()}
    return result, RowRun({}, frames, seconds, timings, cached)


def _observations(video: Path, preset: str, options: BenchOptions, cache: TimedStageCache) -> tuple[Any, float]:
    """The clip's perception output under `preset`'s perception settings, and what computing it cost (now, or
    originally when it came from the cache); the presets' runs then find it in the shared cache."""
    from ..methods.base import JobContext
    from ..pipeline import job_settings, make_spec

    spec = make_spec(str(video), preset=preset, frames=options.frames, body_model=options.body_model,
                     models_dir=options.models_dir)
    ctx = JobContext(spec, job_settings(spec), cache, device=options.device)
    cache.hits = {}
    obs = ctx.observations()
    return obs, float(ctx.timings.get("perception", cache.hits.get("perception", float("nan"))))


def _fps(frames: int, seconds: float) -> float:
    """Frames per second, NaN when the cost is unknown."""
    return frames / seconds if seconds > 0 and math.isfinite(seconds) else float("nan")


def _failed(columns: Sequence[Column], error: VidrigError) -> RowRun:
    """The row of a preset that raised: every metric undefined, the error kept for the table notes and JSON."""
    return RowRun({c.key: float("nan") for c in columns}, 0, 0.0,
                  details={"error": f"{error.code.value}: {error.message}"})


def _score_preset(clip: BenchClip, preset: str, result: Any, row: RowRun, obs: Any, gt_all: GroundTruth | None,
                  models_dir: str | None, own_obs: Any) -> None:
    """Fill a preset's metrics on one clip (ground-truth columns when there is ground truth, else video columns)."""
    solved = solved_joints(result, models_dir)
    if gt_all is None:
        row.metrics = score_video(solved, obs, result, own_obs)
    else:
        frame_idx = [int(i) for i in obs.frame_indices]
        if [int(i) for i in result.meta.frame_indices] != frame_idx:
            raise BadRequest(f"{clip.name}: preset {preset} solved frames {result.meta.frame_indices[:3]}... but "
                             f"perception has {frame_idx[:3]}...; they must match to be compared")
        gt = gt_all.frames(frame_idx)
        hand_valid = gt.hand_visible & obs.hand_valid & solved.hand_valid
        up = None if result.camera is None else np.asarray(result.camera.R_w2c, np.float64)[:, :, 1]
        row.metrics = score_truth(solved.joints_cam, solved.joints_cam,
                                  solved.joints_world if solved.has_body else None, gt,
                                  np.asarray(obs.body_valid, bool), hand_valid, up)
        row.details = full_summaries(solved, gt)
    row.metrics["fps"] = _fps(row.frames, row.seconds)


def bench_clip(clip: BenchClip, options: BenchOptions, cache: TimedStageCache, log: Log) -> dict[str, RowRun]:
    """Every preset and the mediapipe baseline on one clip, scored against its ground truth when it has one.

    Perception runs first (under the first preset's settings) and is the baseline; a preset that fails on the clip
    gets a row of undefined metrics with its error, and the others still run.
    """
    if not options.presets:
        raise BadRequest("bench needs at least one preset")
    video = clip.video.resolve()
    obs, perception_s = _observations(video, options.presets[0], options, cache)
    columns = TRUTH_COLUMNS if clip.truth is not None else VIDEO_COLUMNS
    gt_all = load_ground_truth(clip.truth) if clip.truth is not None else None
    frame_idx = [int(i) for i in obs.frame_indices]
    coverage = {"body": float(obs.body_valid.mean()), "left": float(obs.hand_valid[:, 0].mean()),
                "right": float(obs.hand_valid[:, 1].mean())}
    details: dict[str, Any] = {"perception_of_preset": options.presets[0], "coverage": coverage}
    if gt_all is None:
        base_metrics = score_video(None, obs, None)
    else:
        gt = gt_all.frames(frame_idx)
        base_metrics = score_truth(body_landmarks_to_joints(obs.body_kp3d), hand_landmarks_to_joints(obs.hand_kp3d),
                                   None, gt, obs.body_valid, gt.hand_visible & obs.hand_valid)
        details["jitter_gt"] = _metric(lambda: M.jitter(_hip_centred(gt.joints_cam), gt.fps, joints=BODY_SUBSET,
                                                        valid=gt.body_visible))
        coverage["body_in_view"] = float(gt.body_visible.mean())
    base_metrics["fps"] = _fps(len(frame_idx), perception_s)
    rows = {BASELINE: RowRun(base_metrics, len(frame_idx), perception_s, {"perception": perception_s}, {}, details)}
    for preset in options.presets:
        try:
            result, row = _run_preset(video, preset, options, cache, log)
            own = _observations(video, preset, options, cache)[0] if gt_all is None else obs
            _score_preset(clip, preset, result, row, obs, gt_all, options.models_dir, own)
        except VidrigError as exc:
            log(f"bench: {video.name} / {preset} failed: {exc}")
            row = _failed(columns, exc)
        rows[preset] = row
    return rows


def mean_row(runs: dict[str, RowRun]) -> dict[str, float]:
    """Per-metric mean over clips (finite values only); fps as total frames over total seconds."""
    keys = sorted({k for r in runs.values() for k in r.metrics})
    out = {k: _nanmean([r.metrics.get(k, float("nan")) for r in runs.values()]) for k in keys if k != "fps"}
    frames = sum(r.frames for r in runs.values())
    seconds = sum(r.seconds for r in runs.values())
    out["fps"] = _fps(frames, seconds)
    return out


# ---------------------------------------------------------------- table and JSON


def _cell(value: float | None) -> str:
    """A table cell: 1 decimal, 2 decimals below 10, '-' when undefined."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def format_table(title: str, columns: Sequence[Column], rows: dict[str, dict[str, float]],
                 notes: Sequence[str] = ()) -> str:
    """A plain-text table: one line per row, one column per metric, with a title and notes underneath."""
    names = list(rows)
    first = max([len("row"), *(len(n) for n in names)])
    widths = [max(len(c.header), *(len(_cell(rows[n].get(c.key))) for n in names)) for c in columns]
    header = "  ".join(["row".ljust(first), *(c.header.rjust(w) for c, w in zip(columns, widths, strict=True))])
    lines = [title, header, "-" * len(header)]
    for n in names:
        cells = (_cell(rows[n].get(c.key)).rjust(w) for c, w in zip(columns, widths, strict=True))
        lines.append("  ".join([n.ljust(first), *cells]))
    lines += [f"  {note}" for note in notes]
    return "\n".join(lines)


def _git(*args: str) -> str | None:
    """Output of a read-only git command in the repository, None when git or the repository is unavailable."""
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def machine_info(device: str) -> dict[str, Any]:
    """Host, OS, CPU and library versions, so timings can be compared fairly."""
    import torch

    info: dict[str, Any] = {
        "host": platform.node(), "platform": platform.platform(), "python": sys.version.split()[0],
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(), "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _jsonable(x: Any) -> Any:
    """Replace NaN/inf by None (strict JSON) and numpy scalars by Python numbers, recursively."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _errors(rows: dict[str, dict[str, RowRun]]) -> list[str]:
    """One note per (row, clip) that failed, naming the error."""
    return [f"{row} failed on {clip}: {run.details['error']}" for row, clips in rows.items()
            for clip, run in clips.items() if "error" in run.details]


@dataclass
class BenchReport:
    """All rows of one bench run: per clip (ground-truth suite) and per real video."""

    suite: str | None
    suite_dir: str | None
    options: BenchOptions
    truth: dict[str, dict[str, RowRun]] = field(default_factory=dict)  # row -> clip -> run
    videos: dict[str, dict[str, RowRun]] = field(default_factory=dict)  # row -> video -> run
    seconds: float = 0.0

    def tables(self) -> str:
        """The printed tables: one for the ground-truth suite, one for real videos (whichever ran)."""
        out = []
        if self.truth:
            title = (f"vidrig bench: suite {self.suite} ({len(next(iter(self.truth.values())))} clips), "
                     "mean over clips")
            gt_jitter = _nanmean([run.details.get("jitter_gt", float("nan"))
                                  for run in self.truth.get(BASELINE, {}).values()])
            notes = (*TRUTH_NOTES, f"ground-truth jitter, same definition: {_cell(gt_jitter)}")
            notes = (*notes, *_errors(self.truth))
            out.append(format_table(title, TRUTH_COLUMNS, {r: mean_row(c) for r, c in self.truth.items()}, notes))
        if self.videos:
            title = f"vidrig bench: real videos ({len(next(iter(self.videos.values())))}), no ground truth, mean"
            out.append(format_table(title, VIDEO_COLUMNS, {r: mean_row(c) for r, c in self.videos.items()},
                                    (*VIDEO_NOTES, *_errors(self.videos))))
        return "\n\n".join(out)

    def to_json(self) -> dict[str, Any]:
        """The JSON record: provenance, settings, per-clip and mean metrics, timings per stage."""

        def section(rows: dict[str, dict[str, RowRun]]) -> dict[str, Any]:
            return {row: {"mean": mean_row(clips), "clips": {name: asdict(run) for name, run in clips.items()}}
                    for row, clips in rows.items()}

        status = _git("status", "--porcelain")
        return _jsonable({
            "commit": _git("rev-parse", "HEAD"),
            "dirty": None if status is None else bool(status),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine_info(self.options.device),
            "settings": {
                "suite": self.suite, "suite_dir": self.suite_dir, "presets": self.options.presets,
                "frames": self.options.frames, "device": self.options.device,
                "body_model": self.options.body_model or "default", "cache": str(self.options.cache_dir),
                "body_joints": [int(j) for j in BODY_SUBSET], "body_joints_label": BODY_SUBSET_LABEL,
            },
            "columns": {"truth": [asdict(c) for c in TRUTH_COLUMNS], "video": [asdict(c) for c in VIDEO_COLUMNS]},
            "notes": {"truth": list(TRUTH_NOTES), "video": list(VIDEO_NOTES)},
            "truth": section(self.truth),
            "videos": section(self.videos),
            "seconds": self.seconds,
        })


def run_bench(suite: str | None, videos: Sequence[str], options: BenchOptions, clips: Sequence[str] | None = None,
              log: Log = lambda line: print(line, file=sys.stderr, flush=True)) -> BenchReport:
    """Run every preset (and the baseline) on the suite's clips and on each real video."""
    from ..presets import get_preset

    for preset in options.presets:
        get_preset(preset)  # an unknown name fails now, not after hours of other presets
    t0 = time.perf_counter()
    cache = TimedStageCache(options.cache_dir)
    folder = resolve_suite(suite) if suite else None
    report = BenchReport(suite, str(folder) if folder else None, options)
    if folder is not None:
        for clip in list_clips(folder, clips):
            for row, run in bench_clip(clip, options, cache, log).items():
                report.truth.setdefault(row, {})[clip.name] = run
    for video in videos:
        path = Path(video).expanduser().resolve()
        if not path.is_file():
            raise NotFound(f"video file not found: {path}")
        for row, run in bench_clip(BenchClip(path.stem, path), options, cache, log).items():
            report.videos.setdefault(row, {})[path.name] = run
    report.seconds = time.perf_counter() - t0
    return report


def write_json(report: BenchReport, path: Path) -> None:
    """Write the report's JSON record (strict JSON: undefined metrics are null)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_json(), indent=2, allow_nan=False) + "\n")

