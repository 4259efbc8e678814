"""A test-only method registered through VIDRIG_PLUGINS: counts decoded frames, with knobs to be slow or misbehave."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from backend.methods.base import JobContext
from backend.methods.registry import MethodEntry, register
from backend.video import iter_frames
from protocol.result import Result, ResultMeta, SmplxMotion


@dataclass
class FrameCountSettings:
    """Knobs that let tests exercise slow jobs, cancellation and worker death."""

    delay: float = 0.0  # seconds slept per frame
    ignore_cancel: bool = False  # never check the cancel flag (the server must kill the worker)
    exit_code: int | None = None  # the worker process exits with this code at the first frame
    salt: str = ""  # changes the stage key without changing behaviour
    gate: str = ""  # when set, a second cached stage `gate` waits (cancellable) until this file exists


class FrameCountMethod:
    """Decodes the clip in a cached stage and returns a zero-pose body with one frame per decoded frame."""

    name = "testcount"
    produces = frozenset({"body"})

    def run(self, job: JobContext, settings: FrameCountSettings) -> Result:
        """Count frames (cached as stage `count`), then build a rest-pose result of that length."""
        total = max(job.info.n_frames, 1)

        def count() -> np.ndarray:
            indices = []
            for frame in iter_frames(job.video, *job.frame_range, max_side=64):
                if settings.exit_code is not None:
                    os._exit(settings.exit_code)
                if not settings.ignore_cancel:
                    job.check_cancelled()
                time.sleep(settings.delay)
                indices.append(frame.index)
                job.progress("count", len(indices) / total, f"frame {frame.index}")
            return np.asarray(indices, np.int64)

        indices = job.stage(
            "count",
            {"salt": settings.salt},
            count,
            lambda a: {"indices": a},
            lambda d: d["indices"],
        )
        if settings.gate:
            self._wait_for_gate(job, settings.gate)
        t = len(indices)
        z3 = np.zeros((t, 3), np.float32)
        motion = SmplxMotion(
            global_orient=z3,
            body_pose=np.zeros((t, 21, 3), np.float32),
            jaw_pose=z3,
            leye_pose=z3,
            reye_pose=z3,
            left_hand_pose=np.zeros((t, 15, 3), np.float32),
            right_hand_pose=np.zeros((t, 15, 3), np.float32),
            betas=np.zeros(10, np.float32),
            transl=np.tile(np.arange(t, dtype=np.float32)[:, None], (1, 3)),
            global_orient_c=z3,
            transl_c=z3,
        )
        meta = ResultMeta(
            method=self.name,
            preset=None,
            settings={},
            body_model="default",
            gender="neutral",
            fps=job.info.fps,
            frame_indices=indices.tolist(),
        )
        return Result(meta=meta, smplx=motion)

    @staticmethod
    def _wait_for_gate(job: JobContext, gate: str) -> None:
        """Stage `gate`: poll for the gate file, reporting progress and honouring cancellation."""

        def wait() -> np.ndarray:
            polls = 0
            while not os.path.exists(gate):
                job.check_cancelled()
                polls += 1
                job.progress("gate", 0.5, f"waiting for {gate}")
                time.sleep(0.02)
            return np.asarray([polls], np.int64)

        job.stage("gate", {"gate": gate}, wait, lambda a: {"polls": a}, lambda d: d["polls"])


register(
    MethodEntry(
        name="testcount",
        produces=frozenset({"body"}),
        factory="tests.support.methods:FrameCountMethod",
        settings="tests.support.methods:FrameCountSettings",
        description="test-only: counts frames",
    )
)
