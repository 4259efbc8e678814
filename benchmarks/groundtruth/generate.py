"""Generate rendered ground-truth clips: CMU BVH -> SMPL-X (default body) + synthetic fingers -> Blender.

`python -m benchmarks.groundtruth --suite smoke|full --out DIR` writes, per clip, `NAME.mp4` (H.264) and
`NAME.npz` (SMPL-X parameters, joints, cameras, contacts, hand visibility, person masks), plus
`index.json` with timings and sizes. See README.md for the method and the file format.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from backend.models.base import BodyModel, BodyPose
from backend.models.loader import load_body_model
from benchmarks.data import SHARED_DATA
from benchmarks.groundtruth.bvh import parse_bvh
from benchmarks.groundtruth.fingers import synthetic_hands
from benchmarks.groundtruth.retarget import retarget
from benchmarks.groundtruth.scene import (
    HAND_WITH_WRIST,
    CameraTrack,
    Setup,
    face_regions,
    foot_contacts,
    hand_visibility,
    make_camera,
    project,
)
from protocol.errors import BadRequest, ModelMissing
from protocol.skeleton import NUM_JOINTS, PARENTS, POSES_LAYOUT

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DATA = SHARED_DATA
CMU_ACKNOWLEDGMENT = ("The data used in this project was obtained from mocap.cs.cmu.edu. "
                      "The database was created with funding from NSF EIA-0196217.")
CONTACT_NAMES = ("left_heel", "left_toe", "right_heel", "right_toe")


@dataclass(frozen=True)
class ClipSpec:
    """One clip to generate: a BVH take, a frame window (BVH frame numbers), a camera setup, a seed."""

    name: str
    bvh: str  # relative to the data folder
    start: int
    frames: int
    setup: Setup
    seed: int


SUITES: dict[str, tuple[ClipSpec, ...]] = {
    "smoke": (
        ClipSpec("walk_static", "cmu_iclone30/007/007_01.bvh", 1, 60, "static", 1),
        ClipSpec("punch_pan", "cmu_iclone30/002/002_05.bvh", 60, 60, "pan", 2),
        ClipSpec("wash_closeup", "cmu_iclone30/002/002_10.bvh", 120, 60, "closeup", 3),
    ),
    "full": (
        ClipSpec("walk_static", "cmu_iclone30/007/007_01.bvh", 1, 120, "static", 11),
        ClipSpec("jump_static", "cmu_iclone30/002/002_04.bvh", 1, 120, "static", 12),
        ClipSpec("terrain_static", "cmu_iclone30/003/003_01.bvh", 1, 120, "static", 13),
        ClipSpec("walk_pan", "cmu_iclone30/002/002_01.bvh", 1, 120, "pan", 14),
        ClipSpec("slowwalk_pan", "cmu_iclone30/007/007_04.bvh", 1, 120, "pan", 15),
        ClipSpec("sword_pan", "cmu_iclone30/002/002_07.bvh", 100, 120, "pan", 16),
        ClipSpec("punch_closeup", "cmu_iclone30/002/002_05.bvh", 60, 120, "closeup", 17),
        ClipSpec("wash_closeup", "cmu_iclone30/002/002_10.bvh", 120, 120, "closeup", 18),
        ClipSpec("scoop_closeup", "cmu_iclone30/002/002_06.bvh", 60, 120, "closeup", 19),
        ClipSpec("wash_hand", "cmu_iclone30/002/002_10.bvh", 300, 120, "hand", 20),
        ClipSpec("sword_hand", "cmu_iclone30/002/002_08.bvh", 60, 120, "hand", 21),
        ClipSpec("punch_hand", "cmu_iclone30/002/002_05.bvh", 200, 120, "hand", 22),
        ClipSpec("slowwalk_high", "cmu_iclone30/007/007_04.bvh", 1, 120, "high", 23),
        ClipSpec("punch_high", "cmu_iclone30/002/002_05.bvh", 60, 120, "high", 24),
    ),
}


@dataclass(frozen=True)
class RenderSettings:
    """Image size and Cycles settings of a suite."""

    width: int = 480
    height: int = 360
    samples: int = 4
    threads: int = 2
    crf: int = 23


@dataclass
class Motion:
    """A posed clip on the default body: parameters, joints, vertices, rotations (world frame, metres)."""

    poses: np.ndarray  # (T,55,3)
    transl: np.ndarray  # (T,3)
    betas: np.ndarray  # (10,)
    joints: np.ndarray  # (T,55,3)
    joint_rotations: np.ndarray  # (T,55,3,3)
    vertices: np.ndarray  # (T,V,3)
    fps: float


def bpy_python() -> Path:
    """The Python that has bpy: $VIDRIG_BPY_PYTHON, else the repo's .venv-blender, else /tmp/bpyenv."""
    env = os.environ.get("VIDRIG_BPY_PYTHON")
    for cand in ([Path(env)] if env else []) + [REPO / ".venv-blender/bin/python", Path("/tmp/bpyenv/bin/python")]:
        if cand.exists():
            return cand
    raise ModelMissing("no Python with bpy found: set VIDRIG_BPY_PYTHON or create .venv-blender")


