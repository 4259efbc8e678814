"""`vidrig bench` end to end on one short smoke clip (30 frames: enough for three frames in a row with each hand,
which the hand acceleration error needs): a real process runs `fit` (preview-fast) and mediapipe, prints
the table and writes a complete, finite JSON record; a second run is served from the shared stage cache."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.eval.bench import BASELINE, TRUTH_COLUMNS

WORLD_KEYS = ("w_mpjpe", "wa_mpjpe", "rte", "foot_sliding", "up_err")  # mediapipe has no world
ROOT = Path(__file__).resolve().parents[2]


def _bench(tmp_path: Path, out: Path) -> str:
    """Run the bench command line in a fresh process and return what it printed."""
    cmd = [sys.executable, "-m", "backend.cli", "bench", "--suite", "smoke", "--preset", "preview-fast",
           "--clips", "walk_static", "--frames", "0:30", "--cache", str(tmp_path / "state"), "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _table_rows(stdout: str) -> dict[str, list[str]]:
    """The printed table's cells by row name."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("row "))
    assert lines[header].split()[1:] == [c.header for c in TRUTH_COLUMNS]
    rows = {}
    for line in lines[header + 2:header + 4]:
        for name in (BASELINE, "preview-fast"):
            if line.startswith(name):
                rows[name] = line[len(name):].split()
    return rows


@pytest.mark.slow
def test_bench_smoke_clip_table_and_json(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    rows = _table_rows(_bench(tmp_path, out))
    assert set(rows) == {BASELINE, "preview-fast"}
    keys = [c.key for c in TRUTH_COLUMNS]
    for name, cells in rows.items():
        assert len(cells) == len(TRUTH_COLUMNS)
        for key, cell in zip(keys, cells, strict=True):
            if name == BASELINE and key in WORLD_KEYS:
                assert cell == "-"
            else:
                assert math.isfinite(float(cell)), (name, key, cell)

    data = json.loads(out.read_text())
    assert data["settings"]["presets"] == ["preview-fast"] and data["settings"]["frames"] == [0, 30]
    assert data["commit"] and data["date"] and data["machine"]["cpu_count"] >= 1
    for name in (BASELINE, "preview-fast"):
        clip = data["truth"][name]["clips"]["walk_static"]
        assert clip["frames"] == 30 and clip["seconds"] > 0
        for key in keys:
            value = clip["metrics"][key]
            if name == BASELINE and key in WORLD_KEYS:
                assert value is None
            else:
                assert isinstance(value, float) and math.isfinite(value), (name, key)
            assert data["truth"][name]["mean"][key] == value  # one clip: the mean is that clip
    fit = data["truth"]["preview-fast"]["clips"]["walk_static"]
    perception = data["truth"][BASELINE]["clips"]["walk_static"]["timings"]["perception"]
    assert {"camera", "total"} <= set(fit["timings"])
    # perception ran once, for the baseline; the preset found it in the cache and is charged its original cost
    assert fit["cached"] == {"perception": pytest.approx(perception)}
    assert fit["seconds"] >= fit["timings"]["total"] + perception - 1e-6
    assert all(math.isfinite(v) for v in fit["details"]["body"].values())
    assert data["truth"][BASELINE]["clips"]["walk_static"]["details"]["coverage"]["body"] > 0.9

    again = tmp_path / "again.json"
    _bench(tmp_path, again)
    second = json.loads(again.read_text())["truth"]
    run = second["preview-fast"]["clips"]["walk_static"]
    assert {"perception", "camera"} <= set(run["cached"])  # perception and camera came from the shared cache
    assert run["cached"]["perception"] == pytest.approx(perception)
    assert run["metrics"]["mpjpe"] == pytest.approx(fit["metrics"]["mpjpe"])
