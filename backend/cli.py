"""The `vidrig` command line: serve, process, inspect, bench, train, keys."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from protocol.errors import BadRequest, VidrigError


def default_state_dir() -> Path:
    """Where the server keeps jobs and the stage cache: $VIDRIG_HOME, else $XDG_CACHE_HOME/vidrig."""
    if os.environ.get("VIDRIG_HOME"):
        return Path(os.environ["VIDRIG_HOME"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vidrig"


def parse_frames(text: str | None) -> list[int] | None:
    """`A:B` -> [A, B) frame range."""
    if not text:
        return None
    try:
        a, b = (int(v) for v in text.split(":"))
    except ValueError as exc:
        raise BadRequest(f"--frames must look like START:STOP, got {text!r}") from exc
    if not 0 <= a < b:
        raise BadRequest(f"--frames needs 0 <= START < STOP, got {text!r}")
    return [a, b]


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`--set section.key=value` pairs; values are parsed as JSON when they can be, else kept as strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise BadRequest(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the ZeroMQ server until interrupted."""
    from .server.server import Server, ServerConfig

    cfg = ServerConfig(
        bind=args.bind,
        state_dir=Path(args.cache) if args.cache else default_state_dir(),
        keys_dir=Path(args.keys) if args.keys else None,
        allowed_roots=[Path(p) for p in args.allow_root],
        device=args.device,
    )
    if args.cache_max_gb is not None:
        cfg.cache_max_bytes = int(args.cache_max_gb * 1024**3)
    if args.max_message_bytes is not None:
        cfg.max_message_bytes = args.max_message_bytes
    server = Server(cfg)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGINT, lambda *_: server.stop())
    print(f"vidrig serve: listening on {server.endpoint} (state in {cfg.state_dir})", flush=True)
    server.serve_forever()
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    """Run one job in this process with a progress bar and write the result file."""
    from tqdm import tqdm

    from .cache.stage_cache import StageCache
    from .export import export_all
    from .pipeline import check_video_path, make_spec, run_job

    video = check_video_path(str(Path(args.video).resolve()))
    if args.models:
        os.environ["VIDRIG_MODELS"] = str(Path(args.models).resolve())
    spec = make_spec(
        str(video),
        preset=args.preset,
        method=args.method,
        overrides=parse_overrides(args.set),
        frames=parse_frames(args.frames),
        body_model=args.body_model,
        models_dir=str(Path(args.models).resolve()) if args.models else None,
    )
    cache = StageCache((Path(args.cache) if args.cache else default_state_dir()) / "cache")
    interactive = sys.stderr.isatty()
    bar = tqdm(total=1000, unit="‰", bar_format="{l_bar}{bar}| {postfix}", file=sys.stderr, disable=not interactive)
    last_stage = [""]

    def sink(stage: str, fraction: float, message: str, eta: float | None) -> None:
        if not interactive:  # logs get one line per stage instead of a redrawn bar
            if stage != last_stage[0]:
                last_stage[0] = stage
                print(f"[{fraction * 100:5.1f}%] {stage}: {message}", file=sys.stderr, flush=True)
            return
        bar.set_description(stage)
        bar.n = int(fraction * 1000)
        bar.set_postfix_str(f"{message} ETA {eta:.0f}s" if eta is not None else message)

    t0 = time.perf_counter()
    result, ctx = run_job(spec, cache, sink=sink, device=args.device or "cpu")
    bar.n = 1000
    bar.close()
    written = export_all(result, Path(args.output), bvh=args.bvh, ply=args.ply)
    cached = f" (cached: {', '.join(ctx.cached_stages)})" if ctx.cached_stages else ""
    print(f"processed {video.name} with {spec.method} in {time.perf_counter() - t0:.1f} s{cached}")
    for path in written:
        print(f"wrote {path}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print what a result file holds."""
    from protocol.result import Result

    result = Result.load_npz(args.result)
    print(describe_result(result))
    return 0


def describe_result(result: Any) -> str:
    """A short human-readable summary of a Result."""
    meta = result.meta
    lines = [
        f"method: {meta.method}   preset: {meta.preset}   body model: {meta.body_model} ({meta.gender})",
        f"frames: {len(meta.frame_indices)} at {meta.fps:.3f} fps"
        + (f" (source {meta.frame_indices[0]}..{meta.frame_indices[-1]})" if meta.frame_indices else ""),
    ]
    arrays, _ = result.to_arrays()
    for name in sorted(arrays):
        a = arrays[name]
        stats = ""
        if a.dtype.kind == "f" and a.size:
            stats = f"  range [{np.nanmin(a):.3g}, {np.nanmax(a):.3g}]"
        lines.append(f"  {name:28s} {a.dtype.name:8s} {tuple(a.shape)}{stats}")
    if result.camera is not None:
        lines.append(f"camera: static={result.camera.static} scale_known={result.camera.scale_known}")
    if meta.timings:
        lines.append("timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in meta.timings.items()))
    return "\n".join(lines)


def cmd_bench(args: argparse.Namespace) -> int:
    """Run presets over a ground-truth suite and/or real videos; print the table and write the JSON record."""
    from .eval.bench import DEFAULT_PRESETS, BenchOptions, run_bench, write_json

    if args.models:
        os.environ["VIDRIG_MODELS"] = str(Path(args.models).resolve())
    suite = args.suite if args.suite is not None else (None if args.video else "smoke")
    options = BenchOptions(
        presets=list(args.preset or DEFAULT_PRESETS),
        cache_dir=(Path(args.cache) if args.cache else default_state_dir()) / "cache",
        frames=parse_frames(args.frames),
        device=args.device or "cpu",
        body_model=args.body_model,
        models_dir=str(Path(args.models).resolve()) if args.models else None,
    )
    report = run_bench(suite, args.video, options, clips=args.clips)
    print(report.tables())
    if args.out:
        write_json(report, Path(args.out))
        print(f"wrote {args.out}")
    print(f"bench took {report.seconds:.1f} s")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    """Generate CurveZMQ key pairs for a server and its clients."""
    from protocol.keys import generate_keys

    paths = generate_keys(args.directory)
    print(f"server keys: {paths['server_secret']} (keep secret), {paths['server_public']}")
    print(f"client keys: {paths['client_secret']} (give to the add-on), {paths['client_public']}")
    print(f"authorized clients: {paths['authorized']} (one .key file per allowed client)")
    return 0


def cmd_train_hand_prior(args: argparse.Namespace) -> int:
    """Train the hand motion prior (synthetic motion, or AMASS-style files with hands) and write a checkpoint."""
    import torch

    from .priors.hand_motion.model import DEFAULT_CHECKPOINT
    from .priors.hand_motion.train import TrainConfig, train_hand_prior

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(steps=args.steps, seed=args.seed, amass=str(Path(args.amass).resolve()) if args.amass else None)
    command = f"vidrig train hand-prior --steps {args.steps} --seed {args.seed}" + "".join(
        f" --{name} {value}" for name, value in (("amass", args.amass), ("threads", args.threads), ("out", args.out))
        if value)
    report = train_hand_prior(cfg, Path(args.out) if args.out else DEFAULT_CHECKPOINT, command=command,
                              log=lambda line: print(line, flush=True))
    print(f"trained {report.steps} steps in {report.seconds:.0f} s; held-out round trip "
          f"{report.val_rot_deg:.2f} deg, {report.val_landmark_mm:.2f} mm")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    p = argparse.ArgumentParser(prog="vidrig", description="VidRig backend: video to SMPL-X animation.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the ZeroMQ backend server")
    s.add_argument("--bind", default="tcp://127.0.0.1:5557")
    s.add_argument(
        "--cache", help="folder for the stage cache and job records (default: $VIDRIG_HOME or ~/.cache/vidrig)"
    )
    s.add_argument("--cache-max-gb", type=float, default=None, help="stage cache size cap (LRU eviction)")
    s.add_argument("--keys", help="CurveZMQ keys folder from `vidrig keys` (required for non-loopback binds)")
    s.add_argument("--allow-root", action="append", default=[], help="only accept videos under this folder")
    s.add_argument("--device", help="torch device, e.g. cpu or cuda:0 (default: CUDA when present)")
    s.add_argument(
        "--max-message-bytes", type=int, default=None, help="largest accepted client message (default 256 MiB)"
    )
    s.set_defaults(func=cmd_serve)

    pr = sub.add_parser("process", help="run one video through the pipeline without a server")
    pr.add_argument("video")
    pr.add_argument("--preset")
    pr.add_argument("--method")
    pr.add_argument("-o", "--output", required=True, help="result .npz path")
    pr.add_argument("--frames", help="START:STOP source frame range")
    pr.add_argument("--models", help="folder with your SMPL-X / MANO files")
    pr.add_argument("--body-model", choices=["default", "smplx"], default=None)
    pr.add_argument("--set", action="append", default=[], help="override a setting: section.key=value")
    pr.add_argument("--bvh", action="store_true", help="also write a BVH of the skeleton")
    pr.add_argument("--ply", action="store_true", help="also write the scene points as PLY")
    pr.add_argument("--cache", help="folder for the stage cache (default: the server's, so stages are shared)")
    pr.add_argument("--device")
    pr.set_defaults(func=cmd_process)

    i = sub.add_parser("inspect", help="print what a result file holds")
    i.add_argument("result")
    i.set_defaults(func=cmd_inspect)

    b = sub.add_parser("bench", help="score presets on ground-truth clips and real videos against raw mediapipe")
    b.add_argument("--suite", help="smoke (committed clips), full ($VIDRIG_GT_DIR or ~/.cache/vidrig/groundtruth-full)"
                   " or a folder with index.json or NAME.mp4 + NAME.npz pairs (default: smoke, none with --video)")
    b.add_argument("--preset", action="extend", nargs="+", help="presets to run (default: fullbody-default "
                   "preview-fast)")
    b.add_argument("--video", action="extend", nargs="+", default=[], help="real videos without ground truth")
    b.add_argument("--clips", action="extend", nargs="+", help="only these clips of the suite")
    b.add_argument("--frames", help="START:STOP source frame range of every clip and video")
    b.add_argument("--out", help="write the JSON record here")
    b.add_argument("--cache", help="folder for the stage cache (default: the server's, so stages are shared)")
    b.add_argument("--models", help="folder with your SMPL-X / MANO files")
    b.add_argument("--body-model", choices=["default", "smplx"], default=None)
    b.add_argument("--device")
    b.set_defaults(func=cmd_bench)

    tr = sub.add_parser("train", help="train a learned component")
    trs = tr.add_subparsers(dest="what", required=True)
    hp = trs.add_parser("hand-prior", help="train the hand motion prior (method hmp)")
    hp.add_argument("--out", help="checkpoint path (default: the shipped backend/priors/hand_motion/weights/)")
    hp.add_argument("--steps", type=int, default=3000)
    hp.add_argument("--seed", type=int, default=0)
    hp.add_argument("--amass", help="folder of AMASS-style npz files with hands (GRAB, TCDHands, SAMP, ...)")
    hp.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    hp.set_defaults(func=cmd_train_hand_prior)

    k = sub.add_parser("keys", help="generate CurveZMQ key pairs")
    k.add_argument("directory")
    k.set_defaults(func=cmd_keys)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `vidrig` console script; VidRig errors print as one plain line and exit 2."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except VidrigError as exc:
        print(f"vidrig: {exc.code.value}: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
