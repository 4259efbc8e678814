"""The stage cache: atomic puts (a killed writer leaves nothing half written), LRU eviction, reopening."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from backend.cache.stage_cache import STALE_TMP_S, StageCache, stage_key
from tests.support.server import REPO

WRITER = """
import sys
import numpy as np
from backend.cache.stage_cache import StageCache
cache = StageCache(sys.argv[1], max_bytes=10**12)
k = 0
while True:
    k += 1
    cache.put("entry", {"data": np.full(4_000_000, k, np.int64)}, {"k": k})
    print(k, flush=True)
"""


def _check_consistent(cache: StageCache) -> int | None:
    """The entry is absent or whole: its array has every element equal to the `k` its info names."""
    hit = cache.get("entry")
    if hit is None:
        return None
    arrays, info = hit
    data = arrays["data"]
    assert data.shape == (4_000_000,) and (data == info["k"]).all()
    return int(info["k"])


@pytest.mark.slow
def test_killed_writer_never_leaves_a_half_written_entry(tmp_path: Path) -> None:
    """kill -9 a process in the middle of writing (first write, then replacing an entry): reads see all or nothing."""
    root = tmp_path / "cache"
    seen_entries = 0
    for round_no in range(4):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            before = set(root.glob(".tmp-*"))
            if round_no:  # later rounds: wait for at least one full replacement before killing
                assert proc.stdout is not None and proc.stdout.readline()
            deadline = time.monotonic() + 60
            while not set(root.glob(".tmp-*")) - before:  # a put of this writer is under way
                assert time.monotonic() < deadline, "the writer never started a put"
                assert proc.poll() is None
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
        cache = StageCache(root, max_bytes=10**12)
        k = _check_consistent(cache)
        seen_entries += k is not None
        assert cache.has("entry") == (k is not None)
    assert seen_entries >= 3, "rounds after the first must find a complete earlier entry"
    leftovers = list(root.glob(".tmp-*"))
    assert leftovers, "the killed writers' temporary folders should still be there (fresh ones are not removed)"
    old = time.time() - STALE_TMP_S - 10
    for p in leftovers:
        os.utime(p, (old, old))
    StageCache(root)
    assert not list(root.glob(".tmp-*")), "stale temporary folders are removed when the cache is opened"
    assert _check_consistent(StageCache(root)) is not None


def test_put_get_and_survives_reopening(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "mask": np.array([True, False])}
    cache.put("k1", arrays, {"stage": "camera", "seconds": 1.5})
    reopened = StageCache(tmp_path)
    got = reopened.get("k1")
    assert got is not None
    assert got[1] == {"stage": "camera", "seconds": 1.5}
    for name, value in arrays.items():
        assert got[0][name].dtype == value.dtype
        np.testing.assert_array_equal(got[0][name], value)
    assert reopened.has("k1") and not reopened.has("k2") and reopened.get("k2") is None


def test_replacing_an_entry(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    cache.put("k", {"x": np.zeros(3)}, {"v": 1})
    cache.put("k", {"x": np.ones(5)}, {"v": 2})
    got = cache.get("k")
    assert got is not None and got[1] == {"v": 2} and got[0]["x"].shape == (5,)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]


def test_unreadable_entry_reads_as_absent(tmp_path: Path) -> None:
    cache = StageCache(tmp_path)
    cache.put("k", {"x": np.zeros(3)})
    (tmp_path / "k" / "data.npz").write_bytes(b"truncated")
    assert cache.get("k") is None


def test_lru_eviction_under_a_size_cap(tmp_path: Path) -> None:
    """Entries of ~80 kB under a 300 kB cap: the least recently *used* (not written) goes first."""
    cache = StageCache(tmp_path, max_bytes=10**9)
    blob = {"x": np.zeros(10_000, np.float64)}
    for i, key in enumerate(("a", "b", "c")):
        cache.put(key, blob)
        t = 1_000_000 + i * 100  # explicit, well separated write times (file systems have coarse clocks)
        os.utime(tmp_path / key, (t, t))
    entry_size = cache.size_bytes() // 3
    assert cache.get("a") is not None  # touching "a" makes "b" the least recently used
    cache.max_bytes = 3 * entry_size + entry_size // 2
    cache.put("d", blob)
    assert not cache.has("b")
    assert all(cache.has(k) for k in ("a", "c", "d"))
    assert cache.size_bytes() <= cache.max_bytes
    later = time.time() + 1000
    os.utime(tmp_path / "d", (later, later))  # "d" strictly newest even on a coarse file-system clock
    cache.max_bytes = entry_size + entry_size // 2
    assert sorted(cache.evict()) == ["a", "c"]
    assert cache.has("d") and cache.size_bytes() <= cache.max_bytes


def test_stage_key_depends_on_video_stage_and_settings() -> None:
    base = stage_key("h", "camera", {"fov": 55.0, "max_side": 640})
    assert base == stage_key("h", "camera", {"max_side": 640, "fov": 55.0})
    assert base.startswith("camera-")
    others = {
        stage_key("h2", "camera", {"fov": 55.0, "max_side": 640}),
        stage_key("h", "perception", {"fov": 55.0, "max_side": 640}),
        stage_key("h", "camera", {"fov": 56.0, "max_side": 640}),
    }
    assert base not in others and len(others) == 3


def test_code_digest_follows_the_stage_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from backend.cache import stage_cache

    for folder in ("perception", "video", "camera"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.py").write_text(f"X = '{folder}'\n")
    monkeypatch.setattr(stage_cache, "BACKEND", tmp_path)

    def digests() -> dict[str, str]:
        stage_cache.code_digest.cache_clear()
        return {s: stage_cache.code_digest(s) for s in ("perception", "camera", "fit")}

    try:
        before = digests()
        (tmp_path / "camera" / "a.py").write_text("X = 'changed'\n")
        after = digests()
        assert after["perception"] == before["perception"]  # not its code
        assert after["camera"] != before["camera"] and after["fit"] != before["fit"]  # methods depend on it all
        (tmp_path / "video" / "b.py").write_text("")
        assert digests()["perception"] != after["perception"]  # a new file counts too
    finally:
        stage_cache.code_digest.cache_clear()
