"""Job records and results on disk, so status and results outlive a backend restart."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from protocol.errors import ErrorCode, NotFound

from ..methods.base import JobSpec

ACTIVE = frozenset({"queued", "running"})
FINAL = frozenset({"done", "failed", "cancelled"})


@dataclass
class JobRecord:
    """The state of one job as clients see it."""

    id: str
    spec: JobSpec
    state: str = "queued"
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    stage: str = ""
    fraction: float = 0.0
    message: str = ""
    eta: float | None = None
    error: dict[str, Any] | None = None  # {code, message, details}
    cached_stages: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


class JobStore:
    """`<root>/<job id>/record.json` (+ `result.npz`, `pins.npz`), each written atomically."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def job_dir(self, job_id: str) -> Path:
        """The folder of one job (ids are hex; anything else is refused)."""
        if not job_id or not all(c in "0123456789abcdef" for c in job_id) or len(job_id) > 64:
            raise NotFound(f"no job {job_id!r}")
        return self.root / job_id

    def result_path(self, job_id: str) -> Path:
        """Where a job's result file lives."""
        return self.job_dir(job_id) / "result.npz"

    def save(self, record: JobRecord) -> None:
        """Write a record atomically."""
        folder = self.job_dir(record.id)
        folder.mkdir(exist_ok=True)
        tmp = folder / f".record.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(asdict(record)))
        os.replace(tmp, folder / "record.json")

    def load(self, job_id: str) -> JobRecord:
        """A record by id, or E_NOT_FOUND."""
        path = self.job_dir(job_id) / "record.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise NotFound(f"no job {job_id!r} on this backend") from exc
        data["spec"] = JobSpec(**data["spec"])
        return JobRecord(**data)

    def recover(self) -> list[JobRecord]:
        """After a restart: jobs that were queued or running are marked failed (resubmit reuses cached stages)."""
        recovered = []
        for path in self.root.glob("*/record.json"):
            try:
                record = self.load(path.parent.name)
            except NotFound:
                continue
            if record.state in ACTIVE:
                record.state = "failed"
                record.finished = time.time()
                record.message = (
                    "the backend stopped while this job was "
                    f"{'running' if record.started else 'queued'}; submit it again to resume from its cached stages"
                )
                record.error = {
                    "code": ErrorCode.INTERNAL.value,
                    "message": record.message,
                    "details": {"interrupted": True, "stage": record.stage},
                }
                self.save(record)
                recovered.append(record)
        return recovered
