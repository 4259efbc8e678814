"""Settings of the whole-body solve (a light module: presets and the registry import it without torch)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FitSettings:
    """Iterations and term weights of the whole-clip solve. Weights multiply terms measured in metres (data
    terms: errors in metres at the point's depth, robustly saturated), radians (priors) or 30-fps frame steps."""

    iterations: int = 100  # Adam steps on the full pose after the global stage (200 scored the same on smoke)
    global_iterations: int = 40  # Adam steps on root, translation and shape only
    coarse_step: int = 2  # the global stage and the full stage's first steps score one phase of every
    # coarse_step-th frame in turn (1/coarse_step the cost a step; the smoothed offsets move the frames between);
    # 1 = every frame throughout
    fine_iterations: int = 40  # the full stage's last steps, on every frame
    lr: float = 0.01  # Adam learning rate (radians / metres per step); L-BFGS uses its line search instead
    shape_lr_scale: float = 5.0  # the one shape of the clip moves this many times faster than per-frame values
    init_smooth: float = 2.0  # Gaussian sigma (frames) smoothing the per-frame IK start; 0 keeps it raw
    update_smooth: float = 1.0  # Gaussian sigma (frames) shared by the updates of neighbouring frames; 0 = none
    cpu_threads: int = 1  # torch threads of the solve on CPU (its many small ops lose to threading); 0 = as is
    optimiser: str = "adam"  # "adam" or "lbfgs"
    sigma_2d: float = 0.05  # Geman-McClure scale of 2D errors (metres at the point's depth)
    sigma_3d: float = 0.2  # Geman-McClure scale of root-relative 3D errors (metres)
    w_body_2d: float = 1.0
    w_hand_2d: float = 0.5
    w_body_3d: float = 1.0
    w_hand_3d: float = 0.3  # a hand as small as in a full-body shot; larger ones count more (hand_3d_*)
    hand_3d_share: float = 0.02  # a hand longer than this (wrist to middle knuckle, share of the image's longer
    # side) counts that many times more, up to hand_3d_max (3x as long, 3x): mediapipe's 3D hand is sharper the
    # larger the hand appears. The full suite shows hands at 0.02-0.03 in full-body shots, 0.07 in close-ups and
    # 0.13 in its hand clips.
    hand_3d_max: float = 6.0
    w_smooth_joints: float = 5.0  # joint acceleration
    w_smooth_rot: float = 0.5  # local rotation acceleration
    w_smooth_root: float = 20.0  # root translation acceleration
    w_limits: float = 1.0
    w_pose_prior: float = 0.0002  # body pose towards rest
    w_hand_prior: float = 0.001  # hands towards a relaxed pose (observed frames; 20x where unobserved)
    w_shape: float = 0.001
    w_contact: float = 1.0  # planted feet: no sliding, at ground height
    w_ground: float = 1.0  # no foot below the ground
    w_pins: float = 50.0  # refine: pinned frames' poses
    foot_lock_iterations: int = 30  # a last stage moving only the legs so planted feet hold still (IK); 0 = off
    w_foot_lock: float = 1000.0  # planted foot points held at their mean position over each contact
    wrist_gate: float = 0.08  # hand observations count fully when their wrist is within this share of the
    # body's height of the body's wrist (2D), and fade out at twice that
    contact_speed: float = 0.3  # a foot point slower than this (body heights / s) in the image may be planted
    contact_height: float = 0.06  # ... and within this many body heights of the lowest foot point
    pitch_from_body: bool = True  # where the camera shows no ground plane (static or only turning), the world's
    # pitch comes from the upright body's vertical (`backend.fitting.gravity`); False keeps that camera level
    unseen_feet_stand: bool = True  # feet out of view are planted while the hips stay put (close-ups)
    unseen_ground_sigma: float = 0.07  # Geman-McClure scale (m) pulling such unseen feet to the ground: their
    # height and the ground are guesses, so one far off stops pulling (plain squares dragged a moving-camera
    # close-up's visible body 0.3 m off its detections: 320 px vs 35 px on Megamind)

    def __post_init__(self) -> None:
        """Reject settings no solve can run with (a job reports them as a bad request naming the setting)."""
        for name in ("iterations", "global_iterations", "fine_iterations", "foot_lock_iterations"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more, got {getattr(self, name)}")
        if self.hand_3d_share <= 0 or self.hand_3d_max < 1:
            raise ValueError(f"hand_3d_share must be above 0 and hand_3d_max at least 1, got {self.hand_3d_share} "
                             f"and {self.hand_3d_max}")
        if self.unseen_ground_sigma <= 0:
            raise ValueError(f"unseen_ground_sigma must be above 0, got {self.unseen_ground_sigma}")
        if self.coarse_step < 1:
            raise ValueError(f"coarse_step must be 1 (every frame) or more, got {self.coarse_step}")
        if self.optimiser not in ("adam", "lbfgs"):
            raise ValueError(f"optimiser must be 'adam' or 'lbfgs', got {self.optimiser!r}")
