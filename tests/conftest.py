"""Shared pytest configuration and fixtures: a test clip and one real `vidrig serve` subprocess for the session.

The Blender tests run only under the bpy interpreter (tests/blender).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.support.server import ServerProcess

# The root conftest is also loaded under Blender's bpy interpreter (tests/blender), which lacks the backend's
# packages (PyAV): fixtures import their helpers when they run, never at module load.
collect_ignore = ["blender"]

# The session server refuses client messages over this many bytes (the fuzz tests probe the limit).
SMALL_MAX_MESSAGE_BYTES = 64 * 1024
CLIP_FRAMES = 24


@pytest.fixture(scope="session")
def test_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-frame 64x48 MPEG-4 clip at 24 fps."""
    from tests.support.server import write_test_clip

    return write_test_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", n_frames=CLIP_FRAMES)


@pytest.fixture(scope="session")
def preset_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A preset folder with `counting` (the test method, slowed down a little) for VIDRIG_PRESETS."""
    folder = tmp_path_factory.mktemp("presets")
    (folder / "counting.toml").write_text(
        'method = "testcount"\ndescription = "test preset"\n[settings]\ndelay = 0.001\n'
    )
    return folder


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, preset_folder: Path) -> Iterator[ServerProcess]:
    """One `vidrig serve` subprocess on a free loopback port, shared by the integration tests of a session."""
    from tests.support.server import ServerProcess

    proc = ServerProcess(
        tmp_path_factory.mktemp("server"),
        args=["--max-message-bytes", str(SMALL_MAX_MESSAGE_BYTES)],
        env={"VIDRIG_PRESETS": str(preset_folder)},
    )
    proc.start()
    yield proc
    code = proc.stop()
    assert code == 0, f"the server did not stop cleanly (exit {code}):\n{proc.log()}"
