"""Observations: contract shapes and dtypes, masking of missing frames, and the stage-cache round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.perception import Observations, PerceptionSettings


def _filled(t: int = 5) -> Observations:
    rng = np.random.default_rng(0)
    obs = Observations.empty(t, fps=29.97, width=640, height=480)
    obs.frame_indices[:] = np.arange(10, 10 + t)
    obs.times[:] = np.arange(t) / 29.97
    obs.body_kp2d[:] = rng.random(obs.body_kp2d.shape)
    obs.hand_kp3d[:] = rng.random(obs.hand_kp3d.shape)
    obs.body_valid[1:3] = True
    obs.hand_valid[2, 1] = True
    obs.bbox[1] = [1, 2, 3, 4]
    return obs


def test_empty_is_fully_masked() -> None:
    obs = Observations.empty(4, 25.0, 320, 240)
    assert len(obs) == 4
    assert not obs.body_valid.any() and not obs.hand_valid.any()
    assert (obs.body_kp2d[..., 2] == 0).all() and (obs.hand_kp2d[..., 2] == 0).all()
    assert np.isnan(obs.bbox).all()
    assert obs.body_kp2d.shape == (4, 33, 3) and obs.body_kp3d.shape == (4, 33, 4)
    assert obs.hand_kp2d.shape == (4, 2, 21, 3) and obs.hand_kp3d.shape == (4, 2, 21, 3)


def test_dtypes_follow_the_contract() -> None:
    obs = _filled()
    assert obs.frame_indices.dtype == np.int64 and obs.times.dtype == np.float64
    for name in ("body_kp2d", "body_kp3d", "hand_kp2d", "hand_kp3d", "bbox"):
        assert getattr(obs, name).dtype == np.float32
    assert obs.body_valid.dtype == np.bool_ and obs.hand_valid.dtype == np.bool_


def test_round_trip_through_npz(tmp_path: Path) -> None:
    obs = _filled()
    arrays = obs.to_arrays()
    assert all(isinstance(v, np.ndarray) for v in arrays.values())
    assert arrays["fps"].shape == () and arrays["width"].shape == ()
    np.savez(tmp_path / "obs.npz", **arrays)
    with np.load(tmp_path / "obs.npz") as data:
        back = Observations.from_arrays(dict(data))
    assert (back.fps, back.width, back.height) == (obs.fps, 640, 480)
    for key, value in arrays.items():
        np.testing.assert_array_equal(back.to_arrays()[key], value)


def test_wrong_shape_is_rejected() -> None:
    arrays = _filled().to_arrays()
    arrays["hand_kp2d"] = arrays["hand_kp2d"][:, :1]
    with pytest.raises(ValueError, match="hand_kp2d"):
        Observations.from_arrays(arrays)


def test_missing_key_is_named() -> None:
    arrays = _filled().to_arrays()
    del arrays["bbox"]
    with pytest.raises(ValueError, match="bbox"):
        Observations.from_arrays(arrays)


def test_settings_to_dict_is_plain() -> None:
    d = PerceptionSettings().to_dict()
    assert d["search_zooms"] == [2.0, 3.0]
    assert PerceptionSettings(**{**d, "search_zooms": tuple(d["search_zooms"])}) == PerceptionSettings()


def test_a_palm_interval_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="palm_interval"):
        PerceptionSettings(palm_interval=0)


def test_an_outsized_hand_limit_of_zero_is_refused() -> None:
    """Every hand would then prove its body false."""
    with pytest.raises(ValueError, match="outsized_hand"):
        PerceptionSettings(outsized_hand=0.0)
