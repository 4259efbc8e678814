"""Camera stage: intrinsics, feature tracking, static/rotation/SfM camera solve and the Y-up world frame."""

from backend.camera.intrinsics import intrinsics
from backend.camera.solve import solve_camera, solve_frames
from backend.camera.types import CameraSettings, CameraSolve

__all__ = ["CameraSettings", "CameraSolve", "intrinsics", "solve_camera", "solve_frames"]
