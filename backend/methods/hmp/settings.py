"""Settings of method `hmp` (light: no torch import)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HmpSettings:
    """Which hands to solve, the camera model, the prior checkpoint and the fitting schedule and weights."""

    hands: str = "both"  # "both" | "left" | "right"
    body: bool = False  # True: run `fit` for the body first; the hands then hang on its wrists (same orientation)
    static_camera: bool = True  # fixed camera (intrinsics only, no camera solve); False: the camera stage. Ignored
    # when body = true (fit solves its own camera)
    checkpoint: str | None = None  # hand prior checkpoint (default: the shipped weights/hand_prior.pt)
    min_detections: int = 5  # a hand seen in fewer frames is left out of the result
    ik_iters: int = 120  # per-frame inverse kinematics onto the metric landmarks
    stage1_iters: int = 120  # wrist orientation, translation and shape
    stage2_iters: int = 200  # + the prior's latent codes
    lr: float = 0.05
    lr_step: int = 60  # the learning rate is multiplied by 0.7 every this many iterations
    overlap: int = 16  # frames shared by consecutive 128-frame windows
    kp2d_weight: float = 0.05  # robust 2D reprojection term (both stages)
    kp3d_weight: float = 10.0  # mediapipe's metric landmarks, root-relative (stage 2; not in HMP)
    prior_weight: float = 100.0  # latent negative log-likelihood (stage 2)
    residual_weight: float = 3.0  # per-frame correction on top of the decoded motion (stage 2; not in HMP)
    orient_accel_weight: float = 3000.0  # wrist orientation acceleration (both stages; not in HMP)
    kp3d_sigma_cm: float = 2.0  # Geman-McClure scale of the metric-landmark term: wrong detections saturate

    def __post_init__(self) -> None:
        """Reject values that cannot work."""
        if self.hands not in ("both", "left", "right"):
            raise ValueError(f"hands must be 'both', 'left' or 'right', got {self.hands!r}")
        if min(self.ik_iters, self.stage1_iters, self.stage2_iters) < 0 or self.lr_step < 1:
            raise ValueError("iteration counts must be >= 0 and lr_step >= 1")
        if not 0 <= self.overlap < 64:
            raise ValueError(f"overlap must be in [0, 64), got {self.overlap}")
