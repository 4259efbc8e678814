"""One job from spec to Result: resolve settings, run the method in a JobContext, stamp provenance."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from protocol.errors import BadRequest, NotFound, TooLarge
from protocol.result import Result

from .cache.stage_cache import StageCache
from .methods import registry
from .methods.base import JobContext, JobSpec, ProgressSink
from .presets import get_preset
from .settings import JobSettings, resolve

DEFAULT_MAX_VIDEO_BYTES = 8 * 1024**3


def check_video_path(
    video: str, *, allowed_roots: list[Path] | None = None, max_bytes: int = DEFAULT_MAX_VIDEO_BYTES
) -> Path:
    """Reject a video path before any work: must exist, be a readable regular file, under the size cap and roots."""
    path = Path(video).expanduser()
    if not path.is_absolute():
        raise BadRequest(f"video path must be absolute on the backend machine: {video!r}")
    path = path.resolve()
    if allowed_roots and not any(path.is_relative_to(root.resolve()) for root in allowed_roots):
        raise BadRequest(f"video {path} is outside the allowed folders {[str(r) for r in allowed_roots]}")
    if not path.exists():
        raise NotFound(f"video file not found: {path}")
    if not path.is_file():
        raise BadRequest(f"video path is not a regular file: {path}")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise BadRequest(f"video file is not readable: {path} ({exc.strerror})") from exc
    size = path.stat().st_size
    if size == 0:
        raise BadRequest(f"video file is empty: {path}")
    if size > max_bytes:
        raise TooLarge(f"video file {path} is {size} bytes, over the limit of {max_bytes}")
    return path


def make_spec(
    video: str,
    *,
    preset: str | None = None,
    method: str | None = None,
    overrides: dict[str, Any] | None = None,
    frames: list[int] | None = None,
    body_model: str | None = None,
    models_dir: str | None = None,
) -> JobSpec:
    """Resolve a request (preset and/or method, overrides) into a validated JobSpec."""
    preset_settings: dict[str, Any] = {}
    if preset is not None:
        p = get_preset(preset)
        if method is not None and method != p.method:
            raise BadRequest(f"preset {preset!r} uses method {p.method!r}, not {method!r}")
        method = p.method
        preset_settings = p.settings
    if method is None:
        raise BadRequest("a job needs a preset or a method")
    entry = registry.get(method)
    settings = resolve(entry.settings_type(), preset_settings, overrides or {})
    return JobSpec(
        video=video,
        method=method,
        settings=settings.to_dict(),
        preset=preset,
        frames=frames,
        body_model=body_model or "default",
        models_dir=models_dir,
    )


def job_settings(spec: JobSpec) -> JobSettings:
    """The typed settings of a spec (re-validated: specs are read back from disk after restarts)."""
    return resolve(registry.get(spec.method).settings_type(), spec.settings, {})


def run_job(
    spec: JobSpec,
    cache: StageCache,
    *,
    sink: ProgressSink | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    device: str = "cpu",
) -> tuple[Result, JobContext]:
    """Run a job to its Result, recording per-stage timings and which stages came from the cache."""
    t0 = time.perf_counter()
    entry = registry.get(spec.method)
    settings = job_settings(spec)
    ctx = JobContext(spec, settings, cache, sink=sink, cancelled=cancelled, device=device)
    try:
        ctx.check_cancelled()
        result = entry.create().run(ctx, settings.section("method"))
    finally:
        ctx.close()
    result.meta.method = spec.method
    result.meta.preset = spec.preset
    result.meta.settings = spec.settings
    result.meta.width, result.meta.height = ctx.info.width, ctx.info.height
    result.meta.timings = {**ctx.timings, **result.meta.timings, "total": time.perf_counter() - t0}
    return result, ctx
