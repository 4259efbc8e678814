"""Bake a VidRig result file into a .blend with the add-on itself, headless (run with .venv-blender's Python).

Usage: .venv-blender/bin/python scripts/bake_blend.py RESULT.npz OUT.blend [--video CLIP.mp4]
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Build the extension zip, install it into this bpy, import the result as a take and save the .blend."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("result", type=Path)
    parser.add_argument("blend", type=Path)
    parser.add_argument("--video", default="", help="source video, shown as the camera background")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="vidrig-bake-"))
    os.environ.setdefault("BLENDER_USER_RESOURCES", str(scratch / "user"))
    import bpy

    sys.path.insert(0, str(REPO))
    import build_addon

    bpy.ops.wm.read_factory_settings(use_empty=True)
    zip_path = build_addon.build(scratch / "dist", REPO / "build" / "wheel_cache", with_wheels=False)
    module = build_addon.install_into_blender(zip_path, scratch / "repo")
    importer = importlib.import_module(f"{module}.importer")
    result = importlib.import_module(f"{module}.protocol.result").Result.load_npz(args.result)
    take = importer.import_result(result, args.result.stem, str(Path(args.video).resolve()) if args.video else "")
    args.blend.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(args.blend.resolve()))
    frames = take.frame_end - take.frame_start + 1
    print(f"wrote {args.blend}: armature with {len(bpy.data.objects[take.armature].data.bones)} bones, "
          f"{frames} frames of animation ({take.keys_written} keys), Blender {bpy.app.version_string}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
