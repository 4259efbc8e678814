"""Result -> npz -> Result and Result -> wire -> Result are lossless; the npz opens like an AMASS file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from protocol import messages as m
from protocol.errors import BadRequest
from protocol.result import Result, ResultMeta, SmplxMotion
from tests.support.results import assert_same, full_result


def test_npz_round_trip_keeps_every_part(tmp_path: Path) -> None:
    original = full_result(t=6)
    path = original.save_npz(tmp_path / "take.npz")
    assert_same(original, Result.load_npz(path))


def test_wire_round_trip_keeps_every_part() -> None:
    original = full_result(t=6)
    frames = m.ResultMessage(job="ab12", re="r1", result=original).to_frames()
    back = m.parse(frames, m.SERVER_MESSAGES)
    assert isinstance(back, m.ResultMessage) and back.job == "ab12" and back.re == "r1"
    assert_same(original, back.result)


def test_minimal_result_round_trips(tmp_path: Path) -> None:
    """A result with only provenance (a method that produced nothing optional) survives both paths."""
    meta = ResultMeta("hand3r", None, {}, "smplx", "female", 30.0, [0, 1])
    original = Result(meta=meta)
    assert_same(original, Result.load_npz(original.save_npz(tmp_path / "meta.npz")))
    back = m.parse(m.ResultMessage(job="1", result=original).to_frames(), m.SERVER_MESSAGES)
    assert_same(original, back.result)


def test_npz_is_amass_style(tmp_path: Path) -> None:
    """AMASS readers find poses (T,165) in SMPL-X order, trans, betas, gender, frame rate and model type."""
    t = 4
    motion = full_result(t=t).smplx
    assert motion is not None
    parts = {
        "global_orient": 1.0,
        "body_pose": 2.0,
        "jaw_pose": 3.0,
        "leye_pose": 4.0,
        "reye_pose": 5.0,
        "left_hand_pose": 6.0,
        "right_hand_pose": 7.0,
    }
    for name, value in parts.items():
        getattr(motion, name)[...] = value
    result = Result(meta=ResultMeta("fit", None, {}, "smplx", "male", 25.0, list(range(t))), smplx=motion)
    path = result.save_npz(tmp_path / "amass.npz")
    with np.load(path, allow_pickle=False) as data:
        poses = data["poses"]
        assert poses.shape == (t, 165) and poses.dtype == np.float32
        expected_row = np.concatenate(
            [[1.0] * 3, [2.0] * 63, [3.0] * 3, [4.0] * 3, [5.0] * 3, [6.0] * 45, [7.0] * 45]
        ).astype(np.float32)
        np.testing.assert_array_equal(poses, np.tile(expected_row, (t, 1)))
        np.testing.assert_array_equal(data["trans"], motion.transl)
        np.testing.assert_array_equal(data["betas"], motion.betas)
        assert str(data["gender"]) == "male"
        assert float(data["mocap_frame_rate"]) == 25.0
        assert str(data["surface_model_type"]) == "smplx"
        info = json.loads(str(data["vidrig_info"]))
        assert info["meta"]["method"] == "fit"
        assert all(
            k in {"poses", "trans", "betas", "gender", "mocap_frame_rate", "surface_model_type"}
            or k.startswith("vidrig_")
            for k in data.files
        )


def test_from_poses_splits_columns_back() -> None:
    poses = np.arange(2 * 165, dtype=np.float32).reshape(2, 165)
    motion = SmplxMotion.from_poses(poses, np.zeros((2, 3), np.float32), np.zeros(10, np.float32))
    assert motion.body_pose.shape == (2, 21, 3) and motion.left_hand_pose.shape == (2, 15, 3)
    np.testing.assert_array_equal(motion.jaw_pose[0], [66, 67, 68])
    np.testing.assert_array_equal(motion.right_hand_pose[1, 14], [327, 328, 329])
    np.testing.assert_array_equal(motion.poses(), poses)


def test_save_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    full_result(t=2).save_npz(tmp_path / "a.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_load_rejects_files_that_are_not_results(tmp_path: Path) -> None:
    plain = tmp_path / "plain.npz"
    np.savez(plain, poses=np.zeros((1, 165)))
    with pytest.raises(BadRequest, match="vidrig_info"):
        Result.load_npz(plain)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(BadRequest, match=r"garbage\.npz"):
        Result.load_npz(garbage)
    with pytest.raises(BadRequest, match=r"missing\.npz"):
        Result.load_npz(tmp_path / "missing.npz")


def test_from_arrays_names_what_is_missing() -> None:
    arrays, info = full_result(t=2).to_arrays()
    del arrays["vidrig_transl_c"]
    with pytest.raises(BadRequest, match="vidrig_transl_c"):
        Result.from_arrays(arrays, info)
    with pytest.raises(BadRequest, match="meta"):
        Result.from_arrays({}, {})
