"""Body and hand models: SMPL-X / MANO from the user's files and the built-in CC0 default (see README.md)."""

from backend.models.base import BodyModel, BodyOutput, BodyPose, HandModel, HandOutput, HandPose
from backend.models.loader import available_body_models, load_body_model, load_hand_model

__all__ = [
    "BodyModel",
    "BodyOutput",
    "BodyPose",
    "HandModel",
    "HandOutput",
    "HandPose",
    "available_body_models",
    "load_body_model",
    "load_hand_model",
]
