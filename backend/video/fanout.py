"""One decode of a video shared by consumers in other threads (a job's perception and camera stages).

Decoding and converting a 720p frame to RGB costs about 8 ms of CPU; two stages that each decode the clip pay it
twice. A `FrameFanout` decodes once in a background thread and hands each named consumer its own Frame (at its
own `max_side`, identical to what `iter_frames` gives it) through its own queue. Queues are bounded in bytes, so
a consumer that falls behind holds the decoder back instead of memory growing with the clip, and a consumer that
closes its stream no longer holds anyone back. With one consumer it is a decode-ahead thread (perception's own).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from backend.video.decode import Frame, iter_frame_sizes
from protocol.errors import Cancelled

DEFAULT_MAX_BYTES = 256 * 1024**2  # per consumer: about 90 frames of 720p RGB ahead of the slower stage
_END = object()


class _ByteQueue:
    """A FIFO holding at most `max_bytes` of frame pixels (always at least one item); closing it drops its items,
    wakes both sides and makes later puts no-ops."""

    def __init__(self, max_bytes: int):
        self._items: deque[object] = deque()
        self._bytes = 0
        self._max = max_bytes
        self._closed = False
        self._cv = threading.Condition()

    def put(self, item: object) -> bool:
        """Queue `item`, waiting while the queue is full; False once the queue is closed."""
        size = item.image.nbytes if isinstance(item, Frame) else 0
        with self._cv:
            while not self._closed and self._items and self._bytes + size > self._max:
                self._cv.wait()
            if self._closed:
                return False
            self._items.append(item)
            self._bytes += size
            self._cv.notify_all()
            return True

    def get(self) -> object:
        """The oldest item, waiting for one; raises Cancelled when the queue is closed meanwhile."""
        with self._cv:
            while not self._items and not self._closed:
                self._cv.wait()
            if self._closed:
                raise Cancelled("the shared video decode was closed before this stage had all its frames")
            item = self._items.popleft()
            self._bytes -= item.image.nbytes if isinstance(item, Frame) else 0
            self._cv.notify_all()
            return item

    def close(self) -> None:
        """Drop what is queued and release both sides."""
        with self._cv:
            self._closed = True
            self._items.clear()
            self._bytes = 0
            self._cv.notify_all()


class FrameStream:
    """One consumer's frames, in order: iterate it once; decode errors are raised where the frame would be. Close
    it when done (or on giving up) so the decoder stops waiting for this consumer."""

    def __init__(self, queue: _ByteQueue):
        self._queue = queue

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    def close(self) -> None:
        """Stop taking frames."""
        self._queue.close()


class FrameFanout:
    """Decodes frames [start, stop) of `path` once, in a background thread, for the consumers named in
    `max_sides` (name -> longest side of that consumer's frames, None for full size)."""

    def __init__(
        self,
        path: str | Path,
        start: int,
        stop: int | None,
        max_sides: dict[str, int | None],
        max_bytes: int = DEFAULT_MAX_BYTES,
    ):
        self._queues = {name: _ByteQueue(max_bytes) for name in max_sides}
        self._thread = threading.Thread(
            target=self._run, args=(Path(path), start, stop, list(max_sides.values())),
            name="vidrig-decode", daemon=True)
        self._thread.start()

    def stream(self, name: str) -> FrameStream:
        """The frames of consumer `name`."""
        return FrameStream(self._queues[name])

    def close(self) -> None:
        """Release every consumer and wait for the decoder to stop."""
        for queue in self._queues.values():
            queue.close()
        self._thread.join()

    def _run(self, path: Path, start: int, stop: int | None, max_sides: list[int | None]) -> None:
        """Decode and hand out every frame, then the end marker (or the error) to each consumer still taking."""
        queues = list(self._queues.values())
        try:
            for frames in iter_frame_sizes(path, start, stop, max_sides):
                taken = [queue.put(frame) for queue, frame in zip(queues, frames, strict=True)]
                if not any(taken):
                    return
            for queue in queues:
                queue.put(_END)
        except BaseException as exc:  # handed to each consumer, raised in its own thread
            for queue in queues:
                queue.put(exc)
