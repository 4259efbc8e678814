"""Locate the real test clips that Debian's opencv-doc package ships (vtest.avi, Megamind.avi)."""

from __future__ import annotations

from pathlib import Path

import pytest

_ROOTS = (Path("/usr/share/doc/opencv-doc/examples/data"), Path("/usr/share/opencv4/samples/data"))


def opencv_clip(name: str) -> Path:
    """Path of an opencv-doc sample clip; fails the test with install instructions when it is absent."""
    for root in _ROOTS:
        path = root / name
        if path.is_file():
            return path
    pytest.fail(
        f"Test clip {name} not found in {', '.join(map(str, _ROOTS))}. "
        "Install it with: apt-get install -y opencv-doc"
    )


def vtest() -> Path:
    """OpenCV's vtest.avi: pedestrians far from a static camera, 768x576 at 10 fps."""
    return opencv_clip("vtest.avi")


def megamind() -> Path:
    """OpenCV's Megamind.avi: a cartoon character close to the camera, 720x528 at 23.976 fps."""
    return opencv_clip("Megamind.avi")
