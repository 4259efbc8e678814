"""The Method protocol and the JobContext a method runs in: cached stages, models, progress and cancellation."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from protocol.errors import Cancelled

from ..cache.stage_cache import StageCache, code_digest, stage_key

if TYPE_CHECKING:
    from protocol.result import Result

    from ..camera.types import CameraSolve
    from ..models.base import BodyModel, HandModel
    from ..perception.observations import Observations
    from ..settings import JobSettings
    from ..video import FrameFanout, FrameStream, VideoInfo

T = TypeVar("T")
ProgressSink = Callable[[str, float, str, float | None], None]  # stage, overall fraction, message, eta seconds

# Share of the whole job each stage usually takes, for an overall fraction and ETA.
STAGE_WEIGHTS = {"probe": 0.02, "perception": 0.5, "camera": 0.18}


@dataclass
class JobSpec:
    """Everything needed to run (or re-run) a job; JSON-able so it survives restarts."""

    video: str
    method: str
    settings: dict[str, dict[str, Any]]
    preset: str | None = None
    frames: list[int] | None = None
    body_model: str = "default"
    gender: str = "neutral"
    models_dir: str | None = None
    pins: str | None = None  # path of an .npz with pin_frames / pin_poses for a refine
    parent: str | None = None  # the job a refine starts from


class Method(Protocol):
    """What every reconstruction method implements."""

    name: str
    produces: frozenset[str]

    def run(self, job: JobContext, settings: Any) -> Result: ...


@dataclass
class _Clock:
    """Tracks the overall fraction of a job across stages to estimate time left."""

    start: float = field(default_factory=time.monotonic)
    done_weight: float = 0.0
    stage: str = ""
    stage_weight: float = 0.0

    def overall(self, stage: str, fraction: float) -> float:
        """Map a stage-local fraction to the whole job."""
        if stage != self.stage:
            self.done_weight = min(self.done_weight + self.stage_weight, 0.95)
            self.stage = stage
            self.stage_weight = STAGE_WEIGHTS.get(stage, max(1.0 - self.done_weight, 0.05) / 2)
        return min(self.done_weight + self.stage_weight * min(max(fraction, 0.0), 1.0), 0.999)

    def eta(self, overall: float) -> float | None:
        """Seconds left by linear extrapolation of the overall fraction."""
        elapsed = time.monotonic() - self.start
        if overall <= 0.01 or elapsed < 0.5:
            return None
        return elapsed * (1.0 - overall) / overall


CAMERA_NICENESS = 10  # how much lower the background camera thread's priority is than the job's (Linux)


def _yield_to_critical_path() -> None:
    """Lower the calling thread's CPU priority by CAMERA_NICENESS (Linux, where a thread id names one thread;
    threads it starts inherit it). Perception and the camera share the CPU, the job waits on perception first and
    the camera usually has time to spare: on 2 cores the 720p job was about 7% faster (six alternating runs).
    Elsewhere, or when the system refuses, nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(os.getpriority(os.PRIO_PROCESS, tid) + CAMERA_NICENESS, 19))
    except OSError:
        pass


