"""Person masks from mediapipe's bundled selfie segmentation model (no download), to keep features off people."""

from __future__ import annotations

import numpy as np


class SelfieSegmenter:
    """Wraps `mp.solutions.selfie_segmentation` (landscape model, shipped in the wheel); call per RGB frame."""

    def __init__(self, model_selection: int = 1, threshold: float = 0.5):
        import mediapipe as mp

        self._seg = mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=model_selection)
        self.threshold = threshold

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """(H,W) bool person mask of an RGB uint8 frame."""
        out = self._seg.process(np.ascontiguousarray(image))
        if out.segmentation_mask is None:
            return np.zeros(image.shape[:2], bool)
        return out.segmentation_mask > self.threshold

    def close(self) -> None:
        """Release the mediapipe graph."""
        self._seg.close()

    def __enter__(self) -> SelfieSegmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
