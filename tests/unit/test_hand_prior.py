"""Hand motion prior: canonical skeleton vs Hand-BMC, synthetic generator, AMASS reader, model, training, checkpoint."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from backend.geometry.rotations import geodesic_angle
from backend.priors.hand_motion import skeleton as sk
from backend.priors.hand_motion.amass import read_amass_dir, read_amass_file, resample
from backend.priors.hand_motion.data import WindowSampler
from backend.priors.hand_motion.model import (
    DEFAULT_CHECKPOINT,
    HandMotionPrior,
    PriorConfig,
    load_hand_prior,
    save_checkpoint,
)
from backend.priors.hand_motion.synthetic import SHAPES, generate_dataset, min_jerk, shape_angles
from backend.priors.hand_motion.train import TrainConfig, round_trip_error, train_hand_prior
from benchmarks.data import SHARED_DATA
from protocol.errors import BadRequest, ModelMissing

BMC = SHARED_DATA / "hand_bmc"
_BMC_PARENTS = [0, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def _rest_bones() -> np.ndarray:
    _, lm = sk.hand_fk_aa(torch.zeros(15, 3, dtype=torch.float64))
    lm = lm.numpy()
    return np.array([lm[k + 1] - lm[_BMC_PARENTS[k + 1]] for k in range(20)])


def test_canonical_hand_within_hand_bmc_bone_lengths_and_root_angles() -> None:
    bones = _rest_bones()
    length = np.linalg.norm(bones, axis=1) / np.linalg.norm(bones[8])
    assert np.all(length >= np.load(BMC / "bone_len_min.npy") - 1e-6)
    assert np.all(length <= np.load(BMC / "bone_len_max.npy") + 1e-6)
    roots = [0, 4, 8, 12, 16]
    phi = [math.acos(bones[a] @ bones[b] / np.linalg.norm(bones[a]) / np.linalg.norm(bones[b]))
           for a, b in itertools.pairwise(roots)]
    assert np.all(np.array(phi) >= np.load(BMC / "PHI_min.npy"))
    assert np.all(np.array(phi) <= np.load(BMC / "PHI_max.npy"))


def test_anatomical_axes_orthonormal_and_decomposition_exact() -> None:
    for triple in sk.JOINT_AXES:
        np.testing.assert_allclose(triple @ triple.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(triple) > 0
    x = torch.randn(4, 15, 3, dtype=torch.float64)
    torch.testing.assert_close(sk.from_anatomical(sk.to_anatomical(x)), x)


def test_flexion_curls_fingers_to_the_palm_and_mirror_is_involution() -> None:
    _, rest = sk.hand_fk_aa(torch.zeros(15, 3, dtype=torch.float64))
    ang = torch.zeros(15, 3, dtype=torch.float64)
    ang[0:3, 0] = math.radians(40)  # index MCP, PIP, DIP flexion
    _, bent = sk.hand_fk_aa(sk.from_anatomical(ang))
    assert bent[8, 1] < rest[8, 1] - 0.05  # index tip moved palmar (-Y for the right hand)
    assert bent[12].allclose(rest[12])  # middle tip untouched
    p = torch.randn(3, 15, 3)
    torch.testing.assert_close(sk.mirror_hand_pose(sk.mirror_hand_pose(p)), p)


def test_limit_violation_zero_inside_positive_outside() -> None:
    inside = torch.as_tensor(np.radians(sk.LIMITS_DEG.mean(-1)))
    assert float(sk.limit_violation(sk.from_anatomical(inside)).max()) < 1e-9
    outside = inside.clone()
    outside[4, 0] = math.radians(sk.LIMITS_DEG[4, 0, 1] + 20.0)  # middle PIP 20 deg past full flexion
    v = sk.limit_violation(sk.from_anatomical(outside))
    assert v[4, 0] == pytest.approx(math.radians(20.0), abs=1e-6)


def test_min_jerk_profile() -> None:
    np.testing.assert_allclose(min_jerk(np.array([-1.0, 0.0, 0.5, 1.0, 2.0])), [0, 0, 0.5, 1, 1])
    h = 1e-4
    assert abs((min_jerk(np.array([h])) - min_jerk(np.array([0.0])))[0] / h) < 1e-6  # zero start velocity


def test_synthetic_motion_deterministic_within_limits_and_varied() -> None:
    a = generate_dataset(3, 150, seed=5)
    b = generate_dataset(3, 150, seed=5)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    x = torch.as_tensor(np.stack(a), dtype=torch.float64)
    assert float(sk.limit_violation(x).max()) < 1e-6
    assert x.shape == (3, 150, 15, 3)
    assert float(x.std(dim=1).mean()) > 0.05  # fingers actually move
    speed = np.abs(np.diff(np.stack(a), axis=1)).max() * 30.0
    assert speed < 25.0  # rad/s, bounded by the minimum-jerk transitions
    assert not np.allclose(a[0], generate_dataset(1, 150, seed=6)[0])


def test_library_shapes_differ_as_named() -> None:
    fist, flat = shape_angles(SHAPES["fist"]), shape_angles(SHAPES["flat"])
    point = shape_angles(SHAPES["point"])
    assert fist[0:9, 0].min() > math.radians(60)
    assert np.abs(flat).max() <= math.radians(5)  # a flat hand, DIPs slightly hyperextended
    assert point[0, 0] == 0.0 and point[3, 0] > math.radians(60)  # index straight, middle curled


def _write_amass(path: Path, cols: int, fps: float, moving: str, frames: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    poses = np.zeros((frames, cols), np.float32)
    start = {156: (66, 111), 165: (75, 120)}[cols][0 if moving == "left" else 1]
    t = np.arange(frames)[:, None] / fps
    poses[:, start:start + 45] = 0.5 * np.sin(2 * np.pi * 0.5 * t + rng.uniform(0, 6, 45))
    key = "mocap_frame_rate" if cols == 165 else "mocap_framerate"
    np.savez(path, poses=poses, **{key: np.array(fps)})
    return poses[:, start:start + 45].reshape(frames, 15, 3)


def test_amass_reader_resamples_mirrors_and_skips_still_hands(tmp_path: Path) -> None:
    right = _write_amass(tmp_path / "a.npz", 165, 60.0, "right")
    (tmp_path / "sub").mkdir()
    left = _write_amass(tmp_path / "sub" / "b.npz", 156, 30.0, "left")
    clips = read_amass_dir(tmp_path)
    assert [c.source.rsplit(":", 1)[1] for c in clips] == ["right", "left"]
    assert clips[0].pose.shape == (30, 15, 3)
    np.testing.assert_allclose(clips[0].pose, right[::2], atol=1e-5)
    np.testing.assert_allclose(clips[1].pose, sk.mirror_hand_pose(left), atol=1e-6)
    np.savez(tmp_path / "bad.npz", poses=np.zeros((10, 99)), mocap_framerate=np.array(30.0))
    with pytest.raises(BadRequest, match="expected"):
        read_amass_file(tmp_path / "bad.npz")
    with pytest.raises(BadRequest, match="does not exist"):
        read_amass_dir(tmp_path / "nowhere")


def test_resample_slerps_between_frames() -> None:
    pose = np.zeros((2, 1, 3), np.float32)
    pose[1, 0, 2] = 1.0
    out = resample(pose, fps=15.0, target=30.0)
    assert out.shape == (3, 1, 3)
    np.testing.assert_allclose(out[1, 0], [0, 0, 0.5], atol=1e-6)


def test_model_decodes_any_times_and_checkpoint_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = PriorConfig(latent=16, width=32, layers=3, enc_channels=(20, 20, 24, 8))
    model = HandMotionPrior(cfg).eval()
    z = torch.randn(2, 16)
    whole = model.decode(z)
    assert whole.shape == (2, 128, 15, 3, 3)
    torch.testing.assert_close(model.decode(z, model.times(40)), whole[:, :40])
    torch.testing.assert_close(whole @ whole.transpose(-1, -2), torch.eye(3).expand_as(whole), atol=1e-5, rtol=0)
    save_checkpoint(model, tmp_path / "p.pt", {"command": "test"})
    loaded = load_hand_prior(tmp_path / "p.pt")
    assert loaded.info["command"] == "test"
    torch.testing.assert_close(loaded.decode(z), whole, atol=2e-2, rtol=0)  # weights stored in float16
    with pytest.raises(ModelMissing, match="not found"):
        load_hand_prior(tmp_path / "missing.pt")


def test_training_is_seeded_and_reproducible(tmp_path: Path) -> None:
    cfg = TrainConfig(steps=3, batch=4, frames_per_window=8, synthetic_clips=6, synthetic_frames=140, val_clips=2,
                      model=PriorConfig(latent=16, width=32, layers=3, enc_channels=(20, 20, 24, 8)))
    r1 = train_hand_prior(cfg, tmp_path / "a.pt", command="x", log=lambda _: None)
    r2 = train_hand_prior(cfg, tmp_path / "b.pt", command="x", log=lambda _: None)
    assert r1.final_losses == r2.final_losses and r1.val_rot_deg == r2.val_rot_deg
    a, b = torch.load(tmp_path / "a.pt")["state"], torch.load(tmp_path / "b.pt")["state"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_committed_prior_round_trip_on_held_out_sequences() -> None:
    prior = load_hand_prior()
    assert DEFAULT_CHECKPOINT.stat().st_size < 8 * 1024 * 1024
    held_out = generate_dataset(12, 192, seed=987_654)  # a seed no training run uses
    windows = WindowSampler(held_out, 128).all_windows(stride=64)
    rot_deg, landmark_mm = round_trip_error(prior, windows)
    assert rot_deg < 10.0  # 8.8 deg when written
    assert landmark_mm < 10.0  # 9.1 mm when written
    flat = torch.eye(3).expand_as(windows)  # far better than the flat hand (42.7 deg)
    assert math.degrees(float(geodesic_angle(flat, windows).mean())) > 4 * rot_deg
