"""The Result every method returns, its flat array form for the wire, and the AMASS-style `.npz` file."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BadRequest
from .skeleton import POSES_LAYOUT

FORMAT_VERSION = 1
_PREFIX = "vidrig_"


@dataclass
class SmplxMotion:
    """SMPL-X parameters per frame in the world frame, plus the root in the camera frame."""

    global_orient: np.ndarray  # (T,3)
    body_pose: np.ndarray  # (T,21,3)
    jaw_pose: np.ndarray  # (T,3)
    leye_pose: np.ndarray  # (T,3)
    reye_pose: np.ndarray  # (T,3)
    left_hand_pose: np.ndarray  # (T,15,3)
    right_hand_pose: np.ndarray  # (T,15,3)
    betas: np.ndarray  # (10,)
    transl: np.ndarray  # (T,3)
    global_orient_c: np.ndarray  # (T,3)
    transl_c: np.ndarray  # (T,3)
    expression: np.ndarray | None = None  # (T,10)

    @property
    def num_frames(self) -> int:
        """Frames in the motion."""
        return int(self.transl.shape[0])

    def poses(self) -> np.ndarray:
        """The AMASS-style (T,165) pose matrix in SMPL-X joint order."""
        t = self.num_frames
        return np.concatenate([getattr(self, name).reshape(t, n * 3) for name, n in POSES_LAYOUT], axis=1).astype(
            np.float32
        )

    @classmethod
    def from_poses(cls, poses: np.ndarray, trans: np.ndarray, betas: np.ndarray, **extra: np.ndarray) -> SmplxMotion:
        """Split a (T,165) pose matrix back into named parts; camera-frame root defaults to the world one."""
        t = poses.shape[0]
        parts: dict[str, np.ndarray] = {}
        col = 0
        for name, n in POSES_LAYOUT:
            block = poses[:, col : col + 3 * n].reshape(t, n, 3) if n > 1 else poses[:, col : col + 3]
            parts[name] = np.ascontiguousarray(block, dtype=np.float32)
            col += 3 * n
        parts["global_orient_c"] = extra.pop("global_orient_c", parts["global_orient"])
        parts["transl_c"] = extra.pop("transl_c", trans)
        return cls(**parts, betas=np.asarray(betas, np.float32), transl=np.asarray(trans, np.float32), **extra)


@dataclass
class HandMotion:
    """MANO parameters of one hand in the world frame, from a hand-only method."""

    global_orient: np.ndarray  # (T,3)
    hand_pose: np.ndarray  # (T,15,3)
    betas: np.ndarray  # (10,)
    transl: np.ndarray  # (T,3)
    valid: np.ndarray  # (T,) bool


@dataclass
class CameraTrack:
    """Intrinsics and per-frame world-to-camera extrinsics (OpenCV camera frame)."""

    K: np.ndarray  # (3,3)
    R_w2c: np.ndarray  # (T,3,3)
    t_w2c: np.ndarray  # (T,3)
    angvel: np.ndarray  # (T,3)
    static: bool
    scale_known: bool


@dataclass
class Scene:
    """A coloured scene point cloud in the world frame."""

    points: np.ndarray  # (N,3) float32
    colors: np.ndarray  # (N,3) uint8


@dataclass
class RestData:
    """What a client needs to build the rig and skinned mesh without any model files."""

    joints: np.ndarray  # (55,3) rest joint positions for the result's shape
    parents: np.ndarray  # (55,) int32, -1 for the root
    vertices: np.ndarray  # (V,3) rest vertices for the result's shape
    faces: np.ndarray  # (F,3) int32
    skin_indices: np.ndarray  # (V,k) int32 joint indices
    skin_weights: np.ndarray  # (V,k) float32, rows sum to 1


@dataclass
class ResultMeta:
    """Provenance of a result: which method, settings and body model made it, and how long each stage took."""

    method: str
    preset: str | None
    settings: dict[str, Any]
    body_model: str  # "smplx" | "default"
    gender: str
    fps: float
    frame_indices: list[int]
    version: int = FORMAT_VERSION
    timings: dict[str, float] = field(default_factory=dict)
    width: int = 0  # source video size in pixels (0 when unknown), so K can be used without the video
    height: int = 0


@dataclass
class Result:
    """One reconstruction, whatever the method: body, hands, camera, scene, confidences and rig data."""

    meta: ResultMeta
    smplx: SmplxMotion | None = None
    hands: dict[str, HandMotion] = field(default_factory=dict)  # "left" / "right"
    camera: CameraTrack | None = None
    scene: Scene | None = None
    confidence: np.ndarray | None = None  # (T,55) in [0,1]
    contacts: np.ndarray | None = None  # (T,k)
    hypotheses: np.ndarray | None = None  # (K,T,165)
    rest: RestData | None = None

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Flatten into named numeric arrays plus a JSON-able info dict (the wire and file share these names)."""
        arrays: dict[str, np.ndarray] = {}
        info: dict[str, Any] = {"meta": _meta_to_json(self.meta)}
        if self.smplx is not None:
            arrays["poses"] = self.smplx.poses()
            arrays["trans"] = np.asarray(self.smplx.transl, np.float32)
            arrays["betas"] = np.asarray(self.smplx.betas, np.float32)
            arrays[_PREFIX + "global_orient_c"] = np.asarray(self.smplx.global_orient_c, np.float32)
            arrays[_PREFIX + "transl_c"] = np.asarray(self.smplx.transl_c, np.float32)
            if self.smplx.expression is not None:
                arrays[_PREFIX + "expression"] = np.asarray(self.smplx.expression, np.float32)
        for side, hand in self.hands.items():
            for f in fields(HandMotion):
                arrays[f"{_PREFIX}hand_{side}_{f.name}"] = np.asarray(getattr(hand, f.name))
        if self.camera is not None:
            cam = self.camera
            for name in ("K", "R_w2c", "t_w2c", "angvel"):
                arrays[f"{_PREFIX}camera_{name}"] = np.asarray(getattr(cam, name), np.float64)
            info["camera"] = {"static": bool(cam.static), "scale_known": bool(cam.scale_known)}
        if self.scene is not None:
            arrays[_PREFIX + "scene_points"] = np.asarray(self.scene.points, np.float32)
            arrays[_PREFIX + "scene_colors"] = np.asarray(self.scene.colors, np.uint8)
        for name in ("confidence", "contacts", "hypotheses"):
            value = getattr(self, name)
            if value is not None:
                arrays[_PREFIX + name] = np.asarray(value, np.float32)
        if self.rest is not None:
            for f in fields(RestData):
                arrays[f"{_PREFIX}rest_{f.name}"] = np.asarray(getattr(self.rest, f.name))
        return arrays, info

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], info: dict[str, Any]) -> Result:
        """Rebuild from `to_arrays` output; raises BadRequest naming what is missing or malformed."""
        try:
            meta = ResultMeta(**info["meta"])
            smplx = None
            if "poses" in arrays:
                extra = {
                    "global_orient_c": arrays[_PREFIX + "global_orient_c"],
                    "transl_c": arrays[_PREFIX + "transl_c"],
                }
                if _PREFIX + "expression" in arrays:
                    extra["expression"] = arrays[_PREFIX + "expression"]
                smplx = SmplxMotion.from_poses(arrays["poses"], arrays["trans"], arrays["betas"], **extra)
            hands = {
                side: HandMotion(**{f.name: arrays[f"{_PREFIX}hand_{side}_{f.name}"] for f in fields(HandMotion)})
                for side in ("left", "right")
                if f"{_PREFIX}hand_{side}_valid" in arrays
            }
            camera = None
            if _PREFIX + "camera_K" in arrays:
                cam_arrays = {n: arrays[f"{_PREFIX}camera_{n}"] for n in ("K", "R_w2c", "t_w2c", "angvel")}
                camera = CameraTrack(**cam_arrays, **info["camera"])
            scene = None
            if _PREFIX + "scene_points" in arrays:
                scene = Scene(arrays[_PREFIX + "scene_points"], arrays[_PREFIX + "scene_colors"])
            rest = None
            if _PREFIX + "rest_joints" in arrays:
                rest = RestData(**{f.name: arrays[f"{_PREFIX}rest_{f.name}"] for f in fields(RestData)})
            optional = {n: arrays.get(_PREFIX + n) for n in ("confidence", "contacts", "hypotheses")}
        except (KeyError, TypeError, ValueError) as exc:
            raise BadRequest(f"result data is incomplete or malformed: {exc!r}") from exc
        return cls(meta=meta, smplx=smplx, hands=hands, camera=camera, scene=scene, rest=rest, **optional)

    def save_npz(self, path: str | Path) -> Path:
        """Write the AMASS-compatible `.npz` atomically (temp file + rename)."""
        path = Path(path)
        arrays, info = self.to_arrays()
        arrays["gender"] = np.array(self.meta.gender)
        arrays["surface_model_type"] = np.array("smplx")
        arrays["mocap_frame_rate"] = np.array(self.meta.fps, np.float64)
        arrays[_PREFIX + "info"] = np.array(json.dumps(info))
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
        return path

    @classmethod
    def load_npz(cls, path: str | Path) -> Result:
        """Read a result file written by `save_npz` (never unpickles)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError) as exc:
            raise BadRequest(f"{path} is not a readable VidRig result file: {exc}") from exc
        if _PREFIX + "info" not in arrays:
            raise BadRequest(f"{path} has no {_PREFIX}info entry: not a VidRig result file")
        info = json.loads(str(arrays.pop(_PREFIX + "info")))
        for key in ("gender", "surface_model_type", "mocap_frame_rate"):
            arrays.pop(key, None)
        return cls.from_arrays(arrays, info)


def _meta_to_json(meta: ResultMeta) -> dict[str, Any]:
    """ResultMeta as a plain dict that json.dumps accepts."""
    return {f.name: getattr(meta, f.name) for f in fields(ResultMeta)}
