"""Hands of one clip, each hand's landmarks computed once a frame from the cheapest region that finds it.

mediapipe Hands runs its palm detector on every frame while it tracks fewer than two hands, and Holistic finds
hands through the arms of the pose; VidRig ran both, so most hands had their landmarks computed twice and the
palm detector ran on nearly every frame of a full body. Here each frame looks, until two hands are found:
1. where each hand of the previous frame was (the region Hands tracks with);
2. at the end of each arm whose pose wrist is visible and holds no hand yet (the region Holistic grows from the
   pose's wrist, pinky and index, refined by its hand re-crop model): small hands the palm detector misses;
3. in the regions of the palm detector (`PalmDetector`, run beside the body model while hands are missing):
   hands away from any tracked one and any visible arm.
Every hand comes out of mediapipe's hand landmark model with its world landmarks and handedness. The graphs are
assembled from the subgraphs registered inside the mediapipe wheel (model_complexity 1, nothing downloaded);
which region to look at is decided here, and the tracking state is `HandTracker`'s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.perception.landmarks import near_a_wrist
from backend.perception.observations import N_HAND

# One raw hand: landmarks normalised to the image (21, 3), world landmarks (21, 3) m, the landmark model's
# handedness label (mirrored, as mediapipe Hands gives it) and its score.
RawHand = tuple[np.ndarray, np.ndarray | None, str, float]

# The wheel's Hands graph, whose palm-detection part is reused as it is.
_HANDS_GRAPH = "modules/hand_landmark/hand_landmark_tracking_cpu.binarypb"
_PALM_NODES = ("PalmDetectionCpu", "ClipDetectionVectorSizeCalculator", "ImagePropertiesCalculator",
               "BeginLoopDetectionCalculator", "PalmDetectionDetectionToRoi", "EndLoopNormalizedRectCalculator")
_LANDMARK_OUTPUTS = ("landmarks", "world_landmarks", "handedness")
# Landmarks whose box (in the hand's own frame) sizes the next frame's region: wrist, knuckles and the joints
# next to them, which stay put while fingers curl.
_PALM_POINTS = (0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18)
_REGION_SCALE = 2.0  # region side over the larger side of that box
_REGION_SHIFT = -0.1  # region moved towards the fingers by this share of the box height
# mediapipe's own threshold on the pose wrist's visibility before it looks for a hand at the end of the arm.
MIN_ARM_VISIBILITY = 0.1
# A hand already found within this many hand sizes of an arm's wrist is that arm's hand.
_ARM_TAKEN = 1.0
# After this many frames in a row on which an arm led to no hand (a hand out of view or hidden), the arm is
# looked at on every `_ARM_RETRY`-th frame only, until it leads to a hand again.
_ARM_MISSES = 6
_ARM_RETRY = 2
# Two results whose landmarks lie closer than this share of the hand's size are one hand.
_SAME_HAND = 0.35
# A palm region overlapping a found hand's region by more than this (intersection over union) is that hand.
_SAME_REGION = 0.5


def _graph(text: str):
    """A CalculatorGraphConfig from its text form."""
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2

    return text_format.Parse(text, calculator_pb2.CalculatorGraphConfig())


# The hand landmark model on the region in stream "roi" of stream "image": the last node of both graphs below.
_LANDMARK_OUTPUTS_TEXT = """
output_stream: "LANDMARKS:landmarks"
output_stream: "WORLD_LANDMARKS:world_landmarks"
output_stream: "HANDEDNESS:handedness"
"""
_LANDMARK_NODE = """
node {
  calculator: "HandLandmarkCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
""" + _LANDMARK_OUTPUTS_TEXT + "}\n"

_LANDMARKS_ON_REGION = """
input_stream: "IMAGE:image"
input_stream: "ROI:roi"
""" + _LANDMARK_OUTPUTS_TEXT + _LANDMARK_NODE

# From the pose's wrist, pinky and index (stream "arm"): Holistic's region at the end of the arm, refined by its
# hand re-crop model, then the landmark model.
_LANDMARKS_FROM_ARM = """
input_stream: "IMAGE:image"
input_stream: "ARM:arm"
""" + _LANDMARK_OUTPUTS_TEXT + """
node {
  calculator: "ImagePropertiesCalculator"
  input_stream: "IMAGE:image"
  output_stream: "SIZE:image_size"
}
node {
  calculator: "HandLandmarksFromPoseToRecropRoi"
  input_stream: "HAND_LANDMARKS_FROM_POSE:arm"
  input_stream: "IMAGE_SIZE:image_size"
  output_stream: "ROI:arm_roi"
}
node {
  calculator: "HandRecropByRoiCpu"
  input_stream: "IMAGE:image"
  input_stream: "ROI:arm_roi"
  output_stream: "HAND_ROI_FROM_RECROP:roi"
}
""" + _LANDMARK_NODE


def _palm_graph():
    """The wheel's Hands graph cut down to its palm detector and the hand regions it gives."""
    import mediapipe as mp
    from mediapipe.framework import calculator_pb2

    graph = calculator_pb2.CalculatorGraphConfig()
    graph.ParseFromString((Path(mp.__file__).parent / _HANDS_GRAPH).read_bytes())
    nodes = []
    for node in graph.node:
        if node.calculator not in _PALM_NODES:
            continue
        if node.calculator == "ImagePropertiesCalculator" and "IMAGE:palm_detection_image" not in node.input_stream:
            continue
        if node.calculator == "EndLoopNormalizedRectCalculator" and "ITEM:hand_rect_from_palm_detection" not in \
                node.input_stream:
            continue
        nodes.append(node)
    if len(nodes) != len(_PALM_NODES):
        raise RuntimeError(f"mediapipe {mp.__version__}: the Hands graph lacks its palm detection part")
    out = calculator_pb2.CalculatorGraphConfig()
    out.input_stream.append("IMAGE:palm_detection_image")
    out.output_stream.append("HAND_ROIS:hand_rects_from_palm_detections")
    out.input_side_packet.extend(["NUM_HANDS:num_hands", "MODEL_COMPLEXITY:model_complexity"])
    out.node.extend(nodes)
    return out


def region_from_landmarks(p: np.ndarray, size: tuple[int, int]):
    """The region (a mediapipe NormalizedRect) to look for a hand in next, from its (21, 2) pixel landmarks on an
    image of `size` (width, height): a square around the palm, turned so the fingers point up."""
    from mediapipe.framework.formats import rect_pb2

    w, h = size
    knuckles = ((p[5] + p[13]) / 2 + p[9]) / 2
    v = knuckles - p[0]
    angle = np.pi / 2 - np.arctan2(-v[1], v[0])
    angle = (angle + np.pi) % (2 * np.pi) - np.pi
    c, s = np.cos(angle), np.sin(angle)
    to_hand = np.array([[c, s], [-s, c]])  # image -> the hand's frame (rotated by -angle)
    q = p[list(_PALM_POINTS)] @ to_hand.T
    lo, hi = q.min(axis=0), q.max(axis=0)
    centre = (lo + hi) / 2 @ to_hand + _REGION_SHIFT * (hi[1] - lo[1]) * np.array([-s, c])
    side = _REGION_SCALE * float(max(hi - lo))
    return rect_pb2.NormalizedRect(x_center=centre[0] / w, y_center=centre[1] / h, width=side / w,
                                   height=side / h, rotation=float(angle))


class PalmDetector:
    """mediapipe's palm detector on a whole image: up to two hand regions, as (n, 5) x and y centre, width,
    height (normalised to the image) and turn (radians)."""

    def __init__(self, min_detection: float):
        from mediapipe.python.solution_base import SolutionBase

        self._graph = SolutionBase(
            graph_config=_palm_graph(), side_inputs={"num_hands": 2, "model_complexity": 1},
            calculator_params={"palmdetectioncpu__TensorsToDetectionsCalculator.min_score_thresh": min_detection},
            outputs=["hand_rects_from_palm_detections"])

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The hand regions of the palms in the RGB `image`."""
        rects = self._graph.process({"palm_detection_image": image}).hand_rects_from_palm_detections or []
        return np.array([(r.x_center, r.y_center, r.width, r.height, r.rotation) for r in rects],
                        np.float64).reshape(-1, 5)

    def close(self) -> None:
        """Release the mediapipe graph."""
        self._graph.close()


@dataclass
class _Hand:
    """A hand found in this frame: landmarks in window pixels, world landmarks, label and score."""

    px: np.ndarray  # (21, 3) x, y pixels of the image, z scaled like x
    world: np.ndarray | None
    label: str
    score: float

    @property
    def size(self) -> float:
        """Wrist to middle knuckle in pixels."""
        return max(float(np.linalg.norm(self.px[9, :2] - self.px[0, :2])), 1.0)

    def same(self, other: _Hand) -> bool:
        """Whether the two are one physical hand."""
        d = float(np.linalg.norm(self.px[:, :2] - other.px[:, :2], axis=1).mean())
        return d < _SAME_HAND * max(self.size, other.size)


class HandTracker:
    """Finds up to two hands per image of one clip (tracking, arms, palm regions); `new_clip` forgets the last."""

    def __init__(self, min_tracking: float):
        from mediapipe.python.solution_base import SolutionBase

        landmark_threshold = {"handlandmarkcpu__ThresholdingCalculator.threshold": min_tracking}
        self._on_region = SolutionBase(graph_config=_graph(_LANDMARKS_ON_REGION), side_inputs={"model_complexity": 1},
                                       calculator_params=landmark_threshold, outputs=list(_LANDMARK_OUTPUTS))
        self._from_arm = SolutionBase(graph_config=_graph(_LANDMARKS_FROM_ARM), side_inputs={"model_complexity": 1},
                                      calculator_params=landmark_threshold, outputs=list(_LANDMARK_OUTPUTS))
        self._previous: list[np.ndarray] = []  # (21, 2) full-frame pixels of last frame's hands
        self._arm_misses = [0, 0]  # frames in a row each arm (person's left, right) led to no hand

    def new_clip(self) -> None:
        """Forget the hands of the previous image: the next one starts a new clip."""
        self._previous = []
        self._arm_misses = [0, 0]

    def process(self, image: np.ndarray, window: tuple[float, float, float, float],
                arms: np.ndarray | None = None, reach: float = 0.0, palms: np.ndarray | None = None,
                outsized: float = math.inf) -> list[RawHand]:
        """Hands in the RGB `image`, which shows `window` (x0, y0, x1, y1 full-frame pixels) of the frame.

        `arms` (2, 3, 3): per side of the person, the pose's wrist, pinky and index x, y normalised to the image
        and their visibility; None when no body was found. `reach` (full-frame pixels): how far from a pose
        wrist its hand may be. `palms`: the `PalmDetector` regions of this image (None when it did not run).
        `outsized` (full-frame pixels): a hand larger than this (wrist to middle knuckle) is too big for that body
        and kept wherever it lies.
        """
        ih, iw = image.shape[:2]
        x0, y0, x1, y1 = window
        to_image = np.array([iw / (x1 - x0), ih / (y1 - y0)])
        wrists = None if arms is None else (arms[:, 0, :2] * (iw, ih), arms[:, 0, 2], reach * to_image[0],
                                             outsized * to_image[0])
        found: list[_Hand] = []
        for prev in self._previous:  # 1. where the hands were
            region = region_from_landmarks((prev - (x0, y0)) * to_image, (iw, ih))
            self._add(found, self._landmarks(self._on_region, {"image": image, "roi": region}, iw, ih), wrists)
        if arms is not None and len(found) < 2:  # 2. at the ends of the arms
            for side, arm in enumerate(arms):
                if len(found) < 2 and arm[0, 2] >= MIN_ARM_VISIBILITY and not self._arm_taken(found, arm, iw, ih):
                    misses = self._arm_misses[side]
                    if misses >= _ARM_MISSES and (misses - _ARM_MISSES) % _ARM_RETRY != _ARM_RETRY - 1:
                        self._arm_misses[side] += 1
                        continue
                    hand = self._landmarks(self._from_arm, {"image": image, "arm": _arm_proto(arm)}, iw, ih)
                    self._arm_misses[side] = 0 if hand is not None else misses + 1
                    self._add(found, hand, wrists)
        if palms is not None and len(found) < 2:  # 3. anywhere else
            from mediapipe.framework.formats import rect_pb2

            for xc, yc, w, h, turn in palms:
                region = rect_pb2.NormalizedRect(x_center=xc, y_center=yc, width=w, height=h, rotation=turn)
                if len(found) < 2 and not self._region_taken(found, region, iw, ih):
                    inputs = {"image": image, "roi": region}
                    self._add(found, self._landmarks(self._on_region, inputs, iw, ih), wrists)
        self._previous = [h.px[:, :2] / to_image + (x0, y0) for h in found]
        return [(h.px / [iw, ih, iw], h.world, h.label, h.score) for h in found]

    @staticmethod
    def _landmarks(graph, inputs: dict, iw: int, ih: int) -> _Hand | None:
        """Run a landmark graph; the hand it found (None when none passed the presence threshold)."""
        res = graph.process(inputs)
        if res.landmarks is None:
            return None
        px = np.array([(p.x * iw, p.y * ih, p.z * iw) for p in res.landmarks.landmark[:N_HAND]])
        world = None
        if res.world_landmarks is not None:
            world = np.array([(p.x, p.y, p.z) for p in res.world_landmarks.landmark[:N_HAND]])
        cls = res.handedness.classification[0]
        return _Hand(px=px, world=world, label=cls.label, score=float(cls.score))

    @staticmethod
    def _add(found: list[_Hand], hand: _Hand | None, wrists: tuple | None) -> None:
        """Keep a newly found hand unless it is one already found (then the better scored of the two stays) or
        lies away from the body's wrists (`wrists`: pixels (2, 2), visibility (2,), reach, outsized; None without a
        body), where the sides are given (`landmarks.assign_hands`) it would be dropped anyway. A hand larger than
        `outsized` is kept: it shows the body wrong, and the sides are then given without it.
        """
        if hand is None:
            return
        if wrists is not None:
            at, visibility, reach, outsized = wrists
            near = near_a_wrist(np.linalg.norm(at - hand.px[0, :2], axis=1), visibility, reach)
            if not near and hand.size <= outsized:
                return
        for i, other in enumerate(found):
            if hand.same(other):
                if hand.score > other.score:
                    found[i] = hand
                return
        found.append(hand)

    @staticmethod
    def _arm_taken(found: list[_Hand], arm: np.ndarray, iw: int, ih: int) -> bool:
        """Whether a hand already found lies at this arm's wrist."""
        wrist = arm[0, :2] * (iw, ih)
        return any(np.linalg.norm(h.px[0, :2] - wrist) < _ARM_TAKEN * h.size for h in found)

    @staticmethod
    def _region_taken(found: list[_Hand], region, iw: int, ih: int) -> bool:
        """Whether a palm region mostly covers a hand already found (its box overlaps that hand's region by
        more than half: the rule by which Hands tells a new palm from a tracked hand)."""
        box = _square(region.x_center * iw, region.y_center * ih, region.width * iw)
        for h in found:
            mine = region_from_landmarks(h.px[:, :2], (iw, ih))
            if _iou(box, _square(mine.x_center * iw, mine.y_center * ih, mine.width * iw)) > _SAME_REGION:
                return True
        return False

    def close(self) -> None:
        """Release the mediapipe graphs."""
        for graph in (self._on_region, self._from_arm):
            graph.close()


def _square(cx: float, cy: float, side: float) -> np.ndarray:
    """x0, y0, x1, y1 of a square (regions are squares in pixels; their turn is ignored)."""
    return np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def _arm_proto(arm: np.ndarray):
    """The pose's wrist, pinky and index (3, 3) as the NormalizedLandmarkList Holistic's hand subgraph takes."""
    from mediapipe.framework.formats import landmark_pb2

    out = landmark_pb2.NormalizedLandmarkList()
    for x, y, vis in arm:
        out.landmark.add(x=float(x), y=float(y), visibility=float(vis))
    return out
