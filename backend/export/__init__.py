"""Result exporters: the AMASS-style .npz, BVH of the skeleton, PLY of the scene points."""

from __future__ import annotations

from pathlib import Path

from protocol.result import Result

from .bvh import write_bvh
from .ply import write_ply


def export_all(result: Result, output: Path, *, bvh: bool = False, ply: bool = False) -> list[Path]:
    """Write the result file and the requested companions beside it; returns the paths written."""
    output.parent.mkdir(parents=True, exist_ok=True)
    written = [result.save_npz(output)]
    if bvh:
        written.append(write_bvh(result, output.with_suffix(".bvh")))
    if ply:
        written.append(write_ply(result, output.with_suffix(".ply")))
    return written
