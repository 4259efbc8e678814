"""Tests for backend.video on small clips written with PyAV: timing, ranges, rotation, VFR and bad files."""

from __future__ import annotations

import hashlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from backend.video import Frame, content_hash, iter_frames, probe
from protocol.errors import DecodeError

W, H = 96, 64


def _pattern(i: int) -> np.ndarray:
    """A frame whose left third is white, with a grey level that encodes the frame number on the rest."""
    img = np.zeros((H, W, 3), np.uint8)
    img[:, : W // 3] = 255
    img[:, W // 3 :, 1] = 8 * i
    return img


def write_clip(
    path: Path,
    n: int = 12,
    fps: int = 25,
    codec: str = "libx264",
    rotation: int | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
) -> Path:
    """Write `n` pattern frames; optional display rotation (counter-clockwise) and explicit timestamps."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        if codec == "libx264":
            s.options = {"crf": "10"}
        if time_base is not None:
            s.time_base = time_base
            s.codec_context.time_base = time_base
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i in range(n):
            f = av.VideoFrame.from_ndarray(_pattern(i), format="rgb24")
            if pts is not None:
                f.pts = pts[i]
                f.time_base = time_base
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "clip.mp4")


def test_probe_reads_size_rate_length(clip: Path) -> None:
    info = probe(clip)
    assert (info.width, info.height) == (W, H)
    assert info.fps == pytest.approx(25.0)
    assert info.n_frames == 12
    assert info.duration == pytest.approx(12 / 25, abs=0.05)
    assert info.rotation == 0
    assert info.codec == "h264"
    assert not info.variable_frame_rate
    assert info.path == clip


def test_content_hash_is_sha256_of_bytes(clip: Path) -> None:
    assert content_hash(clip) == hashlib.sha256(clip.read_bytes()).hexdigest()


def test_iter_frames_all_in_order_with_times(clip: Path) -> None:
    frames = list(iter_frames(clip))
    assert [f.index for f in frames] == list(range(12))
    assert all(isinstance(f, Frame) for f in frames)
    np.testing.assert_allclose([f.time for f in frames], np.arange(12) / 25, atol=1e-6)
    for f in frames:
        assert f.image.dtype == np.uint8 and f.image.shape == (H, W, 3)
        assert f.image.flags.c_contiguous
        # content survives: white left third, green channel encodes the frame number
        assert f.image[:, : W // 3 - 4].mean() > 240
        assert abs(float(f.image[:, W // 3 + 4 :, 1].mean()) - 8 * f.index) < 6


def test_iter_frames_range_matches_full_decode(clip: Path) -> None:
    full = list(iter_frames(clip))
    part = list(iter_frames(clip, start=3, stop=7))
    assert [f.index for f in part] == [3, 4, 5, 6]
    for f in part:
        np.testing.assert_array_equal(f.image, full[f.index].image)
        assert f.time == full[f.index].time
    assert list(iter_frames(clip, start=5, stop=5)) == []
    assert [f.index for f in iter_frames(clip, start=10, stop=100)] == [10, 11]


def test_iter_frames_downscale(clip: Path) -> None:
    frames = list(iter_frames(clip, max_side=48))
    assert all(max(f.image.shape[:2]) <= 48 for f in frames)
    assert frames[0].image.shape == (32, 48, 3)
    # no upscaling when already small enough
    assert next(iter_frames(clip, max_side=1000)).image.shape == (H, W, 3)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_metadata_applied(tmp_path: Path, rotation: int) -> None:
    path = write_clip(tmp_path / f"rot{rotation}.mp4", n=3, rotation=rotation)
    plain = write_clip(tmp_path / "plain.mp4", n=3)
    info = probe(path)
    assert info.rotation == rotation
    expect_wh = (H, W) if rotation in (90, 270) else (W, H)
    assert (info.width, info.height) == expect_wh
    upright = [f.image for f in iter_frames(path)]
    raw = [f.image for f in iter_frames(plain)]
    for up, r in zip(upright, raw, strict=True):
        assert up.shape == (info.height, info.width, 3)
        np.testing.assert_array_equal(up, np.rot90(r, k=rotation // 90))
    # OpenCV's own auto-orientation (an independent reader of the same metadata) agrees
    cap = cv2.VideoCapture(str(path))
    # OpenCV reports the clockwise "rotate" tag a phone writes: our counter-clockwise angle's complement
    assert cap.get(cv2.CAP_PROP_ORIENTATION_META) == (360 - rotation) % 360
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
    ok, bgr = cap.read()
    cap.release()
    assert ok
    assert bgr.shape == upright[0].shape
    assert np.abs(bgr[..., ::-1].astype(int) - upright[0].astype(int)).mean() < 3


def test_rotation_90_puts_left_edge_at_bottom(tmp_path: Path) -> None:
    """A counter-clockwise quarter turn moves the white left third of the coded frame to the bottom."""
    img = next(iter_frames(write_clip(tmp_path / "r.mp4", n=1, rotation=90))).image
    assert img.shape == (W, H, 3)
    assert img[-W // 3 + 4 :].mean() > 240
    assert img[: W // 2, :, 0].mean() < 20


def test_rotation_with_downscale(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "r.mp4", n=2, rotation=270)
    img = next(iter_frames(path, max_side=48)).image
    assert img.shape == (48, 32, 3)


def test_variable_frame_rate_times_from_pts(tmp_path: Path) -> None:
    tb = Fraction(1, 1000)
    pts = [0, 40, 70, 150, 160, 300, 333, 400, 520, 530]
    path = write_clip(tmp_path / "vfr.mp4", n=len(pts), pts=pts, time_base=tb)
    info = probe(path)
    assert info.variable_frame_rate
    assert info.n_frames == len(pts)
    frames = list(iter_frames(path))
    np.testing.assert_allclose([f.time for f in frames], np.array(pts) / 1000, atol=1e-6)
    for f in frames:
        assert abs(float(f.image[:, W // 3 + 4 :, 1].mean()) - 8 * f.index) < 6


def test_avi_with_b_frames_times_start_at_zero(tmp_path: Path) -> None:
    """MPEG-4 part 2 with B-frames in AVI stamps the first frame 1, not 0: times are measured from it."""
    path = tmp_path / "b.avi"
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=20)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.codec_context.max_b_frames = 2
        s.codec_context.gop_size = 6
        for i in range(20):
            for p in s.encode(av.VideoFrame.from_ndarray(_pattern(i), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    frames = list(iter_frames(path))
    assert [f.index for f in frames] == list(range(20))
    np.testing.assert_allclose([f.time for f in frames], np.arange(20) / 20, atol=1e-6)
    for f in frames:
        assert abs(float(f.image[:, W // 3 + 4 :, 1].mean()) - 8 * f.index) < 8


def _assert_decode_error(path: Path, reason: str) -> None:
    for call in (lambda: probe(path), lambda: list(iter_frames(path))):
        with pytest.raises(DecodeError) as exc:
            call()
        assert str(path) in exc.value.message
        assert exc.value.details["reason"] == reason


def test_missing_file(tmp_path: Path) -> None:
    _assert_decode_error(tmp_path / "nope.mp4", "missing")
    with pytest.raises(DecodeError):
        content_hash(tmp_path / "nope.mp4")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    _assert_decode_error(path, "empty")


def test_directory_is_not_a_video(tmp_path: Path) -> None:
    _assert_decode_error(tmp_path, "not a file")


def test_text_and_random_bytes_are_not_videos(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    _assert_decode_error(text, "not a video")
    noise = tmp_path / "noise.mkv"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    _assert_decode_error(noise, "not a video")


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        samples = (np.sin(np.arange(8000) / 5) * 1000).astype(np.int16)[None]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    _assert_decode_error(path, "no video stream")


def test_truncated_mp4_is_an_error(tmp_path: Path, clip: Path) -> None:
    data = clip.read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match=r"half\.mp4"):
        list(iter_frames(path))


def write_cut_avi(tmp_path: Path) -> Path:
    """An AVI of 60 noise frames cut in half: its first frames decode, then it ends short of its frame count."""
    full = tmp_path / "full.avi"
    with av.open(str(full), "w") as c:
        s = c.add_stream("mpeg4", rate=25)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        rng = np.random.default_rng(1)
        for _ in range(60):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = full.read_bytes()
    path = tmp_path / "cut.avi"
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_avi_is_an_error(tmp_path: Path) -> None:
    path = write_cut_avi(tmp_path)
    with pytest.raises(DecodeError) as exc:
        list(iter_frames(path))
    assert exc.value.details["reason"] == "truncated"
    assert "cut.avi" in exc.value.message
    # asking only for frames that are present is fine
    assert len(list(iter_frames(path, stop=5))) == 5


def test_bad_arguments(clip: Path) -> None:
    with pytest.raises(ValueError):
        list(iter_frames(clip, start=-1))
