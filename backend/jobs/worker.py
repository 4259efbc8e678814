"""The worker process: runs jobs one at a time on one compute device and reports events over a pipe."""

from __future__ import annotations

import traceback
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path

from protocol.errors import Cancelled, VidrigError

from ..cache.stage_cache import StageCache
from ..methods.base import JobSpec
from ..pipeline import run_job
from .store import JobStore
from .warmup import warm_up


def describe_device(device: str) -> str:
    """A human-readable name for the compute device."""
    if device.startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return "cpu"


def pick_device(requested: str | None) -> str:
    """The requested device, or CUDA when present, else CPU."""
    if requested:
        return requested
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda:0" if torch.cuda.is_available() else "cpu"


def worker_main(
    conn: Connection, cancel: Event, cache_root: str, cache_max: int, jobs_root: str, device: str | None
) -> None:
    """Serve jobs sent as (job_id, spec dict) until None arrives; every outcome is sent back as a tuple."""
    device = pick_device(device)
    cache = StageCache(cache_root, cache_max)
    store = JobStore(jobs_root)
    warm_up(device)  # before "ready": jobs wait queued (cancellable at once) rather than inside the worker
    conn.send(("ready", describe_device(device)))
    while True:
        try:
            item = conn.recv()
        except EOFError:  # the server went away (killed): nothing left to work for
            return
        if item is None:
            return
        job_id, spec_dict = item
        spec = JobSpec(**spec_dict)

        def sink(stage: str, fraction: float, message: str, eta: float | None, job_id: str = job_id) -> None:
            conn.send(("progress", job_id, stage, fraction, message, eta))

        try:
            result, ctx = run_job(spec, cache, sink=sink, cancelled=cancel.is_set, device=device)
            path: Path = store.result_path(job_id)
            result.save_npz(path)
            conn.send(("done", job_id, ctx.cached_stages, result.meta.timings))
        except Cancelled:
            conn.send(("cancelled", job_id))
        except VidrigError as exc:
            conn.send(("failed", job_id, exc.code.value, exc.message, exc.details))
        except Exception as exc:
            conn.send(
                ("failed", job_id, "E_INTERNAL", f"{type(exc).__name__}: {exc}", {"traceback": traceback.format_exc()})
            )
