"""Settings of the perception stage; part of the stage-cache key, so every field changes the result."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class PerceptionSettings:
    """How people and hands are detected and tracked."""

    # Body model: "holistic" (pose + hands grown from the arms; finds small or blurred hands) or "pose"
    # (pose only, about twice as fast; hands then come from the Hands detector alone).
    body_model: str = "holistic"
    # Largest side (pixels) of the image handed to mediapipe; crops are cut from the full-resolution frame.
    max_side: int = 1280
    # mediapipe detection / tracking thresholds (Holistic and Hands).
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
    # Run mediapipe Hands (palm detector) besides Holistic's body-driven hands.
    hands_detector: bool = True
    # Run Hands in a second process, in parallel with Holistic.
    hands_process: bool = True
    # Largest side of the image handed to Hands (it shrinks images itself, in its own process).
    hands_max_side: int = 1280
    # A Hands wrist within this fraction of the shoulder width of a body wrist belongs to that arm.
    hand_merge_radius: float = 0.6

    def __post_init__(self) -> None:
        """Reject a body model that does not exist."""
        if self.body_model not in ("holistic", "pose"):
            raise ValueError(f"body_model must be 'holistic' or 'pose', got {self.body_model!r}")

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for cache keys and job metadata)."""
        out = asdict(self)
        out["search_zooms"] = list(self.search_zooms)
        return out
