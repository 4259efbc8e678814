"""mediapipe wrappers: Holistic on the subject's window, Hands (optionally in a second process), Pose search.

Only the legacy solutions with model_complexity=1 are used: their models ship inside the mediapipe wheel,
so nothing is downloaded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.perception.hands_worker import (
    HANDS_SLOTS,
    HandsModel,
    HandsWorker,
    RawHand,
    give_back,
    take_worker,
)
from backend.perception.landmarks import POSE_HAND_POINTS, BodyDet, HandDet, landmark_array, side_from_hands_label
from backend.perception.observations import LEFT, N_BODY, N_HAND, RIGHT
from backend.perception.settings import PerceptionSettings
from backend.perception.views import View


def _body(pose_landmarks, pose_world_landmarks, view: View) -> BodyDet | None:
    """A BodyDet in full-frame pixels from mediapipe pose outputs on `view`."""
    if pose_landmarks is None:
        return None
    raw = landmark_array(pose_landmarks, N_BODY)
    kp2d = np.empty((N_BODY, 3))
    kp2d[:, :2] = view.to_pixels(raw[:, :2])
    kp2d[:, 2] = np.clip(raw[:, 3], 0.0, 1.0)
    kp3d = np.zeros((N_BODY, 4))
    if pose_world_landmarks is not None:
        kp3d[:, :3] = landmark_array(pose_world_landmarks, N_BODY)[:, :3]
    kp3d[:, 3] = kp2d[:, 2]
    return BodyDet(kp2d=kp2d, kp3d=kp3d)


def _hand_pixels(lms, view: View) -> np.ndarray:
    """(21, 3) x, y pixels and relative depth in pixels (mediapipe's z is scaled like x)."""
    raw = landmark_array(lms, N_HAND)
    out = np.empty((N_HAND, 3))
    out[:, :2] = view.to_pixels(raw[:, :2])
    out[:, 2] = raw[:, 2] * view.width
    return out


@dataclass
class BodyOut:
    """The body and, with Holistic, its two body-driven hands (index = the person's side) in full-frame pixels."""

    body: BodyDet | None
    hands: list[HandDet | None]


# Holistic's graph in the mediapipe wheel, and the names of its parts that VidRig keeps.
_HOLISTIC_GRAPH = "modules/holistic_landmark/holistic_landmark_cpu.binarypb"
_HOLISTIC_KEEP = ("PoseLandmarkCpu", "HandLandmarksLeftAndRightCpu")


def _holistic_without_face(settings: PerceptionSettings):
    """mediapipe Holistic (model_complexity 1) without its face-mesh branch, whose output VidRig never uses.

    The wheel's own Holistic graph with the face nodes, stream and side input removed; pose and hand
    landmarks are those of the full graph (tested), about 5 ms a frame sooner on this CPU.
    """
    import mediapipe as mp
    from mediapipe.framework import calculator_pb2
    from mediapipe.python.solution_base import SolutionBase

    graph = calculator_pb2.CalculatorGraphConfig()
    graph.ParseFromString((Path(mp.__file__).parent / _HOLISTIC_GRAPH).read_bytes())
    nodes = [n for n in graph.node if n.calculator in _HOLISTIC_KEEP]
    if len(nodes) != len(_HOLISTIC_KEEP):
        raise RuntimeError(f"mediapipe {mp.__version__}: Holistic graph lacks {_HOLISTIC_KEEP}")
    outputs = [o for o in graph.output_stream if not o.startswith("FACE_")]
    sides = [s for s in graph.input_side_packet if not s.startswith("REFINE_FACE")]
    del graph.node[:], graph.output_stream[:], graph.input_side_packet[:]
    graph.node.extend(nodes)
    graph.output_stream.extend(outputs)
    graph.input_side_packet.extend(sides)
    return SolutionBase(
        graph_config=graph,
        side_inputs={"model_complexity": 1, "smooth_landmarks": False, "enable_segmentation": False,
                     "smooth_segmentation": False, "use_prev_landmarks": True},
        calculator_params={
            "poselandmarkcpu__posedetectioncpu__TensorsToDetectionsCalculator.min_score_thresh":
                settings.min_detection_confidence,
            "poselandmarkcpu__poselandmarkbyroicpu__tensorstoposelandmarksandsegmentation__"
            "ThresholdingCalculator.threshold": settings.min_tracking_confidence,
        },
        outputs=["pose_landmarks", "pose_world_landmarks", "left_hand_landmarks", "right_hand_landmarks"],
    )


class BodyRunner:
    """The body model in tracking mode: mediapipe Holistic without its face branch (body + body-driven hands),
    or Pose (body only, faster)."""

    def __init__(self, settings: PerceptionSettings):
        import mediapipe as mp

        if settings.body_model == "holistic":
            self._solution = _holistic_without_face(settings)
            self._process = lambda image: self._solution.process({"image": image})
        else:
            self._solution = mp.solutions.pose.Pose(
                static_image_mode=False, model_complexity=1, smooth_landmarks=False, enable_segmentation=False,
                min_detection_confidence=settings.min_detection_confidence,
                min_tracking_confidence=settings.min_tracking_confidence)
            self._process = self._solution.process

    def process(self, image: np.ndarray, view: View) -> BodyOut:
        """Run on the RGB `image` cut from `view`; landmarks come back in full-frame pixels."""
        res = self._process(image)
        body = _body(res.pose_landmarks, res.pose_world_landmarks, view)
        hands: list[HandDet | None] = [None, None]
        if body is not None:
            # Holistic's left hand is found from the pose's left wrist, pinky and index (the person's left).
            for side, name in ((LEFT, "left_hand_landmarks"), (RIGHT, "right_hand_landmarks")):
                lms = getattr(res, name, None)
                if lms is not None:
                    score = float(body.kp2d[list(POSE_HAND_POINTS[side]), 2].mean())
                    hands[side] = HandDet(kp2d=_hand_pixels(lms, view), score=max(score, 1e-3), world=None, side=side)
        return BodyOut(body=body, hands=hands)

    def close(self) -> None:
        """Release the mediapipe graph."""
        self._solution.close()


class PoseSearcher:
    """mediapipe Pose on single images (detector every call), used to look for a lost subject in tiles."""

    def __init__(self, settings: PerceptionSettings):
        import mediapipe as mp

        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True,
            model_complexity=1,
            enable_segmentation=False,
            min_detection_confidence=settings.min_detection_confidence,
        )

    def process(self, image: np.ndarray, view: View) -> BodyDet | None:
        """The most prominent body in `image` (cut from `view`), in full-frame pixels."""
        res = self._pose.process(image)
        return _body(res.pose_landmarks, res.pose_world_landmarks, view)

    def close(self) -> None:
        """Release the mediapipe graph."""
        self._pose.close()


