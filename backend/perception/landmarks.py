"""Detections in full-frame pixels, and the rules that give hands their side.

Handedness convention (verified on real pixels in tests/integration/test_perception_handedness.py):
- mediapipe Pose body landmarks are the person's own sides (landmark 15 = the person's left wrist).
- mediapipe's hand landmark model labels hands as if the image were a mirrored selfie: for an ordinary
  (unmirrored) camera its "Left" is the person's RIGHT hand. `side_from_hands_label` undoes that.
Sides are indices LEFT = 0, RIGHT = 1 (the person's own).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np

from backend.perception.observations import LEFT, N_HAND, RIGHT

POSE_WRIST = (15, 16)  # person's left, right wrist
POSE_HAND_POINTS = ((15, 17, 19, 21), (16, 18, 20, 22))  # wrist, pinky, index, thumb per side
POSE_SHOULDERS = (11, 12)
POSE_TORSO = (11, 12, 23, 24)
# mediapipe Hands' world model puts the wrist about this far from the middle-finger knuckle (median over
# Megamind.avi hands); used to give metric size to a hand without world landmarks.
HAND_WRIST_TO_MIDDLE_MCP_M = 0.095
# Two hands whose keypoints lie closer than this fraction of the hand's size are one hand.
_DUPLICATE_FRACTION = 0.35
# Cost added when a Hands detection is put on the side its (un-mirrored) label does not name.
_LABEL_PENALTY = 0.5
# A pose wrist that is not visible may hold a hand this many radii away, at this extra cost: more than a label
# disagreement, so a visible wrist outranks the label and the label outranks a hidden wrist's guessed place.
_HIDDEN_WRIST_REACH = 2.0
_HIDDEN_WRIST_COST = 1.0
# A pose wrist at least this visible is a position; below, a guess.
SEEN_WRIST = 0.2


def landmark_array(lms, n: int) -> np.ndarray:
    """(n, 4) x, y, z, visibility from a mediapipe NormalizedLandmarkList or LandmarkList."""
    return np.array([(p.x, p.y, p.z, p.visibility) for p in lms.landmark[:n]], np.float64)


@dataclass
class BodyDet:
    """One body: landmarks in full-frame pixels with visibility, world landmarks in metres."""

    kp2d: np.ndarray  # (33, 3) x, y, visibility
    kp3d: np.ndarray  # (33, 4) x, y, z metres + visibility

    def visible(self, index: int, threshold: float = SEEN_WRIST) -> bool:
        """Whether landmark `index` is visible enough to be used as a position."""
        return bool(self.kp2d[index, 2] >= threshold)

    def torso_visibility(self) -> float:
        """Mean visibility of the shoulders and hips."""
        return float(self.kp2d[list(POSE_TORSO), 2].mean())

    def scale(self) -> float:
        """A body length in pixels: the shoulder width, or a fraction of the box diagonal when that is tiny."""
        box = keypoint_box(self.kp2d[:, :2], self.kp2d[:, 2] >= 0.5)
        diag = float(np.hypot(box[2] - box[0], box[3] - box[1])) if box is not None else 0.0
        shoulders = float(np.linalg.norm(self.kp2d[POSE_SHOULDERS[0], :2] - self.kp2d[POSE_SHOULDERS[1], :2]))
        return max(shoulders, 0.15 * diag, 1.0)

    def torso_size(self) -> float:
        """The larger of the shoulder width and the torso length (mid-shoulders to mid-hips) in pixels: a body
        length that holds when the body turns sideways or leans towards the camera."""
        p = self.kp2d[:, :2]
        shoulders, hips = p[list(POSE_SHOULDERS)], p[list(POSE_TORSO[2:])]
        torso = float(np.linalg.norm(shoulders.mean(axis=0) - hips.mean(axis=0)))
        shoulders_width = float(np.linalg.norm(shoulders[0] - shoulders[1]))
        return max(shoulders_width, torso, 1.0)


@dataclass
class HandDet:
    """One hand: 21 landmarks in full-frame pixels (x, y, depth in pixels), a score, metric world points."""

    kp2d: np.ndarray  # (21, 3) x, y, relative depth (pixels, wrist-relative, mediapipe's z scaled by width)
    score: float
    world: np.ndarray | None  # (21, 3) metres, from the landmark model's world output; None without one
    side: int | None = None  # side named by the detector (already un-mirrored); None if unknown

    @property
    def wrist(self) -> np.ndarray:
        """Wrist position in pixels."""
        return self.kp2d[0, :2]

    def size(self) -> float:
        """Hand size in pixels: wrist to middle-finger knuckle."""
        return max(float(np.linalg.norm(self.kp2d[9, :2] - self.kp2d[0, :2])), 1.0)

    def world_points(self) -> np.ndarray:
        """Metric 3D landmarks: the world output, or the pixel landmarks scaled to a typical hand size."""
        if self.world is not None:
            return self.world
        pts = self.kp2d.astype(np.float64)
        length = float(np.linalg.norm(pts[9] - pts[0]))
        if length < 1e-6:
            return np.zeros((N_HAND, 3))
        return (pts - pts.mean(axis=0)) * (HAND_WRIST_TO_MIDDLE_MCP_M / length)


def side_from_hands_label(label: str) -> int:
    """Person's side for a mediapipe Hands handedness label on an unmirrored image ("Left" is the right)."""
    if label == "Left":
        return RIGHT
    if label == "Right":
        return LEFT
    raise ValueError(f"Unknown mediapipe handedness label: {label!r}")


