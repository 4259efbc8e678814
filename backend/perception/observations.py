"""Observations: per-frame 2D/3D body and hand keypoints of one tracked person, the perception stage's output."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

N_BODY = 33
N_HAND = 21
LEFT, RIGHT = 0, 1

_DTYPES: dict[str, type] = {
    "frame_indices": np.int64,
    "times": np.float64,
    "body_kp2d": np.float32,
    "body_kp3d": np.float32,
    "hand_kp2d": np.float32,
    "hand_kp3d": np.float32,
    "bbox": np.float32,
    "body_valid": np.bool_,
    "hand_valid": np.bool_,
}


@dataclass
class Observations:
    """Keypoints of the tracked subject for T frames, in mediapipe layouts (body 33, hand 21).

    Pixels are in the upright full-resolution frame. Hand index 0 is the person's own left hand, 1 the right.
    Frames where a part was not found have valid=False and confidence 0; `bbox` is NaN where nothing was found.
    `body_kp3d` is mediapipe's pose world output (metres, origin between the hips, + visibility);
    `hand_kp3d` is mediapipe's hand world output (metres, origin near the hand's centre); for a hand without
    one it is the pixel landmarks scaled to mediapipe's typical hand size.
    Hand confidence (kp2d[..., 2]) is the hand landmark model's handedness score.
    """

    fps: float
    width: int
    height: int
    frame_indices: np.ndarray
    times: np.ndarray
    body_kp2d: np.ndarray
    body_kp3d: np.ndarray
    hand_kp2d: np.ndarray
    hand_kp3d: np.ndarray
    bbox: np.ndarray
    body_valid: np.ndarray
    hand_valid: np.ndarray

    def __post_init__(self) -> None:
        """Check shapes agree with T and cast arrays to their contract dtypes."""
        t = len(self.frame_indices)
        shapes = {
            "frame_indices": (t,),
            "times": (t,),
            "body_kp2d": (t, N_BODY, 3),
            "body_kp3d": (t, N_BODY, 4),
            "hand_kp2d": (t, 2, N_HAND, 3),
            "hand_kp3d": (t, 2, N_HAND, 3),
            "bbox": (t, 4),
            "body_valid": (t,),
            "hand_valid": (t, 2),
        }
        for name, shape in shapes.items():
            value = np.asarray(getattr(self, name), dtype=_DTYPES[name])
            if value.shape != shape:
                raise ValueError(f"Observations.{name} has shape {value.shape}, expected {shape}")
            setattr(self, name, value)
        self.fps = float(self.fps)
        self.width = int(self.width)
        self.height = int(self.height)

    def __len__(self) -> int:
        """Number of frames."""
        return len(self.frame_indices)

    @classmethod
    def empty(cls, n_frames: int, fps: float, width: int, height: int) -> Observations:
        """All-missing observations for `n_frames` frames (every part invalid, confidences 0, bbox NaN)."""
        t = n_frames
        return cls(
            fps=fps,
            width=width,
            height=height,
            frame_indices=np.zeros(t, np.int64),
            times=np.zeros(t, np.float64),
            body_kp2d=np.zeros((t, N_BODY, 3), np.float32),
            body_kp3d=np.zeros((t, N_BODY, 4), np.float32),
            hand_kp2d=np.zeros((t, 2, N_HAND, 3), np.float32),
            hand_kp3d=np.zeros((t, 2, N_HAND, 3), np.float32),
            bbox=np.full((t, 4), np.nan, np.float32),
            body_valid=np.zeros(t, bool),
            hand_valid=np.zeros((t, 2), bool),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat dict of numpy arrays (scalars as 0-d arrays) for the stage cache."""
        return {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Observations:
        """Rebuild from `to_arrays` output; raises ValueError naming any missing key."""
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in arrays]
        if missing:
            raise ValueError(f"Observations arrays lack keys: {', '.join(missing)}")
        kwargs = {n: np.asarray(arrays[n]) for n in names}
        kwargs["fps"] = float(kwargs["fps"])
        kwargs["width"] = int(kwargs["width"])
        kwargs["height"] = int(kwargs["height"])
        return cls(**kwargs)
