"""Settings and result dataclasses of the camera stage (what crosses the stage boundary)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np


@dataclass
class CameraSettings:
    """Knobs of the camera solve; defaults suit hand-held and tripod phone footage."""

    fov_deg: float = 55.0  # horizontal field of view assumed when the file carries no focal length
    focal_px: float | None = None  # focal length override in pixels of the original resolution
    refine_focal: bool = True  # let the bundle adjustment correct a default (guessed) focal length
    max_side: int = 640  # frames are tracked at this longest side (pixels)
    max_features: int = 400  # features kept alive by re-seeding
    min_feature_distance: int = 12  # pixels between seeded features (tracking resolution)
    feature_quality: float = 0.01  # goodFeaturesToTrack quality level
    fb_max_error: float = 1.0  # forward-backward optical flow check (pixels)
    mask_dilate_px: int = 15  # dilation of the person mask (tracking resolution)
    use_person_segmentation: bool = True  # run mediapipe selfie segmentation when no masks are given
    static_threshold_px: float = 0.6  # most background motion (tracking px, any frame) of a static camera
    keyframe_px: float = 25.0  # median flow since the last keyframe that starts a new one
    keyframe_max_gap: int = 15  # frames between keyframes at most
    keyframe_min_tracks: float = 0.6  # share of the last keyframe's tracks that must survive
    parallax_px: float = 1.5  # median rotation-compensated parallax (tracking px) that counts as baseline
    essential_px: float = 1.0  # MAGSAC threshold of the essential matrix of the initial pair (tracking px)
    reproj_px: float = 2.0  # inlier threshold of RANSAC and of triangulated points (tracking px)
    min_triangulation_deg: float = 1.0  # smallest ray angle of a triangulated point
    ba_iterations: int = 30  # most cost evaluations of the final bundle adjustment
    smooth_frames: float = 1.0  # Gaussian sigma (frames) smoothing non-keyframe poses; 0 disables
    max_points: int = 50_000  # cap of the scene point cloud
    scene_depth: float = 5.0  # median depth of the first keyframe's points (unknown scale; a guess in metres)
    ground_max_tilt_deg: float = 30.0  # ground plane normal within this angle of the first camera's up
    ground_min_share: float = 0.15  # share of the points a ground plane must explain


def _empty_points() -> np.ndarray:
    return np.zeros((0, 3), np.float32)


def _empty_colors() -> np.ndarray:
    return np.zeros((0, 3), np.uint8)


@dataclass
class CameraSolve:
    """Per-frame camera of a clip: intrinsics, world->camera poses, motion flags and scene points."""

    K: np.ndarray  # (3,3) float64, pixels of the original video resolution
    R_w2c: np.ndarray  # (T,3,3) float64 world->camera rotation (OpenCV camera axes)
    t_w2c: np.ndarray  # (T,3) float64, up to scale unless scale_known
    static: bool  # the camera did not move
    scale_known: bool  # metric scale resolved (never by this stage)
    angvel: np.ndarray  # (T,3) float64 rad/s, camera angular velocity in the camera frame
    up: np.ndarray  # (3,) gravity-up in the world frame ([0,1,0]: the world is built Y-up)
    frame_indices: np.ndarray  # (T,) int64
    times: np.ndarray  # (T,) float64 seconds
    points: np.ndarray = field(default_factory=_empty_points)  # (N,3) float32 world frame
    colors: np.ndarray = field(default_factory=_empty_colors)  # (N,3) uint8
    ground_plane: np.ndarray = field(  # (4,) n·x + d = 0 in the world frame; NaN when no plane was found
        default_factory=lambda: np.full(4, np.nan)
    )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every field as a numpy array (flags as 0-d bool), ready for npz or the wire protocol."""
        return {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_arrays(cls, d: dict[str, np.ndarray]) -> CameraSolve:
        """Inverse of `to_arrays`; missing optional arrays take their defaults."""
        kw: dict[str, object] = {}
        for f in fields(cls):
            if f.name not in d:
                continue
            v = np.asarray(d[f.name])
            if f.name in ("static", "scale_known"):
                kw[f.name] = bool(v)
            elif f.name in ("points",):
                kw[f.name] = v.astype(np.float32).reshape(-1, 3)
            elif f.name in ("colors",):
                kw[f.name] = v.astype(np.uint8).reshape(-1, 3)
            elif f.name == "frame_indices":
                kw[f.name] = v.astype(np.int64)
            else:
                kw[f.name] = v.astype(np.float64)
        return cls(**kw)  # type: ignore[arg-type]

    @property
    def n_frames(self) -> int:
        """Number of solved frames T."""
        return int(self.R_w2c.shape[0])

    def camera_centers(self) -> np.ndarray:
        """(T,3) camera centres in the world frame, C = -R^T t."""
        return -np.einsum("tji,tj->ti", self.R_w2c, self.t_w2c)
