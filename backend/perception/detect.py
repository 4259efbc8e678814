"""The perception stage: stream a video, track one person with mediapipe, return masked Observations."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backend.perception.hand_tracker import PalmDetector
from backend.perception.landmarks import BodyDet, HandDet, assign_hands, dedupe_hands, subject_box
from backend.perception.observations import Observations
from backend.perception.runners import BodyRunner, HandsRunner, PoseSearcher, arm_points
from backend.perception.settings import PerceptionSettings
from backend.perception.views import SubjectTracker, View, full_view, search_tiles, tiles_nearest_first
from backend.video import Frame, FrameFanout, probe
from protocol.errors import BadRequest, NoPerson

# Seconds between progress reports (the protocol promises at least two a second).
_PROGRESS_INTERVAL = 0.25
# Tiles of the zoomed search tried per frame while the subject is lost.
_TILES_PER_FRAME = 2
# Frames decoded ahead by a background thread while mediapipe works on the current one.
_PREFETCH = 4
# Frames whose hands are still being looked for while the body model moves on (at most HANDS_SLOTS).
_HANDS_BEHIND = 1


class _Buffer:
    """Growable per-frame arrays, filled in order and trimmed into Observations at the end."""

    def __init__(self, capacity: int, fps: float, width: int, height: int):
        self.obs = Observations.empty(max(capacity, 1), fps, width, height)
        self.n = 0

    def next_row(self) -> int:
        """Index of a fresh all-missing row, growing the arrays when full."""
        if self.n == len(self.obs):
            extra = Observations.empty(len(self.obs), self.obs.fps, self.obs.width, self.obs.height)
            mine, more = self.obs.to_arrays(), extra.to_arrays()
            grown = {k: (np.concatenate([v, more[k]]) if v.ndim else v) for k, v in mine.items()}
            self.obs = Observations.from_arrays(grown)
        self.n += 1
        return self.n - 1

    def result(self) -> Observations:
        """The filled rows."""
        arrays = {k: (v[: self.n] if v.ndim else v) for k, v in self.obs.to_arrays().items()}
        return Observations.from_arrays(arrays)


def _store(obs: Observations, row: int, body: BodyDet | None, hands: list[HandDet | None], box) -> None:
    """Write one frame's detections into row `row`."""
    if body is not None:
        obs.body_kp2d[row] = body.kp2d
        obs.body_kp3d[row] = body.kp3d
        obs.body_valid[row] = True
    for side, hand in enumerate(hands):
        if hand is None:
            continue
        obs.hand_kp2d[row, side, :, :2] = hand.kp2d[:, :2]
        obs.hand_kp2d[row, side, :, 2] = np.clip(hand.score, 1e-3, 1.0)
        obs.hand_kp3d[row, side] = hand.world_points()
        obs.hand_valid[row, side] = True
    if box is not None:
        obs.bbox[row] = box


@dataclass
class _Begun:
    """A frame whose body is found and whose hands are being looked for."""

    index: int
    time: float
    body: BodyDet | None


