"""Method `hmp`: registration, settings, presets, and a run on simulated observations through a stand-in job."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from backend.eval.metrics import pa_mpjpe
from backend.methods import registry
from backend.methods.base import JobSpec
from backend.methods.hmp.method import HmpMethod
from backend.methods.hmp.settings import HmpSettings
from backend.models.base import HandPose
from backend.models.loader import load_hand_model
from backend.perception.observations import Observations
from backend.presets import get_preset
from backend.priors.hand_motion.simulate import simulate
from backend.settings import resolve
from backend.video.decode import VideoInfo
from protocol.errors import BadRequest, NoPerson

FAST = {"ik_iters": 80, "stage1_iters": 30, "stage2_iters": 60}


class StandInJob:
    """The parts of JobContext that `hmp` uses, over simulated observations and an in-memory stage cache."""

    def __init__(self, obs: Observations, overrides: dict[str, Any]) -> None:
        self.spec = JobSpec(video="clip.mp4", method="hmp", settings={}, preset="hands-closeup")
        self.settings = resolve(HmpSettings, {}, {"camera.focal_px": 900.0, **overrides})
        self.info = VideoInfo(path=Path("clip.mp4"), width=1280, height=720, fps=30.0, n_frames=len(obs),
                              duration=len(obs) / 30.0, rotation=0, codec="h264", variable_frame_rate=False)
        self.video = Path("clip.mp4")
        self.timings: dict[str, float] = {}
        self.cache: dict[str, dict[str, np.ndarray]] = {}
        self.computed: list[str] = []
        self.progress_calls = 0
        self._obs = obs

    def observations(self) -> Observations:
        return self._obs

    def hand_model(self, side: str) -> torch.nn.Module:
        return load_hand_model("default", side)

    def stage(self, name: str, settings: dict[str, Any], compute: Callable[[], Any],
              encode: Callable[[Any], dict[str, np.ndarray]], decode: Callable[[dict[str, np.ndarray]], Any]) -> Any:
        key = name + repr(sorted(settings.items()))
        if key not in self.cache:
            self.computed.append(name)
            self.cache[key] = encode(compute())
        return decode(self.cache[key])

    def progress(self, stage: str, fraction: float, message: str = "") -> None:
        assert 0.0 <= fraction <= 1.0
        self.progress_calls += 1

    def check_cancelled(self) -> None:
        return None


def _observations(n: int) -> tuple[Observations, dict[str, np.ndarray]]:
    obs = Observations.empty(n, 30.0, 1280, 720)
    obs.frame_indices[:] = np.arange(n)
    truth = {}
    for col, side in enumerate(("left", "right")):
        sim = simulate(load_hand_model("default", side), seed=20 + col, n_frames=n, occluded=0.2)
        obs.hand_kp2d[:, col] = sim.track.kp2d
        obs.hand_kp3d[:, col] = sim.track.kp3d
        obs.hand_valid[:, col] = sim.track.valid
        truth[side] = sim.joints
    return obs, truth


def test_hmp_is_registered_and_presets_resolve() -> None:
    entry = registry.get("hmp")
    assert entry.produces == frozenset({"hands", "body", "camera", "scene"})  # body, camera, scene with body=true
    assert entry.settings_type() is HmpSettings
    preset = get_preset("hands-closeup")
    assert preset.method == "hmp" and preset.settings["static_camera"] is True
    with pytest.raises(BadRequest):
        resolve(HmpSettings, {"hands": "three"}, {})
    with pytest.raises(BadRequest):
        resolve(HmpSettings, {"no_such_key": 1}, {})


def test_hmp_run_on_simulated_hands_fills_gaps_and_caches() -> None:
    torch.set_num_threads(1)
    obs, truth = _observations(40)
    job = StandInJob(obs, FAST)
    result = HmpMethod().run(job, job.settings.section("method"))  # type: ignore[arg-type]
    assert set(result.hands) == {"left", "right"}
    assert result.meta.method == "hmp" and result.camera is not None and result.camera.static
    for side, hand in result.hands.items():
        assert hand.hand_pose.shape == (40, 15, 3) and hand.global_orient.shape == (40, 3)
        assert np.isfinite(hand.hand_pose).all() and hand.valid.all()
        model = load_hand_model("default", side)
        with torch.no_grad():
            joints = model(HandPose(torch.as_tensor(hand.global_orient), torch.as_tensor(hand.hand_pose),
                                    torch.as_tensor(hand.betas)[None], torch.as_tensor(hand.transl))).joints.numpy()
        assert float(pa_mpjpe(joints, truth[side]).mean()) < 15.0  # mm, gaps included
    assert job.progress_calls > 0
    HmpMethod().run(job, job.settings.section("method"))  # type: ignore[arg-type]
    assert job.computed == ["hmp"]  # the second run came from the stage cache


def test_hmp_without_hands_says_so() -> None:
    obs = Observations.empty(10, 30.0, 1280, 720)
    job = StandInJob(obs, FAST)
    with pytest.raises(NoPerson, match="hand"):
        HmpMethod().run(job, job.settings.section("method"))  # type: ignore[arg-type]
