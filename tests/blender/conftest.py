"""Fixtures for tests that run inside Blender (the bpy module): build the extension zip and install it headless.

Run with the bpy interpreter: `/tmp/bpyenv/bin/python -m pytest tests/blender -q` (or .venv-blender).
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Blender's user folders (extension repos, installed wheels) go to a scratch folder, never the user's home.
_SCRATCH = Path(tempfile.mkdtemp(prefix="vidrig_blender_tests_"))
os.environ["BLENDER_USER_RESOURCES"] = str(_SCRATCH / "resources")
for path in (str(ROOT), str(Path(__file__).parent)):
    if path not in sys.path:
        sys.path.insert(0, path)

import bpy  # noqa: E402

import build_addon  # noqa: E402


@pytest.fixture(scope="session")
def built_zip() -> tuple[Path, bool]:
    """The extension zip built from the working tree, and whether it carries the pyzmq wheels.

    Wheels come from PyPI into build/wheel_cache on first use; offline without a cache the zip is built without them.
    """
    out = _SCRATCH / "dist"
    try:
        return build_addon.build(out, ROOT / "build" / "wheel_cache", with_wheels=True), True
    except build_addon.BuildError:
        return build_addon.build(out, ROOT / "build" / "wheel_cache", with_wheels=False), False


@pytest.fixture(scope="session")
def addon(built_zip: tuple[Path, bool]) -> Iterator[str]:
    """The module name of the installed and enabled add-on (bl_ext.vidrig_tests.vidrig)."""
    module = build_addon.install_into_blender(built_zip[0], _SCRATCH / "repo", "vidrig_tests")
    yield module
    import addon_utils

    addon_utils.disable(module)


@pytest.fixture
def clean(addon: str) -> Iterator[object]:
    """An empty scene with the add-on enabled; yields the add-on package."""
    import addon_utils

    if addon not in bpy.context.preferences.addons:
        addon_utils.enable(addon, default_set=True)
    bpy.ops.wm.read_homefile(use_empty=True)
    package = importlib.import_module(addon)
    yield package
    package.session.shutdown()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the scratch folder (built zip, extension repository, installed wheels)."""
    shutil.rmtree(_SCRATCH, ignore_errors=True)