class _Pipeline:
    """Per-frame logic: choose the window, find the body (searching when lost), hand the window and the arms to
    the hand tracker, then merge the hands and track the subject once the hands are back."""

    def __init__(self, settings: PerceptionSettings, width: int, height: int, fps: float):
        self.s = settings
        self.width, self.height = width, height
        self.tracker = SubjectTracker(width, height, fps, settings.crop_scale, settings.crop_search)
        self.tiles = search_tiles(width, height, settings.search_zooms) if settings.crop_search else []
        self.search_queue: list[View] = []  # tiles still to try in this search, nearest the last box first
        self.body = BodyRunner(settings)
        self.searcher: PoseSearcher | None = None
        self.hands = HandsRunner(settings) if settings.hands_detector else None
        self.palms = PalmDetector(settings.min_detection_confidence) if settings.hands_detector else None
        self.had_hands = False  # whether the last finished frame had a hand
        self.both_found = False  # whether the hand tracker found two hands in the last finished frame
        self.since_palms = 0  # frames since the palm detector last ran

    def close(self) -> None:
        """Release every mediapipe graph and the hands process."""
        self.body.close()
        if self.palms is not None:
            self.palms.close()
        if self.searcher is not None:
            self.searcher.close()
        if self.hands is not None:
            self.hands.close()

    def _body_ok(self, body: BodyDet | None) -> BodyDet | None:
        """The body if its torso is visible enough to trust, else None."""
        if body is None or body.torso_visibility() < self.s.min_body_visibility:
            return None
        return body

    def _search(self, frame: np.ndarray) -> np.ndarray | None:
        """Look for the subject in the next few zoomed tiles; the accepted box or None."""
        if self.searcher is None:
            self.searcher = PoseSearcher(self.s)
        if not self.search_queue:
            self.search_queue = tiles_nearest_first(self.tiles, self.tracker.box)
        for _ in range(min(_TILES_PER_FRAME, len(self.search_queue))):
            tile = self.search_queue.pop(0)
            body = self._body_ok(self.searcher.process(tile.cut(frame, self.s.max_side), tile))
            if body is None:
                continue
            box = subject_box(body, [], self.width, self.height)
            if box is not None and self.tracker.accepts(box):
                return box
        return None

    def begin(self, frame: Frame) -> _Begun:
        """Find the body in one full-resolution RGB frame and start the hand tracker on the same window.

        The window follows the subject as known from the frames finished so far (one or two behind: the window
        is twice the subject's size), so the tracker works on this frame while the body model is on the next.
        """
        image = frame.image
        view = self.tracker.next_view()
        body = self._body_ok(self.body.process(view.cut(image, self.s.max_side), view))
        if body is None and self.tiles and not self.tracker.tracking:
            if not view.is_full(self.width, self.height):
                view = full_view(self.width, self.height)
                body = self._body_ok(self.body.process(view.cut(image, self.s.max_side), view))
            if body is None and not self.had_hands:
                found = self._search(image)
                if found is not None:
                    view = self.tracker.adopt(found)
                    body = self._body_ok(self.body.process(view.cut(image, self.s.max_side), view))
        if self.hands is not None and self.palms is not None:
            cut = view.cut(image, self.s.hands_max_side)
            # palms while hands are missing: on every frame without a body, on every few with one (its arms
            # lead to its hands on every frame)
            wanted = not self.both_found and (body is None or self.since_palms + 1 >= self.s.palm_interval)
            palms = self.palms(cut) if wanted else None
            self.since_palms = 0 if wanted else self.since_palms + 1
            reach = self.s.hand_merge_radius * body.scale() if body is not None else 0.0
            outsized = self.s.outsized_hand * body.torso_size() if body is not None else math.inf
            self.hands.submit(cut, view, arm_points(body, view), reach, palms, outsized)
        return _Begun(frame.index, frame.time, body)

    def finish(self, begun: _Begun) -> tuple[BodyDet | None, list[HandDet | None], np.ndarray | None]:
        """The oldest begun frame's body, hands per side and subject box, with the subject's track updated."""
        body = begun.body
        detections: list[HandDet] = self.hands.collect() if self.hands is not None else []
        self.both_found = len(detections) == 2
        # a hand too big for this body shows that the body was made out of a hand (see `outsized_hand`); the
        # subject's last box came from such bodies too, so the hands are not held to it
        refuted = body is not None and any(h.size() > self.s.outsized_hand * body.torso_size() for h in detections)
        if refuted:
            body = None
        hands = assign_hands(dedupe_hands(detections), body, self.s.hand_merge_radius)
        if body is None and self.tracker.box is not None and not refuted:
            hands = [h if h is not None and _near(h, self.tracker.box) else None for h in hands]
        box = subject_box(body, [h for h in hands if h is not None], self.width, self.height)
        if box is not None and not refuted and not self.tracker.accepts(box):
            # too far from where the subject just was: someone else, so the subject is missing this frame
            body, hands, box = None, [None, None], None
        if box is not None:
            self.search_queue = []
        self.tracker.update(box, from_body=body is not None)
        self.had_hands = any(h is not None for h in hands)
        return body, hands, box


