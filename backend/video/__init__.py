"""Video input: probe a file, hash it for the stage cache, and stream its frames upright with true timestamps."""

from backend.video.decode import Frame, VideoInfo, content_hash, iter_frames, probe

__all__ = ["Frame", "VideoInfo", "content_hash", "iter_frames", "probe"]
