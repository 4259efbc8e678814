"""The hand tracker in a second process, kept warm from one job to the next.

Starting that process costs about two seconds (a fresh interpreter importing mediapipe): on a short clip, a large
share of the perception stage. The backend is a long-running server, so a finished job hands its worker back and
the next job with the same hand settings takes it. Every clip starts with no hands tracked, so no tracking state
crosses from one clip to the next: a reused worker answers exactly like a fresh one (tested).
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing as mp_proc
import threading
from multiprocessing import shared_memory
from multiprocessing.connection import Connection

import numpy as np

from backend.perception.hand_tracker import HandTracker
from backend.perception.settings import PerceptionSettings

# Images the worker may hold at once: the one it works on and those the body model has finished since.
HANDS_SLOTS = 3
_NEW_CLIP = "new clip"


def _serve(conn: Connection, shm_name: str, slots: int, min_tracking: float) -> None:
    """Child process loop: a new clip forgets the tracked hands; (slot, image shape, window, arms, reach, palms,
    outsized) reads that slot's RGB pixels from shared memory and answers with the raw hands found, in order; None
    ends it.
    """
    model = HandTracker(min_tracking)
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
                model.new_clip()
                continue
            slot, shape, window, arms, reach, palms, outsized = msg
            image = np.ndarray(shape, np.uint8, buffer=shm.buf, offset=slot * slot_bytes)
            conn.send(model.process(image, window, arms, reach, palms, outsized))
            del image
    finally:
        model.close()
        shm.close()
        conn.close()


class HandsWorker:
    """One hand-tracker process and its shared-memory image slots (each sized for images up to `max_side`)."""

    def __init__(self, max_side: int, min_tracking: float):
        self.max_side = max_side
        self.min_tracking = min_tracking
        self.slot_bytes = max_side * max_side * 3
        ctx = mp_proc.get_context("spawn")
        self.shm = shared_memory.SharedMemory(create=True, size=HANDS_SLOTS * self.slot_bytes)
        self.conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, self.shm.name, HANDS_SLOTS, min_tracking),
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
        """Forget the last clip: the next image starts with no hands tracked."""
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


def take_worker(max_side: int, min_tracking: float) -> HandsWorker:
    """The waiting worker when it runs with this tracking threshold and takes images this large, else a newly started
    one; ready for a new clip either way."""
    with _lock:
        worker = _idle.pop() if _idle else None
    fits = worker is not None and worker.min_tracking == min_tracking and worker.max_side >= max_side
    if worker is not None and (not fits or not worker.alive()):
        worker.close()
        worker = None
    if worker is None:  # slots for at least the default size, so any preset up to it can reuse this worker
        return HandsWorker(max(max_side, PerceptionSettings.hands_max_side), min_tracking)
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
