"""Settings of the perception stage; part of the stage-cache key, so every field changes the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PerceptionSettings:
    """How people and hands are detected and tracked."""

    # Largest side (pixels) of the image handed to mediapipe; crops are cut from the full-resolution frame.
    max_side: int = 1280
    # mediapipe detection / tracking thresholds (pose and hands).
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    # A body counts only when the mean visibility of shoulders and hips reaches this.
    min_body_visibility: float = 0.3
    # Re-detect on a crop around the subject, and search zoomed tiles when nobody is found (small people).
    crop_search: bool = True
    # Crop side = this times the larger side of the subject's box.
    crop_scale: float = 2.0
    # Zoom factors of the tiled search run when the subject is lost (each tile is frame / zoom).
    search_zooms: tuple[float, ...] = (2.0, 3.0)
    # Find hands (the hand tracker: last frame's hands, the ends of the pose's arms, the palm detector).
    hands_detector: bool = True
    # Run the hand tracker in a second process, in parallel with the body model.
    hands_process: bool = True
    # Largest side of the image handed to the hand tracker.
    hands_max_side: int = 1280
    # While hands are missing and a body is found, the palm detector runs on every this many frames (on every
    # frame without a body); the tracker follows the ends of the pose's arms on every frame.
    palm_interval: int = 3
    # A hand's wrist within this fraction of the shoulder width of a body wrist belongs to that arm.
    hand_merge_radius: float = 0.6
    # A hand longer (wrist to middle knuckle) than this times the torso of the body found with it (its shoulder
    # width or torso length, the larger) proves that body wrong: mediapipe Pose, shown no face, makes a small body
    # out of a hand held near the camera. The frame keeps the hand, wherever it lies, and drops the body. A real
    # hand measures about 0.2 of its torso at the body's depth; 0.6 allows it three times nearer the camera.
    outsized_hand: float = 0.6

    def __post_init__(self) -> None:
        """Reject a palm interval no frame count can follow and a hand limit that would drop every body (a job
        reports either as a bad request naming it)."""
        if self.palm_interval < 1:
            raise ValueError(f"palm_interval must be 1 (every frame) or more, got {self.palm_interval}")
        if not self.outsized_hand > 0:
            raise ValueError(f"outsized_hand must be above 0 (a share of the torso), got {self.outsized_hand}")

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for cache keys and job metadata)."""
        out = asdict(self)
        out["search_zooms"] = list(self.search_zooms)
        return out
