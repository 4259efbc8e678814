"""On-disk cache of stage outputs keyed by video content and stage settings, with atomic writes and LRU eviction."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MAX_BYTES = 20 * 1024**3
STALE_TMP_S = 3600.0  # unfinished writes older than this are removed when a cache is opened
_DATA = "data.npz"
_INFO = "info.json"


BACKEND = Path(__file__).resolve().parents[1]
# The packages whose code decides each stage's output; any other stage (a method's solve) depends on all of
# `backend`. Editing one of them changes its digest, so an upgrade never reuses a stale result.
STAGE_CODE: dict[str, tuple[str, ...]] = {"perception": ("perception", "video"), "camera": ("camera", "video")}


@functools.cache
def code_digest(stage: str) -> str:
    """SHA-256 of the Python sources `stage` depends on (STAGE_CODE, else all of backend/), read once."""
    roots = [BACKEND / name for name in STAGE_CODE.get(stage, ("",))]
    digest = hashlib.sha256()
    for path in sorted(p for root in roots for p in root.rglob("*.py")):
        digest.update(str(path.relative_to(BACKEND)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def stage_key(video_hash: str, stage: str, settings: dict[str, Any]) -> str:
    """A stable key for one stage of one video under given settings."""
    blob = json.dumps({"video": video_hash, "stage": stage, "settings": settings}, sort_keys=True, default=str)
    return f"{stage}-{hashlib.sha256(blob.encode()).hexdigest()[:40]}"


class StageCache:
    """Entries are folders `<root>/<key>/` with `data.npz` + `info.json`; a folder appears only when complete."""

    def __init__(self, root: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        for stale in self.root.glob(".tmp-*"):
            # Left by a writer that died; a fresh one may belong to another live process sharing this cache.
            with contextlib.suppress(FileNotFoundError):
                if time.time() - stale.stat().st_mtime > STALE_TMP_S:
                    shutil.rmtree(stale, ignore_errors=True)

    def get(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """The cached (arrays, info) for `key`, marking it recently used; None when absent or unreadable."""
        entry = self.root / key
        try:
            info = json.loads((entry / _INFO).read_text())
            with np.load(entry / _DATA, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            os.utime(entry)
        except (OSError, ValueError):
            return None
        return arrays, info

    def has(self, key: str) -> bool:
        """Whether a complete entry exists."""
        return (self.root / key / _INFO).is_file()

    def put(self, key: str, arrays: dict[str, np.ndarray], info: dict[str, Any] | None = None) -> None:
        """Store atomically: write into a temporary directory, then rename it into place; evict to the size cap."""
        tmp = self.root / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            np.savez(tmp / _DATA, **arrays)
            (tmp / _INFO).write_text(json.dumps(info or {}, default=str))
            for f in tmp.iterdir():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            with self._lock:
                target = self.root / key
                # Move an old entry aside in one rename so no reader ever sees it half deleted.
                old = self.root / f".tmp-{uuid.uuid4().hex}"
                with contextlib.suppress(FileNotFoundError):
                    os.rename(target, old)
                try:
                    os.rename(tmp, target)
                except OSError:
                    if not self.has(key):  # only another process finishing the same entry first is fine
                        raise
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        self.evict()

    def evict(self) -> list[str]:
        """Drop least-recently-used entries until the cache fits `max_bytes`; returns the evicted keys."""
        with self._lock:
            entries = []
            for entry in self.root.iterdir():
                if entry.name.startswith(".tmp-") or not entry.is_dir():
                    continue
                try:
                    size = sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
                    entries.append((entry.stat().st_mtime, size, entry))
                except FileNotFoundError:  # removed meanwhile by another process sharing the cache
                    continue
            total = sum(size for _, size, _ in entries)
            evicted = []
            for _, size, entry in sorted(entries, key=lambda e: e[0]):
                if total <= self.max_bytes:
                    break
                shutil.rmtree(entry, ignore_errors=True)
                total -= size
                evicted.append(entry.name)
            return evicted

    def size_bytes(self) -> int:
        """Bytes held by complete entries."""
        return sum(f.stat().st_size for f in self.root.glob("*/*") if f.is_file() and not f.parent.name.startswith("."))
