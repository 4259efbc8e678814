"""Perception speed at 720p per part (decode, Pose, palm detector, hand tracker, whole stage) and coverage.

Run from the repo root: .venv/bin/python -m benchmarks.bench_perception [--frames 120] [--json F] [--no-coverage]
The 720p clip is made from opencv-doc's Megamind.avi (upscaled and cropped to 1280x720); the coverage clips
are opencv-doc's vtest.avi and Megamind.avi (apt-get install opencv-doc). The whole stage is timed with the
hand worker process already started, as a running backend keeps it between jobs; its CPU is counted apart.
The hand tracker alone is fed the pose's arms and the palm regions of every frame (the stage runs the palm
detector only while hands are missing).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import resource
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np

from backend.perception import PerceptionSettings, detect
from backend.perception.hand_tracker import PalmDetector
from backend.perception.runners import BodyRunner, HandsRunner, arm_points
from backend.perception.views import full_view
from backend.video import iter_frames

DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def make_720p(source: Path, out: Path, frames: int) -> Path:
    """Upscale `source` to 1280 wide and crop the middle 720 rows; H.264, same frame rate."""
    with av.open(str(source)) as src:
        rate = src.streams.video[0].average_rate
    with av.open(str(out), "w") as dst:
        stream = dst.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.options = {"crf": "18", "preset": "fast"}
        for frame in iter_frames(source, stop=frames):
            h, w = frame.image.shape[:2]
            scale = 1280 / w
            big = cv2.resize(frame.image, (1280, round(h * scale)), interpolation=cv2.INTER_CUBIC)
            top = (big.shape[0] - 720) // 2
            image = np.ascontiguousarray(big[top : top + 720])
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return out


class _Clock:
    """Wall time and CPU time (this process, plus its child processes: the hand worker) since creation."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        self.children = _children_cpu()

    def rates(self, frames: int) -> dict[str, float]:
        """Frames per wall second, and CPU milliseconds per frame here and in child processes."""
        return {
            "fps": frames / (time.perf_counter() - self.wall),
            "cpu_ms_per_frame": 1000 * (time.process_time() - self.cpu) / frames,
            "child_cpu_ms_per_frame": 1000 * (_children_cpu() - self.children) / frames,
        }


def _children_cpu() -> float:
    """User + system CPU seconds of this process's children: the finished ones, and the running ones (the hand
    worker outlives each job, kept for the next) from /proc."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    running = 0
    for child in multiprocessing.active_children():
        try:
            fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it just ended: counted by getrusage once reaped
            continue
        running += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return usage.ru_utime + usage.ru_stime + running / os.sysconf("SC_CLK_TCK")


def stage_speeds(clip: Path, settings: PerceptionSettings) -> dict[str, dict[str, float]]:
    """Speed of decoding, Pose alone, the palm detector alone, the hand tracker alone and the whole stage."""
    clock = _Clock()
    frames = [f.image for f in iter_frames(clip)]
    out = {"decode": clock.rates(len(frames))}
    view = full_view(frames[0].shape[1], frames[0].shape[0])

    pose = BodyRunner(settings)
    pose.process(view.cut(frames[0], settings.max_side), view)  # graph start-up not timed
    clock = _Clock()
    bodies = [pose.process(view.cut(image, settings.max_side), view) for image in frames]
    out["pose"] = clock.rates(len(frames))
    pose.close()

    cuts = [view.cut(image, settings.hands_max_side) for image in frames]
    palms = PalmDetector(settings.min_detection_confidence)
    palms(cuts[0])
    clock = _Clock()
    regions = [palms(cut) for cut in cuts]
    out["palms"] = clock.rates(len(frames))
    palms.close()

    hands = HandsRunner(replace(settings, hands_process=False))
    clock = _Clock()
    for cut, body, found in zip(cuts, bodies, regions, strict=True):
        reach = settings.hand_merge_radius * body.scale() if body is not None else 0.0
        outsized = settings.outsized_hand * body.torso_size() if body is not None else math.inf
        hands.submit(cut, view, arm_points(body, view), reach, found, outsized)
        hands.collect()
    out["hand_tracker"] = clock.rates(len(frames))
    hands.close()
    n = len(frames)
    del frames, cuts

    detect(clip, 0, 5, settings=settings)  # start the hand worker, as a running backend has it (not timed)
    clock = _Clock()
    detect(clip, settings=settings)
    out["total"] = clock.rates(n)
    return out


def coverage(clip: Path, settings: PerceptionSettings) -> dict[str, float]:
    """Fraction of frames with a body, a left hand and a right hand, and the stage's speed."""
    t = time.perf_counter()
    obs = detect(clip, settings=settings)
    return {
        "frames": len(obs),
        "body": float(obs.body_valid.mean()),
        "left_hand": float(obs.hand_valid[:, 0].mean()),
        "right_hand": float(obs.hand_valid[:, 1].mean()),
        "fps": len(obs) / (time.perf_counter() - t),
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark, print a table and return (and optionally write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120, help="frames of the 720p clip to time")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--no-coverage", action="store_true", help="skip the coverage runs on full clips")
    args = parser.parse_args(argv)
    settings = PerceptionSettings()
    result: dict = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0], "settings": settings.to_dict()}
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_720p(DATA / "Megamind.avi", Path(tmp) / "megamind_720p.mp4", args.frames)
        result["speed_720p"] = stage_speeds(clip, settings)
    for stage, r in result["speed_720p"].items():
        print(
            f"720p {stage:12s} {r['fps']:6.1f} fps  cpu {r['cpu_ms_per_frame']:6.1f} ms/frame"
            f"  (+ {r['child_cpu_ms_per_frame']:.1f} ms/frame in the hand process)"
        )
    if not args.no_coverage:
        result["coverage"] = {name: coverage(DATA / name, settings) for name in ("vtest.avi", "Megamind.avi")}
        for name, c in result["coverage"].items():
            print(
                f"{name}: {c['frames']} frames, body {c['body']:.1%}, left hand {c['left_hand']:.1%}, "
                f"right hand {c['right_hand']:.1%}, {c['fps']:.1f} fps"
            )
    result["load_after"] = os.getloadavg()[0]
    print(f"load average before {result['load_before']:.1f}, after {result['load_after']:.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
