"""The whole-body solve's problem: coarse phases score exactly their own frames, and the held movers agree with
the full rig on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.fitting.limits import limit_table
from backend.fitting.priors import relaxed_hand_pose
from backend.fitting.rig import LandmarkRig
from backend.fitting.wholebody.problem import FrameData, WholeBodyProblem
from backend.fitting.wholebody.settings import FitSettings
from backend.geometry.rotations import axis_angle_to_matrix
from backend.models.loader import load_body_model

T = 12
PINNED = (3, 4)


@pytest.fixture(scope="module")
def rig() -> LandmarkRig:
    """The default model's landmark rig."""
    torch.set_num_threads(1)
    return LandmarkRig(load_body_model("default"))


def _frames(seed: int = 0) -> FrameData:
    """Random but well-formed per-frame inputs of a 12-frame clip at 30 fps, frames 3 and 4 pinned."""
    g = torch.Generator().manual_seed(seed)

    def rnd(*shape: int, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    pinned = torch.zeros(T, dtype=torch.bool)
    pinned[list(PINNED)] = True
    r_w2c = axis_angle_to_matrix(rnd(T, 3, scale=0.1))
    contacts = (torch.rand(T, 4, generator=g) > 0.5).float()
    return FrameData(
        init_aa=rnd(T, 55, 3, scale=0.3), root_pos0=rnd(T, 3, scale=0.1), kp2d=rnd(T, 75, 2, scale=40.0) + 300.0,
        conf2d=torch.rand(T, 33, generator=g), hconf=torch.rand(T, 42, generator=g),
        obs_rel=torch.cat([rnd(T, 33, 3, scale=0.3), rnd(T, 42, 3, scale=0.05)], dim=1),
        vis3d=torch.rand(T, 33, generator=g),
        hweight=torch.rand(T, 2, 21, generator=g),
        hand_3d_scale=1.0 + 5.0 * torch.rand(T, 2, 1, generator=g), hand_prior_w=1.0 + torch.rand(T, 2, generator=g),
        r_w2c=r_w2c, t_w2c=torch.tensor([0.0, 0.5, 3.0]).expand(T, 3).contiguous(),
        contacts=contacts, grounded=contacts * (torch.rand(T, 4, generator=g) > 0.5), ground=rnd(T, scale=0.05) - 0.9,
        pinned=pinned,
        pin_rot=axis_angle_to_matrix(rnd(len(PINNED), 55, 3, scale=0.3)), fps=30.0)


def _problem(rig: LandmarkRig, data: FrameData, step: int) -> WholeBodyProblem:
    relaxed = torch.stack([relaxed_hand_pose("left"), relaxed_hand_pose("right")])
    return WholeBodyProblem(rig, data, FitSettings(), k=torch.tensor([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]]),
                            relaxed=relaxed, limits=limit_table("cpu", torch.float32), step=step)


def test_rows_keep_their_pins_and_the_frame_rate_of_their_spacing() -> None:
    data = _frames()
    odd = data.rows(np.arange(1, T, 2))
    assert odd.n_frames == T // 2 and odd.fps == pytest.approx(15.0)
    assert odd.pinned.nonzero().ravel().tolist() == [1]  # frame 3
    assert torch.equal(odd.pin_rot, data.pin_rot[:1])
    even = data.rows(np.arange(0, T, 2))
    assert even.pinned.nonzero().ravel().tolist() == [2] and torch.equal(even.pin_rot, data.pin_rot[1:])
    assert torch.equal(even.kp2d, data.kp2d[::2]) and torch.equal(even.contacts, data.contacts[::2])


def test_a_coarse_phase_scores_its_frames_like_a_clip_of_only_those(rig: LandmarkRig) -> None:
    data = _frames()
    problem = _problem(rig, data, step=2)
    for phase in range(2):
        alone = _problem(rig, data.rows(np.arange(phase, T, 2)), step=1)
        with torch.no_grad():
            total, terms = problem.loss(problem.posed, phase)
            total_alone, terms_alone = alone.loss(alone.posed)
        assert terms.keys() == terms_alone.keys() and "pins" in terms
        for name, value in terms.items():
            assert value == pytest.approx(terms_alone[name], rel=1e-5, abs=1e-9), name
        assert float(total) == pytest.approx(float(total_alone), rel=1e-5)


def test_the_root_mover_agrees_with_the_full_rig_on_every_phase(rig: LandmarkRig) -> None:
    problem = _problem(rig, _frames(1), step=3)
    g = torch.Generator().manual_seed(2)
    for name in ("d_body", "d_hands", "d_jaw", "d_root", "d_pos"):
        offsets = getattr(problem, name)
        offsets.copy_(torch.randn(offsets.shape, generator=g) * 0.1)
    problem.betas.copy_(torch.randn(10, generator=g))
    mover = problem.root_mover()
    problem.d_root.add_(0.05)  # the mover holds the joints below the root, not the root itself
    problem.d_pos.add_(0.02)
    with torch.no_grad():
        for phase in (0, 1, 2, None):
            aa, rot, out = mover(phase)
            aa_full, rot_full, out_full = problem.posed(phase)
            assert torch.allclose(aa, aa_full, atol=1e-6) and torch.allclose(rot, rot_full, atol=1e-5)
            assert torch.allclose(out.landmarks, out_full.landmarks, atol=1e-5)
            assert torch.allclose(out.joints, out_full.joints, atol=1e-5)
    with pytest.raises(ValueError, match="every frame"):
        problem.legs_mover()(0)