def keypoint_box(points: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """x0, y0, x1, y1 of the masked points, or None when fewer than two are masked in."""
    pts = points[mask]
    if len(pts) < 2:
        return None
    return np.array([pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], np.float64)


def subject_box(
    body: BodyDet | None, hands: list[HandDet], width: int, height: int, margin: float = 0.1
) -> np.ndarray | None:
    """Box around the visible body landmarks and the hands, grown by `margin` per side, clipped to the frame."""
    parts = []
    if body is not None:
        mask = body.kp2d[:, 2] >= 0.5
        if mask.sum() < 4:
            mask = body.kp2d[:, 2] >= 0.0
        parts.append(body.kp2d[mask, :2])
    parts.extend(h.kp2d[:, :2] for h in hands)
    if not parts:
        return None
    pts = np.concatenate(parts)
    box = keypoint_box(pts, np.ones(len(pts), bool))
    if box is None:
        return None
    w, h = box[2] - box[0], box[3] - box[1]
    box += np.array([-w, -h, w, h]) * margin
    box = np.clip(box, [0, 0, 0, 0], [width, height, width, height])
    if box[2] - box[0] < 1 or box[3] - box[1] < 1:
        return None
    return box


def near_a_wrist(distances: np.ndarray, visibility: np.ndarray, radius: float) -> bool:
    """Whether a hand at these distances (pixels) from the pose wrists (their visibility) may belong to one of
    them: within `radius` of a visible wrist or twice that of a hidden one (the rule of `assign_hands`)."""
    seen = visibility >= SEEN_WRIST
    return bool(((distances <= radius) & seen | (distances <= _HIDDEN_WRIST_REACH * radius) & ~seen).any())


def dedupe_hands(hands: list[HandDet]) -> list[HandDet]:
    """Drop a hand that lies on top of a better-scored one (one physical hand found twice)."""
    kept: list[HandDet] = []
    for hand in sorted(hands, key=lambda h: -h.score):
        if not any(_same_hand(hand, k) for k in kept):
            kept.append(hand)
    return kept


def assign_hands(detections: list[HandDet], body: BodyDet | None, radius_fraction: float) -> list[HandDet | None]:
    """Give each side (person's left, right) at most one of the hands found.

    With a body, a detection may go to a side only if its wrist lies within `radius_fraction` x body scale of
    that side's pose wrist (twice that when the pose wrist is hidden and its position a guess);
    among allowed assignments the one with the smallest wrist distance plus label disagreement wins.
    Without a body, the (un-mirrored) handedness label decides and the better score wins a tie.
    """
    out: list[HandDet | None] = [None, None]
    if body is None:
        for det in sorted(detections, key=lambda h: -h.score):
            if det.side is not None and out[det.side] is None:
                out[det.side] = det
        return out
    radius = radius_fraction * body.scale()

    def cost(det: HandDet, side: int) -> float | None:
        """Cost of putting `det` on `side`, or None when it cannot be there."""
        penalty = _LABEL_PENALTY if det.side is not None and det.side != side else 0.0
        wrist = POSE_WRIST[side]
        d = float(np.linalg.norm(det.wrist - body.kp2d[wrist, :2]))
        if body.visible(wrist):
            return d / radius + penalty if d <= radius else None
        # a hidden wrist's position is a guess: allow twice the distance, at a higher cost
        reach = _HIDDEN_WRIST_REACH * radius
        return _HIDDEN_WRIST_COST + d / reach + penalty if d <= reach else None

    best_key: tuple[int, float] | None = None
    best = out
    for choice in product((None, LEFT, RIGHT), repeat=len(detections)):
        sides = [c for c in choice if c is not None]
        if len(sides) != len(set(sides)):
            continue
        total = 0.0
        placed: list[HandDet | None] = [None, None]
        feasible = True
        for det, side in zip(detections, choice, strict=True):
            if side is None:
                continue
            c = cost(det, side)
            if c is None:
                feasible = False
                break
            total += c
            placed[side] = det
        if not feasible:
            continue
        key = (-len(sides), total)
        if best_key is None or key < best_key:
            best_key, best = key, placed
    return best


def _same_hand(a: HandDet, b: HandDet) -> bool:
    """Whether two hands lie on top of each other (one physical hand seen twice)."""
    gap = float(np.linalg.norm(a.kp2d[:, :2] - b.kp2d[:, :2], axis=1).mean())
    return gap < _DUPLICATE_FRACTION * min(a.size(), b.size())
