"""Protocol benchmark: loopback ping latency and the cost of moving a 10,000-frame result server -> client.

Starts a real `vidrig serve` subprocess on a free loopback port, measures ping round trips with the
reference Client, then fetches a stored 10,000-frame result with every array DESIGN.md lists (body, camera-frame
root, both hands, camera, 50k scene points, confidence, contacts, rest mesh of ~10k vertices) and times each part
(result file load on the server, encode, decode) in this process as well.

Run: .venv/bin/python -m benchmarks.bench_protocol [--pings 2000] [--frames 10000] [--repeats 5]
Writes benchmarks/results/protocol.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from backend.jobs.store import JobRecord, JobStore
from backend.methods.base import JobSpec
from protocol import messages as m
from protocol.result import Result
from tests.support.results import full_result
from tests.support.server import ServerProcess

OUT = Path(__file__).resolve().parent / "results" / "protocol.json"
SMPLX_VERTICES, SMPLX_FACES = 10_475, 20_908  # a mesh the size of SMPL-X's


def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    """Wall times of `repeats` calls and the last return value."""
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return times, value


def bench_pings(server: ServerProcess, count: int) -> dict[str, float]:
    """Round trips of `ping` -> `pong` through the reference Client (after 100 warm-up pings)."""
    with server.client() as client:
        for _ in range(100):
            client.ping()
        rtts = [client.ping() for _ in range(count)]
    return {
        "count": count,
        "median_ms": statistics.median(rtts) * 1e3,
        "p99_ms": _percentile(rtts, 99) * 1e3,
        "mean_ms": statistics.fmean(rtts) * 1e3,
        "max_ms": max(rtts) * 1e3,
    }


def bench_result(server: ServerProcess, frames: int, repeats: int) -> dict[str, Any]:
    """Fetch a stored result through the server, and time the parts of that path in this process."""
    result = full_result(
        t=frames, n_points=50_000, n_vertices=SMPLX_VERTICES, n_faces=SMPLX_FACES, n_contacts=4, hypotheses=0
    )
    store = JobStore(server.state_dir / "jobs")
    job = m.new_id()
    spec = JobSpec(video="/bench/none.mp4", method="fit", settings={})
    store.save(JobRecord(id=job, spec=spec, state="done"))
    npz = result.save_npz(store.result_path(job))

    message = m.ResultMessage(job=job, result=result)
    encode_times, frames_out = _timed(message.to_frames, repeats)
    wire_bytes = sum(len(f) for f in frames_out)
    decode_times, _ = _timed(lambda: m.parse(frames_out, m.SERVER_MESSAGES), repeats)
    load_times, _ = _timed(lambda: Result.load_npz(npz), repeats)
    with server.client(timeout=120) as client:
        client.result(job)  # warm the server's file cache
        fetch_times, fetched = _timed(lambda: client.result(job, timeout=120), repeats)
    assert isinstance(fetched, Result) and fetched.smplx is not None and fetched.smplx.num_frames == frames
    arrays, _ = result.to_arrays()
    return {
        "frames": frames,
        "arrays": len(arrays),
        "wire_bytes": wire_bytes,
        "npz_bytes": npz.stat().st_size,
        "fetch_median_s": statistics.median(fetch_times),
        "fetch_min_s": min(fetch_times),
        "server_npz_load_median_s": statistics.median(load_times),
        "encode_median_s": statistics.median(encode_times),
        "decode_median_s": statistics.median(decode_times),
        "throughput_MB_s": wire_bytes / statistics.median(fetch_times) / 1e6,
        "largest_arrays": {
            k: [list(v.shape), v.dtype.name] for k, v in sorted(arrays.items(), key=lambda kv: -kv[1].nbytes)[:6]
        },
    }


def main() -> None:
    """Run both benchmarks, print a table and write the JSON report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pings", type=int, default=2000)
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "state").start()
        try:
            ping = bench_pings(server, args.pings)
            res = bench_result(server, args.frames, args.repeats)
        finally:
            server.stop()
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
            "platform": platform.platform(),
            "processor": platform.processor(),
            "python": platform.python_version(),
        },
        "ping": ping,
        "result_transfer": res,
    }
    rows = [
        ("machine", f"{report['machine']['cpus']} CPUs, load average {report['machine']['load_average_1min']:.1f}"),
        ("ping round trip, median", f"{ping['median_ms']:.3f} ms"),
        ("ping round trip, p99", f"{ping['p99_ms']:.3f} ms"),
        ("ping count", f"{ping['count']}"),
        (
            f"{res['frames']}-frame result on the wire",
            f"{res['wire_bytes'] / 1e6:.1f} MB in {res['arrays'] + 1} frames",
        ),
        ("result file (.npz, compressed)", f"{res['npz_bytes'] / 1e6:.1f} MB"),
        (
            "fetch through the server, median",
            f"{res['fetch_median_s'] * 1e3:.0f} ms ({res['throughput_MB_s']:.0f} MB/s)",
        ),
        ("  of which: server loads the .npz", f"{res['server_npz_load_median_s'] * 1e3:.0f} ms"),
        ("  of which: encode (to frames)", f"{res['encode_median_s'] * 1e3:.0f} ms"),
        ("  of which: decode (parse + Result)", f"{res['decode_median_s'] * 1e3:.0f} ms"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
