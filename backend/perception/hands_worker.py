"""mediapipe Hands in a second process, kept warm from one job to the next.

Starting that process costs about two seconds (a fresh interpreter importing mediapipe): on a short clip, a large
share of the perception stage. The backend is a long-running server, so a finished job hands its worker back and
the next job with the same Hands settings takes it. Every clip starts on a newly built Hands graph, so no tracking
state crosses from one clip to the next: a reused worker answers exactly like a fresh one (tested).
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp_proc
import threading
from multiprocessing import shared_memory
from multiprocessing.connection import Connection

import numpy as np

from backend.perception.landmarks import landmark_array
from backend.perception.observations import N_HAND
from backend.perception.settings import PerceptionSettings

RawHand = tuple[np.ndarray, np.ndarray | None, str, float]  # normalised (21,3), world (21,3), label, score
# Images Hands may hold at once: the frame Holistic is on and the ones after it, so neither waits on the other.
HANDS_SLOTS = 3
_NEW_CLIP = "new clip"


class HandsModel:
    """mediapipe Hands (palm detector + landmarks, up to two hands) in tracking mode."""

    def __init__(self, min_detection: float, min_tracking: float):
        import mediapipe as mp

        self._hands = mp.solutions.hands.Hands(
            static_image_mode=False,
            max_num_hands=2,
            model_complexity=1,
            min_detection_confidence=min_detection,
            min_tracking_confidence=min_tracking,
        )

    def process(self, image: np.ndarray) -> list[RawHand]:
        """Raw detections: normalised landmarks, world landmarks, mirrored-convention label, score."""
        res = self._hands.process(image)
        out: list[RawHand] = []
        worlds = res.multi_hand_world_landmarks or [None] * len(res.multi_hand_landmarks or [])
        for lms, world, handed in zip(
            res.multi_hand_landmarks or [], worlds, res.multi_handedness or [], strict=True
        ):
            cls = handed.classification[0]
            w = landmark_array(world, N_HAND)[:, :3] if world is not None else None
            out.append((landmark_array(lms, N_HAND)[:, :3], w, cls.label, float(cls.score)))
        return out

    def close(self) -> None:
        """Release the mediapipe graph."""
        self._hands.close()


def _serve(conn: Connection, shm_name: str, slots: int, min_detection: float, min_tracking: float) -> None:
    """Child process loop: a new clip rebuilds the Hands graph; (slot, image shape) reads that slot's RGB pixels
    from shared memory and answers with raw Hands detections, in order; None ends it."""
    model = HandsModel(min_detection, min_tracking)
    shm = shared_memory.SharedMemory(name=shm_name)
    slot_bytes = len(shm.buf) // slots
    try:
        while True:
            try:
                msg = conn.recv()
            except EOFError:  # the parent went away without saying goodbye
                break
            if msg is None:
                break
            if msg == _NEW_CLIP:
                model.close()
                model = HandsModel(min_detection, min_tracking)
                continue
            slot, shape = msg
            image = np.ndarray(shape, np.uint8, buffer=shm.buf, offset=slot * slot_bytes)
            conn.send(model.process(image))
            del image
    finally:
        model.close()
        shm.close()
        conn.close()


class HandsWorker:
    """One Hands process and its shared-memory image slots (each sized for images up to `max_side`)."""

    def __init__(self, max_side: int, min_detection: float, min_tracking: float):
        self.max_side = max_side
        self.thresholds = (min_detection, min_tracking)
        self.slot_bytes = max_side * max_side * 3
        ctx = mp_proc.get_context("spawn")
        self.shm = shared_memory.SharedMemory(create=True, size=HANDS_SLOTS * self.slot_bytes)
        self.conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self.shm.name, HANDS_SLOTS, min_detection, min_tracking),
                                 daemon=True, name="vidrig-hands")
        self._proc.start()
        child.close()

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self._proc.pid

    def alive(self) -> bool:
        """Whether the process still runs."""
        return self._proc.is_alive()

    def new_clip(self) -> None:
        """Forget the last clip: the next image starts on a fresh Hands graph."""
        self.conn.send(_NEW_CLIP)

    def close(self) -> None:
        """Stop the process and free the shared memory."""
        with contextlib.suppress(BrokenPipeError, EOFError, OSError):
            self.conn.send(None)
        self.conn.close()
        self._proc.join(timeout=5)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(timeout=5)
        self.shm.close()
        self.shm.unlink()


_lock = threading.Lock()
_idle: list[HandsWorker] = []  # at most one worker waits for the next job


def take_worker(max_side: int, min_detection: float, min_tracking: float) -> HandsWorker:
    """The waiting worker when it runs with these thresholds and takes images this large, else a newly started
    one; ready for a new clip either way."""
    with _lock:
        worker = _idle.pop() if _idle else None
    fits = worker is not None and worker.thresholds == (min_detection, min_tracking) and worker.max_side >= max_side
    if worker is not None and (not fits or not worker.alive()):
        worker.close()
        worker = None
    if worker is None:  # slots for at least the default size, so any preset up to it can reuse this worker
        return HandsWorker(max(max_side, PerceptionSettings.hands_max_side), min_detection, min_tracking)
    worker.new_clip()
    return worker


def give_back(worker: HandsWorker) -> None:
    """Keep a worker whose answers have all been read for the next job; the one kept before it stops."""
    if not worker.alive():
        worker.close()
        return
    with _lock:
        older = list(_idle)
        _idle[:] = [worker]
    for w in older:
        w.close()


def idle_worker_pid() -> int | None:
    """Process id of the worker waiting for the next job, None when none waits."""
    with _lock:
        return _idle[0].pid if _idle else None


@atexit.register
def _close_idle() -> None:
    """Stop the waiting worker when the backend exits."""
    with _lock:
        idle = list(_idle)
        _idle.clear()
    for w in idle:
        w.close()
