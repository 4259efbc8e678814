"""One shared decode for several consumer threads: same frames as decoding alone, bounded memory, errors for all."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from backend.video import FrameFanout, iter_frame_sizes, iter_frames
from protocol.errors import Cancelled, DecodeError
from tests.unit.test_video import H, W, write_clip, write_cut_avi


def _consume(stream, out: list, errors: list) -> None:
    """Take every frame of `stream` into `out` (an error into `errors`), then close it."""
    try:
        out.extend(stream)
    except Exception as exc:
        errors.append(exc)
    finally:
        stream.close()


def test_each_consumer_gets_the_frames_decoding_alone_gives(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", n=12, rotation=90)
    fanout = FrameFanout(clip, 2, 10, {"full": None, "small": 40})
    got: dict[str, list] = {"full": [], "small": []}
    errors: list = []
    threads = [threading.Thread(target=_consume, args=(fanout.stream(n), got[n], errors)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    fanout.close()
    assert not errors
    for name, side in (("full", None), ("small", 40)):
        alone = list(iter_frames(clip, 2, 10, max_side=side))
        assert [f.index for f in got[name]] == [f.index for f in alone] == list(range(2, 10))
        assert [f.time for f in got[name]] == [f.time for f in alone]
        for a, b in zip(got[name], alone, strict=True):
            np.testing.assert_array_equal(a.image, b.image)
    assert got["full"][0].image.shape == (W, H, 3)  # turned upright
    assert max(got["small"][0].image.shape[:2]) == 40


def test_a_consumer_that_stops_no_longer_holds_the_other_back(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", n=30)
    frame_bytes = H * W * 3
    fanout = FrameFanout(clip, 0, None, {"quitter": None, "reader": None}, max_bytes=2 * frame_bytes)
    quitter, reader = fanout.stream("quitter"), fanout.stream("reader")
    first = next(iter(quitter))
    assert first.index == 0
    quitter.close()  # with two frames of room each, the decoder would wait forever on a consumer that stopped
    out: list = []
    errors: list = []
    t = threading.Thread(target=_consume, args=(reader, out, errors))
    t.start()
    t.join(30)
    assert not t.is_alive() and not errors
    assert [f.index for f in out] == list(range(30))
    fanout.close()


def test_decode_errors_reach_every_consumer_after_the_good_frames(tmp_path: Path) -> None:
    cut = write_cut_avi(tmp_path)
    good: list[int] = []
    with pytest.raises(DecodeError):
        good.extend(f.index for f in iter_frames(cut))
    assert len(good) > 10
    fanout = FrameFanout(cut, 0, None, {"a": None, "b": 32})
    for name in ("a", "b"):
        seen: list[int] = []
        with pytest.raises(DecodeError, match=r"cut\.avi"):
            seen.extend(f.index for f in fanout.stream(name))
        assert seen == good
    fanout.close()


def test_a_consumer_stopping_early_stops_the_decoder(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", n=60)
    fanout = FrameFanout(clip, 0, None, {"only": None}, max_bytes=2 * H * W * 3)
    stream = fanout.stream("only")
    assert next(iter(stream)).index == 0
    stream.close()
    fanout.close()  # returns once the decoding thread has ended
    assert not [t for t in threading.enumerate() if t.name == "vidrig-decode"]


def test_closing_the_fanout_releases_a_waiting_consumer(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", n=30)
    fanout = FrameFanout(clip, 0, None, {"idle": None, "waiting": None}, max_bytes=H * W * 3)
    waiting = iter(fanout.stream("waiting"))
    assert next(waiting).index == 0  # the idle consumer's queue is full: the decoder waits on it, this one runs dry
    errors: list = []
    t = threading.Thread(target=_consume, args=(waiting, [], errors))
    t.start()
    fanout.close()  # the job ended: the waiting consumer must not hang, nor take a short clip for the whole
    t.join(30)
    assert not t.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], Cancelled)


def test_several_sizes_from_one_conversion_match_single_sizes(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", n=5)
    for full, small in iter_frame_sizes(clip, 0, None, (None, 48)):
        np.testing.assert_array_equal(small.image, next(iter(iter_frames(clip, full.index, full.index + 1, 48))).image)
        assert full.image.shape == (H, W, 3) and small.image.shape == (32, 48, 3)


def test_consumers_asking_for_the_same_size_share_a_read_only_image(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", n=3)
    a, b = next(iter(iter_frame_sizes(clip, 0, None, (None, 10_000))))  # both full size: one array for both
    assert a.image is b.image and not a.image.flags.writeable
    (alone,) = next(iter(iter_frame_sizes(clip, 0, None, (None,))))
    assert alone.image.flags.writeable  # a consumer alone may still draw on its frames