def _forward(model: BodyModel, poses: np.ndarray, transl: np.ndarray, betas: np.ndarray) -> tuple[
        np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, joints and joint rotations of the model for every frame (float64 numpy)."""
    pose = BodyPose.from_full_pose(torch.as_tensor(poses, dtype=torch.float32),
                                   betas=torch.as_tensor(betas, dtype=torch.float32)[None],
                                   transl=torch.as_tensor(transl, dtype=torch.float32))
    with torch.no_grad():
        out = model(pose)
    return (out.vertices.double().numpy(), out.joints.double().numpy(), out.joint_rotations.double().numpy())


def pose_clip(spec: ClipSpec, model: BodyModel, data_dir: Path) -> Motion:
    """Retarget the clip's BVH window onto the model, add synthetic fingers, put the feet on the floor."""
    motion = parse_bvh(data_dir / spec.bvh)
    stop = min(spec.start + spec.frames, motion.num_frames)
    if stop - spec.start < 4:
        raise BadRequest(f"{spec.bvh} has only {motion.num_frames} frames; window from {spec.start} too short")
    betas = np.zeros(10)
    rest = model.rest_joints(torch.zeros(1, 10)).double().numpy().reshape(NUM_JOINTS, 3)
    rt = retarget(motion, rest, frames=slice(spec.start, stop))
    frames = rt.poses.shape[0]
    left, right = synthetic_hands(frames, rt.fps, rest, spec.seed)
    poses = rt.poses.copy()
    poses[:, 25:40], poses[:, 40:55] = left, right
    transl = rt.transl.copy()
    transl[:, [0, 2]] -= transl[0, [0, 2]]  # start above the world origin
    verts, joints, rots = _forward(model, poses, transl, betas)
    lift = -verts[..., 1].min()
    transl[:, 1] += lift
    verts[..., 1] += lift
    joints[..., 1] += lift
    return Motion(poses, transl, betas, joints, rots, verts, rt.fps)


def write_job(path: Path, motion: Motion, cam: CameraTrack, faces: np.ndarray, region: np.ndarray,
              face_hand: np.ndarray, settings: RenderSettings, mask_frames: np.ndarray) -> None:
    """The file the bpy renderer reads (see render.py)."""
    centre = motion.joints[:, 0, [0, 2]].mean(axis=0)
    np.savez(path, vertices=motion.vertices.astype(np.float32), faces=faces.astype(np.int32),
             face_region=region, face_hand=face_hand, K=cam.K, R_w2c=cam.R_w2c, t_w2c=cam.t_w2c,
             width=cam.width, height=cam.height, samples=settings.samples, threads=settings.threads,
             mask_frames=mask_frames, room_centre=centre, room_half=7.0,
             hand_joints=motion.joints[:, np.array(HAND_WITH_WRIST)])


def encode_mp4(frames_dir: Path, count: int, out: Path, fps: float, crf: int) -> None:
    """H.264 (yuv420p) from the rendered PNGs."""
    with av.open(str(out), "w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        first = cv2.imread(str(frames_dir / "frame_00000.png"))
        stream.height, stream.width = first.shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for t in range(count):
            bgr = cv2.imread(str(frames_dir / f"frame_{t:05d}.png"))
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def overlay(frame_bgr: np.ndarray, joints: np.ndarray, cam: CameraTrack, t: int) -> np.ndarray:
    """The frame with the projected GT skeleton drawn on it (bones green, joints red)."""
    uv, _ = project(joints[t:t + 1], CameraTrack(cam.K, cam.R_w2c[t:t + 1], cam.t_w2c[t:t + 1],
                                                 cam.width, cam.height))
    img = frame_bgr.copy()
    pts = uv[0].round().astype(int)
    for j, p in enumerate(PARENTS):
        if p >= 0:
            cv2.line(img, tuple(pts[p]), tuple(pts[j]), (0, 255, 0), 1, cv2.LINE_AA)
    for q in pts:
        cv2.circle(img, tuple(q), 2, (0, 0, 255), -1)
    return img


def amass_fields(motion: Motion) -> dict[str, np.ndarray]:
    """AMASS-style `poses` (T,165), `trans`, `betas` plus the separate SMPL-X parameter fields."""
    frames = motion.poses.shape[0]
    out: dict[str, np.ndarray] = {"poses": motion.poses.reshape(frames, -1).astype(np.float32),
                                  "trans": motion.transl.astype(np.float32),
                                  "betas": motion.betas.astype(np.float32),
                                  "transl": motion.transl.astype(np.float32)}
    start = 0
    for name, count in POSES_LAYOUT:
        chunk = motion.poses[:, start:start + count].astype(np.float32)
        out[name] = chunk[:, 0] if count == 1 else chunk
        start += count
    return out


def generate_clip(spec: ClipSpec, model: BodyModel, out_dir: Path, data_dir: Path,
                  settings: RenderSettings, save_overlay: bool) -> dict:
    """Pose, render, encode and save one clip; returns its index entry (timings, sizes)."""
    t0 = time.perf_counter()
    motion = pose_clip(spec, model, data_dir)
    rest = model.rest_data(motion.betas)
    region, face_hand = face_regions(rest["faces"], rest["skin_indices"], rest["skin_weights"],
                                     rest["vertices"], rest["joints"])
    points = motion.vertices[:, ::25]
    cam = make_camera(spec.setup, motion.joints, motion.joint_rotations, points, settings.width, settings.height)
    frames = motion.poses.shape[0]
    mask_frames = np.unique(np.array([0, frames // 2, frames - 1]))
    t_pose = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix=f"gt_{spec.name}_") as tmp:
        tmp_dir = Path(tmp)
        write_job(tmp_dir / "job.npz", motion, cam, rest["faces"], region, face_hand, settings, mask_frames)
        t1 = time.perf_counter()
        proc = subprocess.run([str(bpy_python()), "-m", "benchmarks.groundtruth.render", str(tmp_dir / "job.npz"),
                               str(tmp_dir / "frames")], cwd=REPO, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BadRequest(f"Blender render of {spec.name} failed: {proc.stderr[-2000:]}")
        t_render = time.perf_counter() - t1
        frames_dir = tmp_dir / "frames"
        rendered = np.load(frames_dir / "visibility.npz")
        video = out_dir / f"{spec.name}.mp4"
        encode_mp4(frames_dir, frames, video, motion.fps, settings.crf)
        masks = np.stack([cv2.imread(str(frames_dir / f"mask_{t:05d}.png"), cv2.IMREAD_UNCHANGED)[..., 3] > 127
                          for t in mask_frames])
        if save_overlay:
            mid = frames // 2
            img = overlay(cv2.imread(str(frames_dir / f"frame_{mid:05d}.png")), motion.joints, cam, mid)
            cv2.imwrite(str(out_dir / f"{spec.name}_overlay.png"), img)
    joint_vis, hand_vis = hand_visibility(motion.joints, cam, rendered["hand_visible_joints"])
    contacts = foot_contacts(motion.joints, motion.fps)
    total = time.perf_counter() - t0
    np.savez_compressed(
        out_dir / f"{spec.name}.npz",
        **amass_fields(motion),
        gender=np.array("neutral"), mocap_frame_rate=np.array(motion.fps), surface_model_type=np.array("smplx"),
        body_model=np.array("default"), joints=motion.joints.astype(np.float32),
        K=cam.K, R_w2c=cam.R_w2c, t_w2c=cam.t_w2c, width=np.array(cam.width), height=np.array(cam.height),
        fps=np.array(motion.fps), contacts=contacts, contact_names=np.array(CONTACT_NAMES),
        hand_visible=hand_vis, hand_joint_visible=joint_vis, mask_frames=mask_frames, masks=masks,
        setup=np.array(spec.setup), source_bvh=np.array(spec.bvh), source_start_frame=np.array(spec.start),
        finger_seed=np.array(spec.seed), acknowledgment=np.array(CMU_ACKNOWLEDGMENT),
        render_seconds=np.array(t_render), render_seconds_per_frame=rendered["seconds_per_frame"],
    )
    sizes = {p.name: p.stat().st_size for p in (video, out_dir / f"{spec.name}.npz")}
    return {**asdict(spec), "frames": frames, "fps": motion.fps, "pose_seconds": round(t_pose, 2),
            "render_seconds": round(t_render, 1), "total_seconds": round(total, 1),
            "render_seconds_per_frame": round(float(rendered["seconds_per_frame"].mean()), 2),
            "hand_visible_fraction": hand_vis.mean(axis=0).round(3).tolist(), "bytes": sizes}


def generate_suite(suite: str, out_dir: Path, data_dir: Path = DEFAULT_DATA,
                   settings: RenderSettings | None = None, only: list[str] | None = None,
                   save_overlay: bool = False) -> list[dict]:
    """Generate every clip of a suite into `out_dir` (created) and write `index.json` there."""
    if suite not in SUITES:
        raise BadRequest(f"unknown suite {suite!r}; choose one of {sorted(SUITES)}")
    specs = [s for s in SUITES[suite] if only is None or s.name in only]
    if not specs:
        raise BadRequest(f"no clip of suite {suite!r} matches {only}")
    out_dir.mkdir(parents=True, exist_ok=True)
    model = load_body_model("default")
    s = settings or RenderSettings()
    entries = [generate_clip(spec, model, out_dir, data_dir, s, save_overlay) for spec in specs]
    index = {"suite": suite, "settings": asdict(s), "acknowledgment": CMU_ACKNOWLEDGMENT,
             "clips": _merge_entries(out_dir / "index.json", suite, s, entries)}
    (out_dir / "index.json").write_text(json.dumps(index, indent=2))
    return entries


def _merge_entries(index_path: Path, suite: str, settings: RenderSettings, new: list[dict]) -> list[dict]:
    """New entries plus earlier ones of the same suite and settings whose files still exist, in suite order. The
    render thread count changes only the speed, so clips rendered with another one stay."""
    def output_settings(d: dict | None) -> dict:
        return {k: v for k, v in (d or {}).items() if k != "threads"}

    by_name = {}
    if index_path.exists():
        old = json.loads(index_path.read_text())
        if old.get("suite") == suite and output_settings(old.get("settings")) == output_settings(asdict(settings)):
            by_name = {e["name"]: e for e in old.get("clips", [])
                       if all((index_path.parent / f).exists() for f in e.get("bytes", {}))}
    by_name.update({e["name"]: e for e in new})
    order = [spec.name for spec in SUITES[suite]]
    return sorted(by_name.values(), key=lambda e: order.index(e["name"]) if e["name"] in order else len(order))