class JobContext:
    """A method's view of its job: the video, lazily computed and cached stages, models, progress and cancellation."""

    def __init__(
        self,
        spec: JobSpec,
        settings: JobSettings,
        cache: StageCache,
        *,
        sink: ProgressSink | None = None,
        cancelled: Callable[[], bool] = lambda: False,
        device: str = "cpu",
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.cache = cache
        self.device = device
        self.video = Path(spec.video)
        self.timings: dict[str, float] = {}
        self.cached_stages: list[str] = []
        self._sink = sink
        self._cancelled = cancelled
        self._clock = _Clock()
        self._last_emit = 0.0
        self._camera_job: Future[CameraSolve] | None = None
        self._shared_frames: FrameFanout | None = None  # one decode for perception and the camera, when both run
        self._perception_frames: FrameStream | None = None  # perception's share of it, until observations() runs
        self._camera_progress: tuple[float, str] = (0.0, "")
        self._abandon = threading.Event()  # set by close(): background work stops at its next check
        self._keys: dict[str, str] = {}  # stage -> cache key, as each stage starts (any thread)
        self._consumed: dict[str, str] = {}  # stage -> key of the results the job's thread has taken so far

    @property
    def frame_range(self) -> tuple[int, int | None]:
        """[start, stop) of the source frames this job covers (stop None = to the end)."""
        if self.spec.frames:
            return self.spec.frames[0], self.spec.frames[1]
        return 0, None

    def progress(self, stage: str, fraction: float, message: str = "") -> None:
        """Report progress inside a stage; cheap enough to call every iteration (rate-limited to 20 Hz). Only the
        job's own thread calls it: the background camera notes its progress for `camera()` to report."""
        now = time.monotonic()
        changed = stage != self._clock.stage
        overall = self._clock.overall(stage, fraction)
        if self._sink is not None and (changed or fraction >= 1.0 or now - self._last_emit >= 0.05):
            self._last_emit = now
            self._sink(stage, overall, message, self._clock.eta(overall))

    def check_cancelled(self) -> None:
        """Raise Cancelled when the client asked to stop; call it inside every loop."""
        if self._cancelled():
            raise Cancelled("the job was cancelled")

    def stage(
        self,
        name: str,
        settings: dict[str, Any],
        compute: Callable[[], T],
        encode: Callable[[T], dict[str, np.ndarray]],
        decode: Callable[[dict[str, np.ndarray]], T],
    ) -> T:
        """Run a method's stage once per (video content, frame range, settings, and the stages whose results the
        job has taken before it, so changed perception or camera settings re-run it): cached on disk, skipped on
        re-runs."""
        value = self._stage(name, {**settings, "inputs": dict(self._consumed)}, compute, encode, decode, self.progress)
        self._consumed[name] = self._keys[name]
        return value

    def _stage(self, name: str, settings: dict[str, Any], compute: Callable[[], T],
               encode: Callable[[T], dict[str, np.ndarray]], decode: Callable[[dict[str, np.ndarray]], T],
               progress: Callable[[str, float, str], None]) -> T:
        """`stage`, reporting through `progress` (the background camera notes its progress instead)."""
        key = self._key(name, settings)
        self._keys[name] = key
        hit = self.cache.get(key)
        if hit is not None:
            self.cached_stages.append(name)
            progress(name, 1.0, "cached")
            return decode(hit[0])
        t0 = time.perf_counter()
        progress(name, 0.0, "starting")
        value = compute()
        self.timings[name] = time.perf_counter() - t0
        self.cache.put(key, encode(value), {"stage": name, "seconds": self.timings[name]})
        progress(name, 1.0, "done")
        return value

    def _key(self, name: str, settings: dict[str, Any]) -> str:
        """Cache key of stage `name` of this job's video and frame range with `settings`."""
        return stage_key(self.video_hash, name, {"frames": list(self.frame_range), "code": code_digest(name),
                                                 **settings})

    @cached_property
    def info(self) -> VideoInfo:
        """Container facts of the video (size, fps, frames, rotation)."""
        from ..video import probe

        return probe(self.video)

    @cached_property
    def video_hash(self) -> str:
        """Content hash of the video, memoised in the cache by path, size and modification time."""
        from ..video import content_hash

        st = self.video.stat()
        key = stage_key(str(self.video.resolve()), "hash", {"size": st.st_size, "mtime_ns": st.st_mtime_ns})
        hit = self.cache.get(key)
        if hit is not None:
            return str(hit[1]["sha256"])
        digest = content_hash(self.video)
        self.cache.put(key, {}, {"sha256": digest})
        return digest

    def observations(self) -> Observations:
        """Perception output for the job's frames (cached stage `perception`)."""
        from ..perception import detect
        from ..perception.observations import Observations

        section = self.settings.section("perception")
        start, stop = self.frame_range
        frames, self._perception_frames = self._perception_frames, None
        try:
            obs = self._stage(
                "perception",
                self.settings.to_dict()["perception"],
                lambda: detect(
                    self.video,
                    start,
                    stop,
                    settings=section,
                    progress=lambda f, msg: self.progress("perception", f, msg),
                    check_cancelled=self.check_cancelled,
                    frames=frames,
                ),
                lambda obs: obs.to_arrays(),
                Observations.from_arrays,
                self.progress,
            )
        finally:
            if frames is not None:
                frames.close()
        self._consumed["perception"] = self._keys["perception"]
        return obs

    def camera(self) -> CameraSolve:
        """Camera intrinsics, motion and scene points for the job's frames (cached stage `camera`); waits for the
        background solve when `start_camera` began one, reporting its progress meanwhile."""
        if self._perception_frames is not None:  # the job waits for the camera first: it decodes for itself alone
            self._perception_frames.close()
            self._perception_frames = None
        if self._camera_job is None:
            value = self._camera(self.progress, self.check_cancelled)
        else:
            while True:
                try:
                    value = self._camera_job.result(timeout=0.1)
                    break
                except TimeoutError:
                    fraction, message = self._camera_progress
                    self.progress("camera", fraction, message)
            self.progress("camera", 1.0, self._camera_progress[1])
        self._consumed["camera"] = self._keys["camera"]
        return value

    def start_camera(self) -> None:
        """Start the camera stage in a background thread, so it runs while perception does: perception leaves
        part of the CPU idle and both stages spend their time in native code that releases the GIL. The thread
        runs at a lower priority, so on a busy CPU perception (which the job waits on first) keeps its pace. Its
        progress is noted and reported once `camera()` waits for it; `close()` stops it.

        When perception has to run as well, both stages take their frames from one decode (`FrameFanout`), so
        the job should call `observations()` next: until then perception's frames wait in memory (at most
        `fanout.DEFAULT_MAX_BYTES`; beyond that the camera waits too, until `observations()` or `camera()`)."""
        if self._camera_job is not None:
            return
        _ = self.video_hash  # computed once here, not by both threads
        frames = self._share_frames()
        future: Future[CameraSolve] = Future()

        def note(stage: str, fraction: float, message: str) -> None:
            self._camera_progress = (fraction, message)

        def check() -> None:
            if self._abandon.is_set():
                raise Cancelled("the job ended before its camera solve")
            self.check_cancelled()

        def run() -> None:
            _yield_to_critical_path()
            try:
                future.set_result(self._camera(note, check, frames))
            except BaseException as exc:  # handed to camera(), which re-raises it in the job's thread
                future.set_exception(exc)
            finally:
                if frames is not None:
                    frames.close()

        self._camera_job = future
        threading.Thread(target=run, name="vidrig-camera", daemon=True).start()

    def _share_frames(self) -> FrameStream | None:
        """When neither perception nor the camera is cached, start one decode for both and return the camera's
        frames (perception's are taken by `observations()`); None when either stage is cached."""
        from ..video import FrameFanout

        config = self.settings.to_dict()
        if self.cache.has(self._key("perception", config["perception"])) or self.cache.has(
            self._key("camera", config["camera"])
        ):
            return None
        start, stop = self.frame_range
        max_side = self.settings.section("camera").max_side
        self._shared_frames = FrameFanout(self.video, start, stop, {"perception": None, "camera": max_side})
        self._perception_frames = self._shared_frames.stream("perception")
        return self._shared_frames.stream("camera")

    def close(self) -> None:
        """Stop background work (a camera solve nobody waits for, a shared decode) and wait until it has stopped."""
        self._abandon.set()
        if self._shared_frames is not None:
            self._shared_frames.close()
        if self._camera_job is not None:
            self._camera_job.exception()  # waits; the outcome no longer matters

    def _camera(self, progress: Callable[[str, float, str], None], check: Callable[[], None],
                frames: FrameStream | None = None) -> CameraSolve:
        """The cached camera stage, reporting through `progress` and checking `check` inside its loops; `frames`
        are its frames when a shared decode gives them."""
        from ..camera.solve import solve_camera
        from ..camera.types import CameraSolve

        section = self.settings.section("camera")
        start, stop = self.frame_range
        return self._stage(
            "camera",
            self.settings.to_dict()["camera"],
            lambda: solve_camera(
                self.video,
                start,
                stop,
                settings=section,
                progress=lambda f, msg: progress("camera", f, msg),
                check_cancelled=check,
                frames=frames,
            ),
            lambda cam: cam.to_arrays(),
            CameraSolve.from_arrays,
            progress,
        )

    def body_model(self) -> BodyModel:
        """The job's body model (user SMPL-X files or the built-in default)."""
        from ..models.loader import load_body_model

        models_dir = Path(self.spec.models_dir) if self.spec.models_dir else None
        return load_body_model(self.spec.body_model, models_dir, self.spec.gender, self.device)

    def hand_model(self, side: str) -> HandModel:
        """A hand model for one side: MANO when the body is SMPL-X, else the default model's hand."""
        from ..models.loader import load_hand_model

        models_dir = Path(self.spec.models_dir) if self.spec.models_dir else None
        name = "mano" if self.spec.body_model == "smplx" else "default"
        return load_hand_model(name, side, models_dir, self.device)
