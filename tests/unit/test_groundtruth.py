"""Ground-truth generator maths: BVH parsing, retargeting, synthetic fingers, cameras, contacts."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from benchmarks.data import SHARED_DATA
from benchmarks.groundtruth import fingers, scene
from benchmarks.groundtruth.bvh import forward_kinematics, parse_bvh
from benchmarks.groundtruth.retarget import (
    SMPLX_BONE_CHILD,
    detect_map,
    min_rotation,
    procrustes_rotation,
    retarget,
    smplx_fk,
    two_vector_frame,
)
from protocol.errors import BadRequest, DecodeError
from protocol.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS

DATA = SHARED_DATA
ICLONE = DATA / "cmu_iclone30/002/002_05.bvh"
HAHNE = DATA / "cmu_bvh30/016/16_35.bvh"

_BODY_LEFT = {  # left-side joints; the right side mirrors x
    "hip": (0.06, 0.84, 0.0), "knee": (0.10, 0.46, 0.0), "ankle": (0.09, 0.06, -0.04),
    "foot": (0.12, 0.01, 0.08), "collar": (0.08, 1.34, 0.0), "shoulder": (0.17, 1.37, -0.01),
    "elbow": (0.43, 1.36, -0.03), "wrist": (0.68, 1.37, -0.03), "eye_smplhf": (0.03, 1.58, 0.10),
}
_CENTRE = {"pelvis": (0.0, 0.93, 0.0), "spine1": (0.0, 1.04, -0.01), "spine2": (0.0, 1.17, 0.01),
           "spine3": (0.0, 1.22, 0.02), "neck": (0.0, 1.43, -0.01), "head": (0.0, 1.52, 0.04),
           "jaw": (0.0, 1.51, 0.07)}
_FINGER_BASE = {"index": (0.775, 1.37, 0.0), "middle": (0.78, 1.37, -0.025), "ring": (0.77, 1.37, -0.045),
                "pinky": (0.75, 1.37, -0.065), "thumb": (0.71, 1.35, 0.0)}


def approx_tpose() -> np.ndarray:
    """Joints (55,3) close to the SMPL-X neutral T-pose: metres, Y up, facing +Z, flat hands, palms down."""
    out = np.zeros((NUM_JOINTS, 3))
    for name, p in _CENTRE.items():
        out[JOINT_INDEX[name]] = p
    for side, sx in (("left", 1.0), ("right", -1.0)):
        for name, (x, y, z) in _BODY_LEFT.items():
            out[JOINT_INDEX[f"{side}_{name}"]] = (sx * x, y, z)
        for finger, (x, y, z) in _FINGER_BASE.items():
            step = np.array([0.025, 0.0, 0.02]) if finger == "thumb" else np.array([0.03, 0.0, 0.0])
            for k in range(3):
                px, py, pz = np.array([x, y, z]) + k * step
                out[JOINT_INDEX[f"{side}_{finger}{k + 1}"]] = (sx * px, py, pz)
    return out


def test_parse_both_dialects() -> None:
    ic = parse_bvh(ICLONE)
    assert ic.skeleton.names[0] == "CC_Base_Hip" and len(ic.skeleton.names) == 100
    assert ic.fps == pytest.approx(30.0, abs=0.01) and ic.values.shape[1] == 3 * 100 + 3
    hh = parse_bvh(HAHNE)
    assert len(hh.skeleton.names) == 31 and hh.values.shape[1] == 96
    assert hh.skeleton.parents[hh.skeleton.index("LThumb")] == hh.skeleton.index("LeftHand")
    with pytest.raises(DecodeError):
        hh.skeleton.index("NoSuchJoint")


def test_forward_kinematics_keeps_bone_lengths() -> None:
    m = parse_bvh(ICLONE)
    _, pos = forward_kinematics(m)
    sk = m.skeleton
    for name in ("CC_Base_L_Calf", "CC_Base_R_Forearm", "CC_Base_Head"):
        j = sk.index(name)
        length = np.linalg.norm(pos[:, j] - pos[:, sk.parents[j]], axis=-1)
        np.testing.assert_allclose(length, np.linalg.norm(sk.offsets[j]), rtol=1e-9)
    root_cols = sk.channel_start[0] + np.arange(3)
    np.testing.assert_allclose(pos[:, 0], m.values[:, root_cols] + sk.offsets[0])


def test_malformed_bvh_is_a_decode_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bvh"
    bad.write_text("HIERARCHY\nROOT Hips\n{\nOFFSET 0 0 0\nCHANNELS 3 Xposition Yposition Zposition\n}\n"
                   "MOTION\nFrames: 2\nFrame Time: 0.0333\n0 0 0\n")
    with pytest.raises(DecodeError, match="expected 2 frames"):
        parse_bvh(bad)
    with pytest.raises(DecodeError):
        parse_bvh(tmp_path / "missing.bvh")


def test_rotation_helpers_known_answers() -> None:
    r = min_rotation(np.array([1.0, 0, 0]), np.array([0.0, 1, 0]))
    np.testing.assert_allclose(r, Rotation.from_rotvec([0, 0, np.pi / 2]).as_matrix(), atol=1e-12)
    flip = min_rotation(np.array([0.0, 0, 1]), np.array([0.0, 0, -1]))
    np.testing.assert_allclose(flip @ [0, 0, 1], [0, 0, -1], atol=1e-12)
    frame = two_vector_frame(np.array([0.0, 2, 0]), np.array([1.0, 1, 0]))
    np.testing.assert_allclose(frame, [[0, 1, 0], [1, 0, 0], [0, 0, -1]], atol=1e-12)
    rng = np.random.default_rng(0)
    a = Rotation.random(20, random_state=1).as_matrix()
    c = Rotation.from_rotvec([0.2, -0.4, 1.0]).as_matrix()
    noise = Rotation.from_rotvec(rng.normal(size=(20, 3)) * 1e-3).as_matrix()
    np.testing.assert_allclose(procrustes_rotation(a, a @ c @ noise), c, atol=2e-3)


def test_smplx_fk_at_rest_and_a_bent_elbow() -> None:
    rest = approx_tpose()
    poses = np.zeros((1, 55, 3))
    _, pos = smplx_fk(poses, np.array([[0.0, 0.1, 0.0]]), rest)
    np.testing.assert_allclose(pos[0], rest + np.array([0.0, 0.1, 0.0]), atol=1e-12)
    elbow = JOINT_INDEX["left_elbow"]
    poses[0, elbow] = [0.0, -np.pi / 2, 0.0]  # left forearm (+X) turns to +Z
    _, pos = smplx_fk(poses, np.zeros((1, 3)), rest)
    wrist = pos[0, JOINT_INDEX["left_wrist"]] - pos[0, elbow]
    forearm = rest[JOINT_INDEX["left_wrist"]] - rest[elbow]
    np.testing.assert_allclose(wrist, [0.0, forearm[1], forearm[0]], atol=1e-12)
    assert PARENTS[JOINT_INDEX["left_wrist"]] == elbow


@pytest.mark.parametrize("path", [ICLONE, HAHNE])
def test_retarget_reproduces_bvh_limb_directions(path: Path) -> None:
    m = parse_bvh(path)
    rest = approx_tpose()
    res = retarget(m, rest, frames=slice(1, 41))
    assert res.poses.shape == (40, 55, 3) and res.fps == pytest.approx(30.0)
    assert 0.6 < res.scale < 1.2
    jm = detect_map(m)
    _, gpos = forward_kinematics(m)
    gpos = gpos[1:41] * jm.unit
    _, pos = smplx_fk(res.poses, res.transl, rest)
    names = m.skeleton.names
    for side in ("left", "right"):
        for joint in ("hip", "knee", "shoulder", "elbow"):
            name = f"{side}_{joint}"
            src, dst = jm.bones[name]
            want = gpos[:, names.index(dst)] - gpos[:, names.index(src)]
            got = pos[:, JOINT_INDEX[SMPLX_BONE_CHILD[name]]] - pos[:, JOINT_INDEX[name]]
            cos = np.sum(want * got, -1) / np.linalg.norm(want, axis=-1) / np.linalg.norm(got, axis=-1)
            assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 1.0, name
    # the pelvis follows the scaled BVH root
    root = gpos[:, names.index(jm.joints["pelvis"])] * res.scale
    np.testing.assert_allclose(pos[:, 0], root, atol=1e-9)
    assert np.abs(res.poses[:, JOINT_INDEX["left_index1"]:]).max() == 0.0


def test_retarget_rejects_bad_rest() -> None:
    with pytest.raises(BadRequest):
        retarget(parse_bvh(HAHNE), np.zeros((22, 3)))


def test_finger_angles_deterministic_within_range_and_coupled() -> None:
    a = fingers.sample_finger_angles(300, 30.0, seed=5)
    b = fingers.sample_finger_angles(300, 30.0, seed=5)
    c = fingers.sample_finger_angles(300, 30.0, seed=6)
    for k in a.angles:
        np.testing.assert_array_equal(a.angles[k], b.angles[k])
    assert any(not np.allclose(a.angles[k], c.angles[k]) for k in a.angles)
    for f in fingers.LONG_FINGERS:
        np.testing.assert_allclose(a.angles[f"{f}_dip_flex"], a.angles[f"{f}_pip_flex"] * 2 / 3)
        lo, hi = np.radians(fingers.ROM_DEG["pip_flex"])
        assert a.angles[f"{f}_pip_flex"].min() >= lo and a.angles[f"{f}_pip_flex"].max() <= hi
        lo, hi = np.radians(fingers.ROM_DEG[f"abd_{f}"])
        assert a.angles[f"{f}_mcp_abd"].min() >= lo and a.angles[f"{f}_mcp_abd"].max() <= hi


def test_band_limited_process_has_no_fast_content() -> None:
    x = fingers.band_limited(np.random.default_rng(0), 3000, 30.0, 1.0)
    assert x.std() == pytest.approx(1.0) and abs(x.mean()) < 1e-9
    power = np.abs(np.fft.rfft(x)) ** 2
    freq = np.fft.rfftfreq(x.size, 1 / 30.0)
    assert power[freq > 3.0].sum() / power.sum() < 1e-3


def test_finger_flexion_curls_towards_the_palm() -> None:
    rest = approx_tpose()
    left, right = fingers.synthetic_hands(90, 30.0, rest, seed=3)
    poses = np.zeros((90, 55, 3))
    poses[:, 25:40], poses[:, 40:55] = left, right
    _, pos = smplx_fk(poses, np.zeros((90, 3)), rest)
    for side in ("left", "right"):
        tip = pos[:, JOINT_INDEX[f"{side}_middle3"]] - pos[:, JOINT_INDEX[f"{side}_middle1"]]
        assert (tip[:, 1] < 0).mean() > 0.9  # palms face -Y: flexed fingers point down
        bone = np.linalg.norm(pos[:, JOINT_INDEX[f"{side}_index2"]] - pos[:, JOINT_INDEX[f"{side}_index1"]], axis=-1)
        np.testing.assert_allclose(bone, 0.03, atol=1e-9)


def test_hand_bmc_check_reads_the_tables() -> None:
    rep = fingers.check_hand_bmc(approx_tpose(), "left")
    assert rep.root_angles.shape == (4,) and rep.root_angles_ok.all()
    assert rep.bone_ratios.shape == (5, 2)


def test_camera_conventions() -> None:
    k = scene.intrinsics(480, 360, 90.0)
    assert k[0, 0] == pytest.approx(240.0)
    r, t = scene.look_at(np.array([0.0, 1.0, 5.0]), np.array([0.0, 1.0, 0.0]))
    cam = scene.CameraTrack(k, r[None], t[None], 480, 360)
    pts = np.array([[[0.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 2.0, 0.0]]])
    uv, depth = scene.project(pts, cam)
    np.testing.assert_allclose(uv[0, 0], [240, 180], atol=1e-9)
    assert uv[0, 1, 0] > 240  # world +X is to the right when looking down -Z
    assert uv[0, 2, 1] < 180  # world up is image up
    np.testing.assert_allclose(depth[0], 5.0)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)


def test_foot_contacts_planted_and_swinging() -> None:
    joints = np.zeros((30, 55, 3))
    j = JOINT_INDEX
    joints[:, j["left_ankle"]] = [0.1, 0.08, 0.0]
    joints[:, j["left_foot"]] = [0.1, 0.02, 0.1]
    joints[:, j["right_ankle"], 2] = np.linspace(0, 1.5, 30)  # 1.5 m/s swing
    joints[:, j["right_ankle"], 1] = 0.08
    joints[:, j["right_foot"], 1] = 0.02
    joints[15:, j["right_foot"], 1] += 0.02 * np.arange(15)  # toe off at frame 15, rising 0.6 m/s
    c = scene.foot_contacts(joints, 30.0)
    assert c.shape == (30, 4)
    assert c[:, 0].all() and c[:, 1].all() and not c[:, 2].any()
    assert c[:14, 3].all() and not c[16:, 3].any()


def test_hand_visibility_combines_image_and_occlusion() -> None:
    k = scene.intrinsics(100, 100, 90.0)
    r, t = scene.look_at(np.array([0.0, 0.0, 2.0]), np.zeros(3))
    cam = scene.CameraTrack(k, np.repeat(r[None], 2, 0), np.repeat(t[None], 2, 0), 100, 100)
    joints = np.zeros((2, 55, 3))
    joints[1, list(scene.HAND_WITH_WRIST[1])] = [10.0, 0.0, 0.0]  # right hand far outside the image
    unocc = np.ones((2, 2, 16), dtype=bool)
    unocc[0, 0] = False  # left hand fully occluded on frame 0
    per_joint, per_hand = scene.hand_visibility(joints, cam, unocc)
    assert per_hand.tolist() == [[False, True], [True, False]]
    assert per_joint.shape == (2, 2, 16)


def test_face_regions_from_dominant_joint() -> None:
    rest = approx_tpose()
    chosen = [JOINT_INDEX[n] for n in ("spine2", "left_knee", "left_foot", "left_index2")]
    verts = rest[chosen]
    idx = np.array([[j, 0] for j in chosen])
    w = np.array([[1.0, 0.0]] * 4)
    faces = np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3]])
    region, hand = scene.face_regions(faces, idx, w, verts, rest)
    assert region.tolist() == [scene.REGION_SHIRT, scene.REGION_TROUSERS, scene.REGION_SHOES, scene.REGION_SKIN]
    assert hand.tolist() == [0, 0, 0, 1]


def test_unknown_setup_is_rejected() -> None:
    with pytest.raises(BadRequest):
        scene.make_camera("drone", np.zeros((2, 55, 3)), np.tile(np.eye(3), (2, 55, 1, 1)),  # type: ignore[arg-type]
                          np.zeros((2, 4, 3)), 64, 48)


def test_amass_fields_follow_the_poses_layout() -> None:
    from benchmarks.groundtruth.generate import Motion, amass_fields

    rng = np.random.default_rng(0)
    poses = rng.normal(size=(3, 55, 3))
    motion = Motion(poses, rng.normal(size=(3, 3)), np.zeros(10), np.zeros((3, 55, 3)),
                    np.tile(np.eye(3), (3, 55, 1, 1)), np.zeros((3, 4, 3)), 30.0)
    f = amass_fields(motion)
    assert f["poses"].shape == (3, 165)
    np.testing.assert_allclose(f["global_orient"], poses[:, 0], rtol=1e-6)
    np.testing.assert_allclose(f["body_pose"], poses[:, 1:22], rtol=1e-6)
    np.testing.assert_allclose(f["jaw_pose"], poses[:, 22], rtol=1e-6)
    np.testing.assert_allclose(f["left_hand_pose"], poses[:, 25:40], rtol=1e-6)
    np.testing.assert_allclose(f["right_hand_pose"], poses[:, 40:55], rtol=1e-6)
    np.testing.assert_array_equal(f["trans"], f["transl"])


def test_regenerating_some_clips_keeps_the_others_in_the_index(tmp_path: Path) -> None:
    from benchmarks.groundtruth.generate import RenderSettings, _merge_entries

    s = RenderSettings()
    index = tmp_path / "index.json"
    (tmp_path / "jump_static.mp4").write_bytes(b"x")
    old = [{"name": "jump_static", "bytes": {"jump_static.mp4": 1}},
           {"name": "walk_pan", "bytes": {"walk_pan.mp4": 1}}]  # its file is gone: dropped
    index.write_text(json.dumps({"suite": "full", "settings": asdict(s), "clips": old}))
    new = [{"name": "walk_static", "bytes": {}}, {"name": "jump_static", "bytes": {}, "fresh": True}]
    merged = _merge_entries(index, "full", s, new)
    assert [e["name"] for e in merged] == ["walk_static", "jump_static"]  # suite order, new entries win
    assert merged[1].get("fresh")
    assert [e["name"] for e in _merge_entries(index, "full", RenderSettings(width=64), new[:1])] == ["walk_static"]
    kept = _merge_entries(index, "full", RenderSettings(threads=s.threads + 1), new[:1])  # same pixels, other speed
    assert [e["name"] for e in kept] == ["walk_static", "jump_static"]