def _near(hand: HandDet, box: np.ndarray) -> bool:
    """Whether a hand lies within the last subject box grown by half its size on each side."""
    w, h = box[2] - box[0], box[3] - box[1]
    x, y = hand.wrist
    return bool(box[0] - w / 2 <= x <= box[2] + w / 2 and box[1] - h / 2 <= y <= box[3] + h / 2)


def _empty_range(video: str | Path, n_frames: int, start: int, stop: int | None) -> BadRequest:
    """The error for a frame range that holds no frame of the video."""
    return BadRequest(
        f"No frames to look at: {Path(video).name} has {n_frames} frames, asked for {start} to {stop}.",
        details={"path": str(video), "start": start, "stop": stop, "n_frames": n_frames},
    )


def detect(
    video: str | Path,
    start: int = 0,
    stop: int | None = None,
    *,
    settings: PerceptionSettings | None = None,
    progress: Callable[[float, str], None] | None = None,
    check_cancelled: Callable[[], None] | None = None,
    frames: Iterable[Frame] | None = None,
) -> Observations:
    """Track the main person through frames [start, stop) of `video` and return their keypoints.

    `frames`: those frames at full size when another thread already decodes them (`FrameFanout`); else this
    decodes them itself, a few frames ahead in a background thread.

    Raises protocol.errors.DecodeError for unreadable video, BadRequest for an empty frame range and
    NoPerson when no body or hand is found.
    """
    settings = settings or PerceptionSettings()
    info = probe(video)
    end = info.n_frames if stop is None else min(stop, info.n_frames)
    if end <= start:
        raise _empty_range(video, info.n_frames, start, stop)
    total = end - start
    buf = _Buffer(total, info.fps, info.width, info.height)
    if progress is not None:
        progress(0.0, "Loading the person detectors")
    pipeline = _Pipeline(settings, info.width, info.height, info.fps)
    last_report = 0.0

    def finish(begun: _Begun) -> None:
        """Finish the oldest begun frame, store it and report progress now and then."""
        nonlocal last_report
        body, hands, box = pipeline.finish(begun)
        row = buf.next_row()
        buf.obs.frame_indices[row] = begun.index
        buf.obs.times[row] = begun.time
        _store(buf.obs, row, body, hands, box)
        now = time.monotonic()
        if progress is not None and now - last_report >= _PROGRESS_INTERVAL:
            last_report = now
            done = begun.index - start + 1
            progress(min(done / total, 1.0), f"Finding the person: frame {done} of {total}")

    own = None  # this call's own decode, a few frames ahead in a background thread
    if frames is None:
        own = FrameFanout(video, start, stop, {"perception": None}, max_bytes=_PREFETCH * info.width * info.height * 3)
        frames = own.stream("perception")
    try:
        begun: deque[_Begun] = deque()  # bodies found, hands still being looked for
        for frame in frames:
            if check_cancelled is not None:
                check_cancelled()
            begun.append(pipeline.begin(frame))
            if len(begun) > _HANDS_BEHIND:
                finish(begun.popleft())
        while begun:
            finish(begun.popleft())
    finally:
        if own is not None:
            own.close()
        pipeline.close()
    obs = buf.result()
    if len(obs) == 0:
        raise _empty_range(video, info.n_frames, start, stop)
    if progress is not None:
        progress(1.0, f"Found the person in {int(obs.body_valid.sum())} of {len(obs)} frames")
    if not (obs.body_valid.any() or obs.hand_valid.any()):
        raise NoPerson(
            f"No person was found in {Path(video).name} (frames {start} to {start + len(obs) - 1}).",
            details={"path": str(video), "frames": len(obs)},
        )
    return obs

