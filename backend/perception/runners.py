"""mediapipe wrappers: Pose on the subject's window, the hand tracker (optionally in a second process), Pose
search.

Only models with model_complexity=1 are used: they ship inside the mediapipe wheel, so nothing is downloaded.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from backend.perception.hand_tracker import HandTracker, RawHand
from backend.perception.hands_worker import HANDS_SLOTS, HandsWorker, give_back, take_worker
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


def arm_points(body: BodyDet | None, view: View) -> np.ndarray | None:
    """(2, 3, 3) per side of the person the pose's wrist, pinky and index, x and y normalised to `view`, and
    their visibility: where the hand tracker looks for hands the palm detector misses. None without a body."""
    if body is None:
        return None
    out = np.empty((2, 3, 3))
    for side in (LEFT, RIGHT):
        pts = body.kp2d[list(POSE_HAND_POINTS[side][:3])]
        out[side, :, 0] = (pts[:, 0] - view.x0) / view.width
        out[side, :, 1] = (pts[:, 1] - view.y0) / view.height
        out[side, :, 2] = pts[:, 2]
    return out


class BodyRunner:
    """mediapipe Pose (model_complexity 1) in tracking mode on the subject's window; hands come from the hand
    tracker, which looks at the ends of this pose's arms."""

    def __init__(self, settings: PerceptionSettings):
        import mediapipe as mp

        self._pose = mp.solutions.pose.Pose(
            static_image_mode=False, model_complexity=1, smooth_landmarks=False, enable_segmentation=False,
            min_detection_confidence=settings.min_detection_confidence,
            min_tracking_confidence=settings.min_tracking_confidence)

    def process(self, image: np.ndarray, view: View) -> BodyDet | None:
        """The body in the RGB `image` cut from `view`, in full-frame pixels (None when there is none)."""
        res = self._pose.process(image)
        return _body(res.pose_landmarks, res.pose_world_landmarks, view)

    def close(self) -> None:
        """Release the mediapipe graph."""
        self._pose.close()


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
    """The hand tracker on the subject's window, in this process or in a second one running in parallel.

    `submit` hands over an image (with the pose's arms), `collect` returns the hands of the oldest image not yet
    collected, in full-frame pixels with the person's side from the un-mirrored label. In a second process the
    tracker works through up to HANDS_SLOTS images while the body model runs on the next frames; images travel
    through shared memory (one slot each, sized for `hands_max_side`), only their slot, shape, window and arms
    go through the pipe. That process outlives the runner: `close` hands it back for the next job
    (`hands_worker`).
    """

    def __init__(self, settings: PerceptionSettings):
        self._pending: deque[tuple[View, list[RawHand] | None]] = deque()
        self._model: HandTracker | None = None
        self._worker: HandsWorker | None = None
        self._failed = False  # the worker stopped answering: it is not handed on
        self._max_side = settings.hands_max_side
        self._slot = 0
        if settings.hands_process:
            self._worker = take_worker(settings.hands_max_side, settings.min_tracking_confidence)
        else:
            self._model = HandTracker(settings.min_tracking_confidence)

    @property
    def worker_pid(self) -> int | None:
        """Process id of the hand worker (None when the tracker runs in this process)."""
        return self._worker.pid if self._worker is not None else None

    @property
    def outstanding(self) -> int:
        """Images submitted and not yet collected."""
        return len(self._pending)

    def submit(self, image: np.ndarray, view: View, arms: np.ndarray | None = None, reach: float = 0.0,
               palms: np.ndarray | None = None, outsized: float = math.inf) -> None:
        """Start finding hands in `image`, the RGB pixels of `view` (possibly shrunk); `arms` as `arm_points`
        gives them for this view (None: no body), `reach` how far (pixels) a hand may be from its pose wrist,
        `palms` the palm detector's regions in `image` (None when it did not run), `outsized` the hand size
        (pixels, wrist to middle knuckle) above which a hand is kept wherever it lies."""
        window = (view.x0, view.y0, view.x1, view.y1)
        if self._worker is not None:
            if len(self._pending) >= HANDS_SLOTS:
                raise RuntimeError(f"Hands holds {HANDS_SLOTS} images already: collect before submitting more")
            if image.shape[0] > self._max_side or image.shape[1] > self._max_side or image.ndim != 3:
                raise ValueError(f"Hands image {image.shape} exceeds hands_max_side={self._max_side}")
            offset = self._slot * self._worker.slot_bytes
            np.ndarray(image.shape, np.uint8, buffer=self._worker.shm.buf, offset=offset)[...] = image
            try:
                self._worker.conn.send((self._slot, image.shape, window, arms, reach, palms, outsized))
            except OSError as exc:
                self._failed = True
                raise RuntimeError(_WORKER_GONE) from exc
            self._slot = (self._slot + 1) % HANDS_SLOTS
            self._pending.append((view, None))
        else:
            assert self._model is not None
            self._pending.append((view, self._model.process(image, window, arms, reach, palms, outsized)))

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
