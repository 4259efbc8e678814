"""The `fit` method through the real pipeline on a real clip: perception, camera, solve, cache, refine, file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from backend.cache.stage_cache import StageCache
from backend.pipeline import make_spec, run_job
from protocol.result import Result
from protocol.skeleton import JOINT_INDEX
from tests.integration.clips import megamind

pytestmark = pytest.mark.slow


def test_fit_end_to_end_with_cache_and_refine(tmp_path: Path) -> None:
    spec = make_spec(str(megamind()), preset="preview-fast", frames=[0, 24])
    cache = StageCache(tmp_path / "cache")
    events: list[tuple[str, float, str]] = []
    result, ctx = run_job(spec, cache, sink=lambda stage, frac, msg, eta: events.append((stage, frac, msg)))

    t = 24
    motion = result.smplx
    assert motion is not None and motion.num_frames == t
    assert result.meta.method == "fit" and result.meta.body_model == "default"
    assert result.meta.frame_indices == list(range(t))
    for name in ("global_orient", "body_pose", "left_hand_pose", "transl", "global_orient_c", "transl_c"):
        assert np.isfinite(getattr(motion, name)).all(), name
    assert motion.body_pose.shape == (t, 21, 3) and motion.betas.shape == (10,)
    assert result.camera is not None and result.camera.R_w2c.shape == (t, 3, 3) and result.camera.scale_known
    assert result.confidence is not None and result.confidence.shape == (t, 55)
    assert result.confidence.min() >= 0.0 and result.confidence.max() <= 1.0
    assert result.contacts is not None and result.contacts.shape == (t, 4)
    assert result.rest is not None and result.rest.joints.shape == (55, 3)
    assert any(stage == "fit" and msg.startswith("iteration") for stage, _, msg in events)
    assert "fit" in ctx.timings

    path = result.save_npz(tmp_path / "take.npz")
    back = Result.load_npz(path)
    assert np.allclose(back.smplx.poses(), motion.poses())

    again, ctx2 = run_job(spec, cache)
    assert {"perception", "camera", "fit"} <= set(ctx2.cached_stages)
    assert np.allclose(again.smplx.poses(), motion.poses())

    pinned = motion.poses()[[5]].reshape(1, 55, 3).copy()
    pinned[0, JOINT_INDEX["right_elbow"]] = [0.0, 1.5, 0.0]
    pins = tmp_path / "pins.npz"
    np.savez(pins, pin_frames=np.array([5]), pin_poses=pinned)
    refined, ctx3 = run_job(replace(spec, pins=str(pins)), cache)
    assert "fit" not in ctx3.cached_stages
    # another perception setting re-runs perception and the fit on it; the camera (video only) stays cached
    tweaked = make_spec(str(megamind()), preset="preview-fast", frames=[0, 24],
                        overrides={"perception.min_body_visibility": 0.31})
    _, ctx4 = run_job(tweaked, cache)
    assert ctx4.cached_stages == ["camera"], ctx4.cached_stages
    assert np.allclose(refined.smplx.body_pose[5, JOINT_INDEX["right_elbow"] - 1], [0.0, 1.5, 0.0], atol=0.15)
