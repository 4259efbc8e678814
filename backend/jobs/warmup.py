"""What a worker's first job would otherwise wait for, done once as the worker starts: the hand-tracker process
(it loads mediapipe in parallel), the optimiser's first step (torch imports most of its compiler stack on it) and
mediapipe's import. Here they cost a first job about 4 s more than the next one (`benchmarks.bench_first_job`)."""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable

log = logging.getLogger("vidrig.worker")


def _start_hands_worker() -> None:
    """Start the hand-tracker process a default job takes over, and leave it waiting for that job."""
    from ..perception.hands_worker import give_back, take_worker
    from ..perception.settings import PerceptionSettings

    settings = PerceptionSettings()
    if settings.hands_process:
        give_back(take_worker(settings.hands_max_side, settings.min_tracking_confidence))


def _first_optimiser_step(device: str) -> None:
    """One step of the solve's own optimiser on a one-number problem on `device`."""
    import torch

    from ..fitting.optim import optimise

    x = torch.zeros(1, device=device)
    optimise([x], lambda: (x.square().sum(), {}), 1)


def warm_up(device: str) -> dict[str, float]:
    """Run every piece and return the seconds each took. A piece that fails is logged and skipped: the job that
    needs it meets the same failure and reports it with its own error."""
    pieces: dict[str, Callable[[], object]] = {
        "hands worker": _start_hands_worker,
        "optimiser": lambda: _first_optimiser_step(device),
        "mediapipe": lambda: importlib.import_module("mediapipe"),
    }
    seconds: dict[str, float] = {}
    for name, piece in pieces.items():
        start = time.perf_counter()
        try:
            piece()
        except Exception as exc:  # any failure here is the job's to report, not the worker's
            log.warning("warm-up of the %s failed: %s", name, exc)
            continue
        seconds[name] = time.perf_counter() - start
    log.info("warmed up for the first job: %s", ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()))
    return seconds
