"""`vidrig bench` pieces on hand-made data: landmark->joint mapping, scoring, table, suites, cache timings, JSON."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from backend.eval import bench
from backend.eval import metrics as M
from backend.eval.landmark_joints import (
    BODY_SUBSET,
    body_landmarks_to_joints,
    hand_landmarks_to_joints,
)
from protocol.errors import BadRequest, NotFound
from protocol.skeleton import JOINT_INDEX, JOINT_NAMES


def _coded_body(frames: int = 2) -> np.ndarray:
    """Body landmarks (T,33,4) whose x is 10*frame + landmark index, so every mapped value names its source."""
    kp = np.zeros((frames, 33, 4))
    for t in range(frames):
        kp[t, :, 0] = 10 * t + np.arange(33)
        kp[t, :, 1] = -np.arange(33)
        kp[t, :, 3] = 0.9  # visibility, must be dropped
    return kp


def test_body_mapping_takes_each_landmark_to_its_smplx_joint() -> None:
    joints = body_landmarks_to_joints(_coded_body())
    assert joints.shape == (2, 55, 3)
    expected = {"left_shoulder": 11, "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14, "left_wrist": 15,
                "right_wrist": 16, "left_hip": 23, "right_hip": 24, "left_knee": 25, "right_knee": 26,
                "left_ankle": 27, "right_ankle": 28}
    for name, mp in expected.items():
        np.testing.assert_array_equal(joints[1, JOINT_INDEX[name]], [10 + mp, -mp, 0.0])
    np.testing.assert_array_equal(joints[1, JOINT_INDEX["pelvis"]], [10 + 23.5, -23.5, 0.0])  # mid-hip
    mapped = {JOINT_INDEX[n] for n in expected} | {JOINT_INDEX["pelvis"]}
    unmapped = [j for j in range(55) if j not in mapped]
    assert np.isnan(joints[:, unmapped]).all()
    assert sorted(JOINT_NAMES[j] for j in BODY_SUBSET) == sorted(expected)


def test_hand_mapping_wrist_mcp_pip_dip_to_finger_joints_1_2_3() -> None:
    kp = np.zeros((1, 2, 21, 3))
    kp[0, :, :, 0] = np.arange(21)
    kp[0, 1, :, 1] = 1.0  # the right hand is told apart by y
    joints = hand_landmarks_to_joints(kp)
    for side, y in (("left", 0.0), ("right", 1.0)):
        for finger, base in (("thumb", 1), ("index", 5), ("middle", 9), ("ring", 13), ("pinky", 17)):
            for k in (1, 2, 3):
                np.testing.assert_array_equal(joints[0, JOINT_INDEX[f"{side}_{finger}{k}"]], [base + k - 1, y, 0])
        np.testing.assert_array_equal(joints[0, JOINT_INDEX[f"{side}_wrist"]], [0, y, 0])
    hand = {JOINT_INDEX[f"{s}_wrist"] for s in ("left", "right")} | {j for j in range(25, 55)}
    assert np.isnan(joints[0, [j for j in range(55) if j not in hand]]).all()
    assert not np.isin(joints[..., 0], [4, 8, 12, 16, 20]).any()  # fingertips are dropped


def test_mapping_rejects_wrong_layouts() -> None:
    with pytest.raises(BadRequest):
        body_landmarks_to_joints(np.zeros((3, 21, 3)))
    with pytest.raises(BadRequest):
        hand_landmarks_to_joints(np.zeros((3, 21, 3)))


def _truth(frames: int = 12, seed: int = 0) -> bench.GroundTruth:
    """A random moving skeleton, with the camera frame a fixed rotation + shift of the world."""
    rng = np.random.default_rng(seed)
    world = rng.normal(size=(55, 3))[None] * 0.3 + np.linspace(0, 1, frames)[:, None, None] * np.array([1, 0, 0.5])
    world = world + rng.normal(size=(frames, 55, 3)) * 0.01
    rot = np.array([[0.0, 0, 1], [0, -1, 0], [1, 0, 0]])
    cam = world @ rot.T + np.array([0, 0, 4.0])
    contacts = np.zeros((frames, 4), bool)
    contacts[:6] = True
    return bench.GroundTruth(30.0, world, cam, contacts, np.ones((frames, 2), bool), np.ones(frames, bool))


def test_perfect_prediction_scores_zero_and_a_baseline_has_no_world_columns() -> None:
    gt = _truth()
    valid = np.ones(len(gt.joints_cam), bool)
    hands = np.ones((len(valid), 2), bool)
    exact = bench.score_truth(gt.joints_cam, gt.joints_cam, gt.joints_world, gt, valid, hands)
    for key in ("mpjpe", "pa_mpjpe", "accel", "w_mpjpe", "wa_mpjpe", "rte", "hand_pa_mpjpe", "hand_ra_mpjpe",
                "hand_ra_acc"):
        assert exact[key] == pytest.approx(0.0, abs=1e-6), key
    assert exact["jitter"] > 0  # jitter is of the motion, not an error
    base = bench.score_truth(gt.joints_cam, gt.joints_cam, None, gt, valid, hands)
    assert all(math.isnan(base[k]) for k in ("w_mpjpe", "wa_mpjpe", "rte", "foot_sliding", "up_err"))


def test_up_error_is_the_lean_of_the_solved_world() -> None:
    """The up error is the angle between the solved and the true world up in the camera frame, whatever the world
    alignment of the MPJPEs forgives; without a camera it is undefined."""
    gt = replace(_truth(), up_cam=np.repeat(np.array([[0.0, -1.0, 0.0]]), 12, 0))
    valid, hands = np.ones(12, bool), np.ones((12, 2), bool)
    tilt = np.radians(20.0)
    leaning = np.repeat(np.array([[0.0, -np.cos(tilt), np.sin(tilt)]]), 12, 0)
    scored = bench.score_truth(gt.joints_cam, gt.joints_cam, gt.joints_world, gt, valid, hands, leaning)
    assert scored["up_err"] == pytest.approx(20.0)
    assert scored["w_mpjpe"] == pytest.approx(0.0, abs=1e-6)
    same = bench.score_truth(gt.joints_cam, gt.joints_cam, gt.joints_world, gt, valid, hands, gt.up_cam)
    assert same["up_err"] == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(bench.score_truth(gt.joints_cam, gt.joints_cam, gt.joints_world, gt, valid, hands)["up_err"])
    np.testing.assert_allclose(gt.frames([3, 5]).up_cam, gt.up_cam[[3, 5]])


def test_only_the_common_joints_are_scored() -> None:
    gt = _truth()
    pred = gt.joints_cam.copy()
    others = [j for j in range(22) if j not in BODY_SUBSET and j not in (1, 2)]
    pred[:, others] = np.nan  # joints mediapipe lacks do not enter the body columns
    pred[:, JOINT_INDEX["left_knee"], 1] += 0.012  # 12 mm on one of the 12 scored joints
    valid = np.ones(len(pred), bool)
    scores = bench.score_body_camera(pred, gt.joints_cam, gt.fps, valid)
    assert scores["mpjpe"] == pytest.approx(12.0 / 12, rel=1e-6)
    assert scores["accel"] == pytest.approx(0.0, abs=1e-6)


def test_hand_columns_average_the_sides_and_skip_a_hand_without_frames() -> None:
    gt = _truth()
    pred = gt.joints_cam.copy()
    pred[:, JOINT_INDEX["left_index1"]] += [0.016, 0, 0]  # one of 16 joints off by 16 mm -> 1 mm RA-MPJPE
    valid = np.ones((len(pred), 2), bool)
    both = bench.score_hands_camera(pred, gt.joints_cam, valid)
    assert both["hand_ra_mpjpe"] == pytest.approx(0.5)  # mean of left 1 mm and right 0 mm
    valid[:, 1] = False
    left = bench.score_hands_camera(pred, gt.joints_cam, valid)
    assert left["hand_ra_mpjpe"] == pytest.approx(1.0)
    valid[:, 0] = False
    assert math.isnan(bench.score_hands_camera(pred, gt.joints_cam, valid)["hand_ra_mpjpe"])


def test_foot_sliding_uses_the_ground_truth_contacts() -> None:
    gt = _truth()
    pred = gt.joints_world.copy()
    feet = [JOINT_INDEX[n] for n in ("left_ankle", "left_foot", "right_ankle", "right_foot")]
    pred[:, feet] = 0.0
    pred[:, feet, 0] = np.arange(len(pred))[:, None] * 0.004  # every foot slides 4 mm per frame
    scores = bench.score_body_world(pred, gt, np.ones(len(pred), bool))
    assert scores["foot_sliding"] == pytest.approx(4.0)


def test_foot_contacts_need_low_and_slow() -> None:
    feet = np.zeros((5, 1, 3))
    feet[:, 0, 1] = [0.0, 0.0, 0.2, 0.0, 0.0]  # lifted on frame 2
    feet[4, 0, 0] = 0.05  # 1.5 m/s at 30 fps on the last step
    np.testing.assert_array_equal(bench.foot_contacts(feet, 30.0)[:, 0], [True, True, False, False, False])


def test_reprojection_error_in_pixels() -> None:
    pts = np.array([[[0.0, 0.0, 2.0], [0.5, -0.2, 2.5]]])  # (T=1, 2, 3) world = camera
    cam = SimpleNamespace(K=np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]), R_w2c=np.eye(3)[None],
                          t_w2c=np.zeros((1, 3)))
    kp2d = np.array([[[320.0 + 3, 240.0 + 4, 0.9], [420.0, 200.0, 0.9]]])
    assert bench.reprojection_px(pts, cam, kp2d, np.array([True])) == pytest.approx(2.5)  # (5 + 0) / 2
    kp2d[0, 0, 2] = 0.1  # a low-confidence detection is left out
    assert bench.reprojection_px(pts, cam, kp2d, np.array([True])) == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(bench.reprojection_px(pts, cam, kp2d, np.array([False])))


def test_table_formatting() -> None:
    cols = (bench.Column("mpjpe", "MPJPE"), bench.Column("rte", "RTE%"), bench.Column("fps", "fps"))
    rows = {bench.BASELINE: {"mpjpe": 123.456, "rte": float("nan"), "fps": 9.8765},
            "preview-fast": {"mpjpe": 45.0, "rte": 1.25, "fps": 0.5}}
    text = bench.format_table("title line", cols, rows, notes=("a note",))
    lines = text.splitlines()
    assert lines[0] == "title line"
    assert lines[1].split() == ["row", "MPJPE", "RTE%", "fps"]
    assert set(lines[2]) == {"-"} and len(lines[2]) == len(lines[1])
    assert lines[3].startswith(bench.BASELINE) and lines[3].split()[-3:] == ["123.5", "-", "9.88"]
    assert lines[4].startswith("preview-fast") and lines[4].split()[-3:] == ["45.0", "1.25", "0.50"]
    assert len({len(line) for line in lines[1:5]}) == 1  # columns line up
    assert lines[5] == "  a note"


def test_mean_row_skips_undefined_values_and_pools_fps() -> None:
    runs = {"a": bench.RowRun({"mpjpe": 10.0, "rte": float("nan"), "fps": 1.0}, frames=10, seconds=10.0),
            "b": bench.RowRun({"mpjpe": 30.0, "rte": float("nan"), "fps": 30.0}, frames=30, seconds=1.0)}
    mean = bench.mean_row(runs)
    assert mean["mpjpe"] == pytest.approx(20.0)
    assert math.isnan(mean["rte"])
    assert mean["fps"] == pytest.approx(40 / 11)


def test_json_record_is_strict_and_complete(tmp_path: Path) -> None:
    opts = bench.BenchOptions(presets=["preview-fast"], cache_dir=tmp_path / "cache")
    report = bench.BenchReport("smoke", "/x", opts, seconds=1.5)
    report.truth = {"preview-fast": {"clip": bench.RowRun({"mpjpe": 1.0, "rte": float("nan"), "fps": 2.0}, 4, 2.0,
                                                          {"fit": 1.0}, {"perception": 3.0})}}
    bench.write_json(report, tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    for key in ("commit", "dirty", "date", "machine", "settings", "truth", "videos", "seconds"):
        assert key in data
    clip = data["truth"]["preview-fast"]["clips"]["clip"]
    assert clip["metrics"] == {"mpjpe": 1.0, "rte": None, "fps": 2.0}
    assert clip["cached"] == {"perception": 3.0} and clip["timings"] == {"fit": 1.0}
    assert data["truth"]["preview-fast"]["mean"]["fps"] == pytest.approx(2.0)
    assert data["settings"]["body_joints"] == list(BODY_SUBSET)


def test_suites_and_clip_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    smoke = bench.list_clips(bench.resolve_suite("smoke"))
    assert [c.name for c in smoke] == ["walk_static", "punch_pan", "wash_closeup"]
    assert [c.name for c in bench.list_clips(bench.resolve_suite("smoke"), ["punch_pan"])] == ["punch_pan"]
    with pytest.raises(BadRequest, match="no clip named nope"):
        bench.list_clips(bench.resolve_suite("smoke"), ["nope"])
    monkeypatch.setenv(bench.GT_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(NotFound, match=re.escape("python -m benchmarks.groundtruth --suite full")):
        bench.resolve_suite("full")
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "a.npz").write_bytes(b"x")
    (tmp_path / "b.mp4").write_bytes(b"x")  # no ground truth: not a clip of the suite
    assert [c.name for c in bench.list_clips(bench.resolve_suite(str(tmp_path)))] == ["a"]
    with pytest.raises(NotFound):
        bench.list_clips(tmp_path / "b.mp4")


def test_ground_truth_camera_frame_and_frame_selection() -> None:
    gt = bench.load_ground_truth(bench.SMOKE_DIR / "walk_static.npz")
    with np.load(bench.SMOKE_DIR / "walk_static.npz") as data:
        r, t, k = data["R_w2c"], data["t_w2c"], data["K"]
        width, height = int(data["width"]), int(data["height"])
    np.testing.assert_allclose(gt.joints_cam[5], gt.joints_world[5] @ r[5].T + t[5], atol=1e-9)
    pelvis = gt.joints_cam[:, 0]
    uv = pelvis @ k.T
    uv = uv[:, :2] / uv[:, 2:]
    assert (pelvis[:, 2] > 0).all() and (uv >= 0).all() and (uv[:, 0] < width).all() and (uv[:, 1] < height).all()
    part = gt.frames([3, 4])
    np.testing.assert_array_equal(part.joints_world, gt.joints_world[3:5])
    with pytest.raises(BadRequest):
        gt.frames([len(gt.joints_world)])


def test_timed_cache_reports_the_original_cost_of_hits(tmp_path: Path) -> None:
    cache = bench.TimedStageCache(tmp_path)
    cache.put("k1", {"a": np.zeros(2)}, {"stage": "perception", "seconds": 12.5})
    cache.put("k2", {}, {"sha256": "x"})
    assert cache.get("k1") is not None and cache.get("k2") is not None and cache.get("k3") is None
    assert cache.hits == {"perception": 12.5}


def test_video_scores_without_ground_truth() -> None:
    frames = 8
    body = np.zeros((frames, 33, 4))
    body[:, :, :3] = np.random.default_rng(3).normal(size=(33, 3)) * 0.3  # a still pose: no jitter
    kp2d = np.zeros((frames, 33, 3))
    kp2d[..., 2] = 1.0
    hands = np.zeros((frames, 2, 21, 4))
    hands[:, 1, :, :3] = np.random.default_rng(4).normal(size=(21, 3)) * 0.05  # a still right hand
    obs = SimpleNamespace(fps=30.0, body_kp3d=body, body_kp2d=kp2d, body_valid=np.arange(frames) < 6,
                          hand_kp3d=hands, hand_valid=np.column_stack([np.zeros(frames, bool), np.ones(frames, bool)]))
    base = bench.score_video(None, obs, None)
    assert base["jitter"] == pytest.approx(0.0, abs=1e-9)
    assert base["hand_jitter"] == pytest.approx(0.0, abs=1e-9)
    assert (base["coverage_body"], base["coverage_left"], base["coverage_right"]) == (0.75, 0.0, 1.0)
    assert math.isnan(base["reproj_px"]) and math.isnan(base["foot_skating"])

    world = np.zeros((frames, 55, 3))
    world[:, :, 2] = 3.0
    world[:, :, 1] = np.arange(55) * 0.01  # feet at their lowest height stay in contact
    world[:, :, 0] = np.arange(frames)[:, None] * 0.002  # everything slides 2 mm per frame
    landmarks = np.zeros((frames, 33, 3))
    landmarks[..., 2] = 2.0  # projects onto the principal point
    solved = bench.Solved(world, world, landmarks, np.ones((frames, 2), bool), True)
    camera = SimpleNamespace(K=np.array([[500.0, 0, 100], [0, 500, 50], [0, 0, 1]]),
                             R_w2c=np.repeat(np.eye(3)[None], frames, 0), t_w2c=np.zeros((frames, 3)))
    kp2d[..., 0], kp2d[..., 1] = 103.0, 54.0  # 5 px from the principal point
    scores = bench.score_video(solved, obs, SimpleNamespace(camera=camera))
    assert scores["reproj_px"] == pytest.approx(5.0)
    assert scores["foot_skating"] == pytest.approx(2.0)
    assert scores["jitter"] == pytest.approx(0.0, abs=1e-9)
    assert scores["hand_jitter"] == pytest.approx(0.0, abs=1e-9)  # a hand sliding as a whole does not jitter
    assert scores["coverage_body"] == 1.0
    # Against the detections the method solved from (its own perception), not the baseline's.
    own = np.zeros((frames, 33, 3))
    own[..., 0], own[..., 1], own[..., 2] = 100.0, 62.0, 1.0  # 12 px off
    theirs = SimpleNamespace(body_kp2d=own, body_valid=np.ones(frames, bool))
    assert bench.score_video(solved, obs, SimpleNamespace(camera=camera), theirs)["reproj_px"] == pytest.approx(12.0)


def test_a_failing_preset_gets_an_error_row_and_the_others_still_score(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    from protocol.errors import NoPerson
    from protocol.result import CameraTrack, Result, ResultMeta, SmplxMotion

    frames = 10
    rng = np.random.default_rng(4)
    obs = SimpleNamespace(
        fps=30.0, frame_indices=np.arange(frames), body_kp3d=rng.normal(size=(frames, 33, 4)) * 0.3,
        body_kp2d=np.zeros((frames, 33, 3)), hand_kp3d=rng.normal(size=(frames, 2, 21, 3)) * 0.05,
        body_valid=np.ones(frames, bool), hand_valid=np.ones((frames, 2), bool))
    z3 = np.zeros((frames, 3), np.float32)
    motion = SmplxMotion(global_orient=z3, body_pose=np.zeros((frames, 21, 3), np.float32), jaw_pose=z3,
                         leye_pose=z3, reye_pose=z3, left_hand_pose=np.zeros((frames, 15, 3), np.float32),
                         right_hand_pose=np.zeros((frames, 15, 3), np.float32), betas=np.zeros(10, np.float32),
                         transl=np.linspace(0, 1, frames, dtype=np.float32)[:, None].repeat(3, 1),
                         global_orient_c=z3, transl_c=z3 + np.float32([0, 0, 3]))
    level = np.repeat(np.diag([1.0, -1.0, -1.0])[None], frames, 0)
    camera = CameraTrack(np.eye(3), level, np.zeros((frames, 3)), np.zeros((frames, 3)), True, True)
    result = Result(ResultMeta("fake", "good", {}, "default", "neutral", 30.0, list(range(frames))), smplx=motion,
                    camera=camera)

    def run_preset(video: Path, preset: str, options: bench.BenchOptions, cache: object, log: object) -> tuple:
        if preset == "bad":
            raise NoPerson(f"nobody in {video.name}")
        return result, bench.RowRun({}, frames, 2.0, {"fit": 1.0}, {"perception": 1.0})

    monkeypatch.setattr(bench, "_observations", lambda *args: (obs, 4.0))
    monkeypatch.setattr(bench, "_run_preset", run_preset)
    clip = bench.list_clips(bench.SMOKE_DIR, ["walk_static"])[0]
    opts = bench.BenchOptions(presets=["bad", "good"], cache_dir=tmp_path)
    rows = bench.bench_clip(clip, opts, bench.TimedStageCache(tmp_path), lambda line: None)
    assert list(rows) == [bench.BASELINE, "bad", "good"]
    assert rows[bench.BASELINE].metrics["fps"] == pytest.approx(frames / 4.0)
    assert "E_NO_PERSON" in rows["bad"].details["error"] and all(math.isnan(v) for v in rows["bad"].metrics.values())
    good = rows["good"].metrics
    assert set(good) == {c.key for c in bench.TRUTH_COLUMNS}
    assert all(math.isfinite(v) for v in good.values()) and good["fps"] == pytest.approx(frames / 2.0)
    assert good["mpjpe"] > 10  # a rest pose is far from a walk
    assert "body" in rows["good"].details
    report = bench.BenchReport("smoke", str(bench.SMOKE_DIR), opts,
                               truth={row: {"walk_static": run} for row, run in rows.items()})
    assert "bad failed on walk_static: E_NO_PERSON: nobody in walk_static.mp4" in report.tables()


def test_body_in_view_needs_both_hips_and_shoulders_inside_the_image() -> None:
    k = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])
    joints = np.zeros((3, 55, 3))
    joints[..., 2] = 2.0  # everything on the optical axis, 2 m ahead: inside a 100x80 image
    joints[1, bench.TORSO_JOINTS[3], 0] = 1.2  # right shoulder 60 px right of the 100 px wide image's edge
    joints[2, bench.TORSO_JOINTS[0], 2] = -1.0  # left hip behind the camera
    joints[2, [j for j in range(55) if j not in bench.TORSO_JOINTS], 0] = 50.0  # the rest far out: not asked
    joints[0, [j for j in range(55) if j not in bench.TORSO_JOINTS], 0] = 50.0
    np.testing.assert_array_equal(bench.body_in_view(joints, k, (100, 80)), [True, False, False])


def test_body_columns_leave_out_frames_without_the_body_in_view() -> None:
    gt = _truth()
    valid = np.ones(len(gt.joints_cam), bool)
    hands = np.ones((len(valid), 2), bool)
    pred = gt.joints_cam.copy()
    pred[:4, BODY_SUBSET] += 0.1  # wrong by 10 cm on frames the render does not show
    gt.body_visible[:4] = False
    part = bench.score_truth(pred, gt.joints_cam, gt.joints_world, gt, valid, hands)
    assert part["mpjpe"] == pytest.approx(0.0, abs=1e-6)
    gt.body_visible[:] = False
    none = bench.score_truth(pred, gt.joints_cam, gt.joints_world, gt, valid, hands)
    assert math.isnan(none["mpjpe"]) and math.isnan(none["w_mpjpe"])
    assert none["hand_pa_mpjpe"] == pytest.approx(0.0, abs=1e-6)  # the hands are still scored


def test_hand_jitter_is_wrist_centred_and_uses_only_detected_frames() -> None:
    fps, a, frames = 30.0, 32.0, 20
    t = np.arange(frames) / fps
    joints = np.zeros((frames, 55, 3))
    left = list(M.hand_joints("left"))
    joints[:, left, 1] = (5.0 * t**3)[:, None]  # the whole hand carried by the arm: no hand jitter
    joints[:, left[1], 0] = a * t**3 / 6.0  # one finger joint with a constant jerk of a m/s^3
    seen = np.zeros((frames, 2), bool)
    seen[:, 0] = True  # the right hand never detected: left out
    # the mean over 16 joints of a/16 m/s^3, in units of 10 m/s^3
    assert bench.hand_jitter(joints, fps, seen) == pytest.approx(a / 16 / 10, rel=1e-6)
    assert math.isnan(bench.hand_jitter(joints, fps, np.zeros((frames, 2), bool)))
