"""The whole-body solve run inside a job: observations + camera in, a world-frame SMPL-X Result out."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

from backend.camera.types import CameraSolve
from backend.fitting.rig import LandmarkRig
from backend.methods.base import JobContext
from protocol.errors import BadRequest
from protocol.result import CameraTrack, RestData, Result, ResultMeta, Scene, SmplxMotion

from .settings import FitSettings
from .solve import FitOutput, solve_fit

_SCALARS = ("scale", "ground_shift")


def load_pins(path: str | None, frame_indices: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Read a refine's pins (.npz with pin_frames (P,) video frame numbers, pin_poses (P,55,3) world axis-angle)
    and turn the frame numbers into rows of the clip; frames outside the clip are a BadRequest."""
    if not path:
        return None
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            frames = np.asarray(data["pin_frames"], np.int64).reshape(-1)
            poses = np.asarray(data["pin_poses"], np.float32)
    except (OSError, KeyError, ValueError) as exc:
        raise BadRequest(f"refine pins file {path} is unreadable or lacks pin_frames / pin_poses: {exc}") from exc
    if poses.shape != (len(frames), 55, 3):
        raise BadRequest(f"refine pins in {path}: pin_poses must be ({len(frames)},55,3), got {poses.shape}")
    rows = np.searchsorted(frame_indices, frames)
    inside = (rows < len(frame_indices)) & (frame_indices[np.minimum(rows, len(frame_indices) - 1)] == frames)
    if not inside.all():
        raise BadRequest(f"refine pins name frames {frames[~inside].tolist()} that are not in the solved clip")
    return rows, poses


def align_camera(cam: CameraSolve, frame_indices: np.ndarray) -> CameraSolve:
    """The camera rows of exactly these video frames (the camera and perception stages cover the same range)."""
    if cam.n_frames == len(frame_indices) and np.array_equal(cam.frame_indices, frame_indices):
        return cam
    rows = np.searchsorted(cam.frame_indices, frame_indices)
    ok = (rows < cam.n_frames) & (cam.frame_indices[np.minimum(rows, cam.n_frames - 1)] == frame_indices)
    if not ok.all():
        raise BadRequest(f"the camera solve lacks frames {frame_indices[~ok][:10].tolist()} that perception has")
    arrays = cam.to_arrays()
    for name in ("R_w2c", "t_w2c", "angvel", "frame_indices", "times"):
        arrays[name] = arrays[name][rows]
    return CameraSolve.from_arrays(arrays)


def scene_points(cam: CameraSolve, out: FitOutput) -> np.ndarray:
    """The camera solve's scene points (N,3) in the solved world: turned as the solve turned the camera's world,
    scaled to metres and lowered with the ground to y = 0."""
    points = np.asarray(cam.points, np.float64) @ np.asarray(out.world_rotation, np.float64).T * out.scale
    points[:, 1] -= out.ground_shift
    return points.astype(np.float32)


def _encode(out: FitOutput) -> dict[str, np.ndarray]:
    """FitOutput as arrays for the stage cache."""
    arrays = {f.name: np.asarray(getattr(out, f.name)) for f in fields(FitOutput)}
    arrays["losses"] = np.asarray(out.losses, np.float64)
    return arrays


def _decode(arrays: dict[str, np.ndarray]) -> FitOutput:
    """Inverse of _encode."""
    kw: dict[str, object] = {f.name: np.asarray(arrays[f.name]) for f in fields(FitOutput)}
    for name in _SCALARS:
        kw[name] = float(arrays[name])
    kw["losses"] = [float(v) for v in np.asarray(arrays["losses"]).reshape(-1)]
    return FitOutput(**kw)  # type: ignore[arg-type]


def _pins_digest(path: str | None) -> str:
    """Content hash of the pins file (part of the cache key of a refine)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else ""


def solve_whole_body(job: JobContext, settings: FitSettings, method: str = "fit") -> Result:
    """Perception and camera (overlapped), then the cached `fit` stage; assemble the Result in the metric,
    ground-level world."""
    job.start_camera()
    obs = job.observations()
    job.check_cancelled()
    cam = align_camera(job.camera(), obs.frame_indices)
    job.check_cancelled()
    model = job.body_model()
    pins = load_pins(job.spec.pins, obs.frame_indices)
    t0 = time.perf_counter()

    def compute() -> FitOutput:
        previous = torch.get_num_threads()
        if job.device == "cpu" and settings.cpu_threads > 0:
            torch.set_num_threads(settings.cpu_threads)
        try:
            rig = LandmarkRig(model, device=job.device)
            return solve_fit(obs, cam, rig, settings, pins=pins, device=job.device, progress=job.progress,
                             check_cancelled=job.check_cancelled)
        finally:
            torch.set_num_threads(previous)

    key = {"settings": asdict(settings), "body_model": job.spec.body_model, "gender": job.spec.gender,
           "models_dir": job.spec.models_dir or "", "pins": _pins_digest(job.spec.pins)}
    out = job.stage("fit", key, compute, _encode, _decode)
    fit_seconds = time.perf_counter() - t0
    pose = out.full_pose
    motion = SmplxMotion(
        global_orient=pose[:, 0], body_pose=pose[:, 1:22], jaw_pose=pose[:, 22], leye_pose=pose[:, 23],
        reye_pose=pose[:, 24], left_hand_pose=pose[:, 25:40], right_hand_pose=pose[:, 40:55],
        betas=out.betas, transl=out.transl, global_orient_c=out.global_orient_c, transl_c=out.transl_c,
    )
    camera = CameraTrack(K=np.asarray(cam.K, np.float64), R_w2c=out.r_w2c, t_w2c=out.t_w2c,
                         angvel=np.asarray(cam.angvel, np.float64), static=cam.static, scale_known=True)
    points = scene_points(cam, out)
    rest = RestData(**model.rest_data(out.betas))
    meta = ResultMeta(method=method, preset=None, settings={}, body_model=model.kind, gender=model.gender,
                      fps=float(obs.fps), frame_indices=[int(i) for i in obs.frame_indices],
                      timings={"fit": job.timings.get("fit", fit_seconds)})
    return Result(meta=meta, smplx=motion, camera=camera, scene=Scene(points, np.asarray(cam.colors, np.uint8)),
                  confidence=out.confidence, contacts=out.contacts, rest=rest)
