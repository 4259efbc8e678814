"""Perception: find and track one person in a video with mediapipe and return their keypoints."""

from backend.perception.detect import detect
from backend.perception.observations import Observations
from backend.perception.settings import PerceptionSettings

__all__ = ["Observations", "PerceptionSettings", "detect"]
