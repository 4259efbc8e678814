"""`vidrig train hand-prior` and `vidrig process --preset hands-closeup` as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.priors.hand_motion.model import load_hand_prior
from protocol.result import Result
from tests.integration.clips import megamind

ROOT = Path(__file__).resolve().parents[2]


def _vidrig(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "backend.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.slow
def test_train_hand_prior_command_writes_a_loadable_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "prior.pt"
    done = _vidrig("train", "hand-prior", "--steps", "3", "--seed", "1", "--threads", "1", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "held-out round trip" in done.stdout
    prior = load_hand_prior(out)
    assert prior.info["command"].startswith("vidrig train hand-prior --steps 3")
    assert prior.info["report"]["steps"] == 3
    bad = _vidrig("train", "hand-prior", "--steps", "1", "--amass", str(tmp_path / "none"), "--out", str(out))
    assert bad.returncode == 2 and "E_BAD_REQUEST" in bad.stderr and "does not exist" in bad.stderr


@pytest.mark.slow
def test_process_hands_closeup_on_a_real_clip(tmp_path: Path) -> None:
    """Megamind.avi (a cartoon close-up): hands found -> a result with hands; none -> a plain E_NO_PERSON."""
    out = tmp_path / "r.npz"
    done = _vidrig("process", str(megamind()), "--preset", "hands-closeup", "--frames", "0:48", "-o", str(out),
                   "--cache", str(tmp_path / "cache"), "--set", "stage2_iters=40", "--set", "stage1_iters=20")
    if done.returncode == 0:
        result = Result.load_npz(out)
        assert result.meta.method == "hmp" and result.hands
        for hand in result.hands.values():
            assert hand.hand_pose.shape == (48, 15, 3)
    else:
        assert done.returncode == 2 and "E_NO_PERSON" in done.stderr, done.stderr


@pytest.mark.slow
def test_process_fullbody_hands_hmp_hangs_the_hands_on_the_body(tmp_path: Path) -> None:
    """The whole-body preset: `fit` body, HMP fingers; the body's hand joints equal the hand model's joints."""
    import torch

    from backend.models.base import BodyPose, HandPose
    from backend.models.loader import load_body_model, load_hand_model
    from protocol.skeleton import JOINT_INDEX, LEFT_HAND_JOINTS, RIGHT_HAND_JOINTS

    out = tmp_path / "r.npz"
    done = _vidrig("process", str(megamind()), "--preset", "fullbody-hands-hmp", "--frames", "0:48", "-o", str(out),
                   "--cache", str(tmp_path / "cache"), "--set", "stage2_iters=40")
    if done.returncode != 0:
        assert done.returncode == 2 and "E_NO_PERSON" in done.stderr, done.stderr
        return
    result = Result.load_npz(out)
    sm = result.smplx
    assert sm is not None and result.meta.method == "hmp"
    t = sm.num_frames
    with torch.no_grad():
        body = load_body_model("default")(BodyPose.from_full_pose(
            torch.as_tensor(sm.poses()).reshape(t, 55, 3), betas=torch.as_tensor(sm.betas)[None],
            transl=torch.as_tensor(sm.transl)))
        for side, fingers in (("left", LEFT_HAND_JOINTS), ("right", RIGHT_HAND_JOINTS)):
            if side not in result.hands:
                continue
            h = result.hands[side]
            np.testing.assert_array_equal(getattr(sm, f"{side}_hand_pose"), h.hand_pose)
            hand = load_hand_model("default", side)(HandPose(
                torch.as_tensor(h.global_orient), torch.as_tensor(h.hand_pose), torch.as_tensor(h.betas)[None],
                torch.as_tensor(h.transl)))
            idx = [JOINT_INDEX[f"{side}_wrist"], *fingers]
            assert float((body.joints[:, idx] - hand.joints).norm(dim=-1).max()) < 1e-3  # metres
