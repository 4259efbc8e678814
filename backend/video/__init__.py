"""Video input: probe a file, hash it for the stage cache, and stream its frames upright with true timestamps."""

from backend.video.decode import Frame, VideoInfo, content_hash, iter_frame_sizes, iter_frames, probe
from backend.video.fanout import FrameFanout, FrameStream

__all__ = [
    "Frame", "FrameFanout", "FrameStream", "VideoInfo", "content_hash", "iter_frame_sizes", "iter_frames", "probe",
]