_WORKER_GONE = "The mediapipe Hands worker process stopped unexpectedly"


class HandsRunner:
    """mediapipe Hands on the subject's window, in this process or in a second one running in parallel.

    `submit` hands over an image, `collect` returns the detections of the oldest image not yet collected, in
    full-frame pixels with the person's side from the un-mirrored label. In a second process Hands works
    through up to HANDS_SLOTS images while Holistic runs; they travel through shared memory (one slot each,
    sized for `hands_max_side`) and only their slot and shape go through the pipe. That process outlives the
    runner: `close` hands it back for the next job (`hands_worker`).
    """

    def __init__(self, settings: PerceptionSettings):
        self._pending: deque[tuple[View, list[RawHand] | None]] = deque()
        self._model: HandsModel | None = None
        self._worker: HandsWorker | None = None
        self._failed = False  # the worker stopped answering: it is not handed on
        self._max_side = settings.hands_max_side
        self._slot = 0
        if settings.hands_process:
            self._worker = take_worker(settings.hands_max_side, settings.min_detection_confidence,
                                       settings.min_tracking_confidence)
        else:
            self._model = HandsModel(settings.min_detection_confidence, settings.min_tracking_confidence)

    @property
    def worker_pid(self) -> int | None:
        """Process id of the Hands worker (None when Hands runs in this process)."""
        return self._worker.pid if self._worker is not None else None

    @property
    def outstanding(self) -> int:
        """Images submitted and not yet collected."""
        return len(self._pending)

    def submit(self, image: np.ndarray, view: View) -> None:
        """Start detecting hands in `image`, the RGB pixels of `view` (possibly shrunk)."""
        if self._worker is not None:
            if len(self._pending) >= HANDS_SLOTS:
                raise RuntimeError(f"Hands holds {HANDS_SLOTS} images already: collect before submitting more")
            if image.shape[0] > self._max_side or image.shape[1] > self._max_side or image.ndim != 3:
                raise ValueError(f"Hands image {image.shape} exceeds hands_max_side={self._max_side}")
            offset = self._slot * self._worker.slot_bytes
            np.ndarray(image.shape, np.uint8, buffer=self._worker.shm.buf, offset=offset)[...] = image
            try:
                self._worker.conn.send((self._slot, image.shape))
            except OSError as exc:
                self._failed = True
                raise RuntimeError(_WORKER_GONE) from exc
            self._slot = (self._slot + 1) % HANDS_SLOTS
            self._pending.append((view, None))
        else:
            assert self._model is not None
            self._pending.append((view, self._model.process(image)))

    def collect(self) -> list[HandDet]:
        """Detections for the oldest submitted image not yet collected, in full-frame pixels."""
        if not self._pending:
            return []
        view, raw = self._pending.popleft()
        if raw is None:
            assert self._worker is not None
            try:
                raw = self._worker.conn.recv()
            except (EOFError, OSError) as exc:  # a closed or reset pipe: the process died
                self._failed = True
                raise RuntimeError(_WORKER_GONE) from exc
        out = []
        for norm, world, label, score in raw:
            kp = np.empty((N_HAND, 3))
            kp[:, :2] = view.to_pixels(norm[:, :2])
            kp[:, 2] = norm[:, 2] * view.width
            out.append(HandDet(kp2d=kp, score=score, world=world, side=side_from_hands_label(label)))
        return out

    def close(self) -> None:
        """Hand the worker back for the next job once every answer is read (stop it when that fails), or release
        the in-process graph."""
        if self._worker is not None:
            worker, self._worker = self._worker, None
            try:
                for _, raw in self._pending:
                    if raw is None and not self._failed:
                        worker.conn.recv()
            except (EOFError, OSError):
                self._failed = True
            if self._failed:
                worker.close()
            else:
                give_back(worker)
        self._pending.clear()
        if self._model is not None:
            self._model.close()
            self._model = None
