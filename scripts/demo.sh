#!/usr/bin/env bash
# The main job on the built-in default body model: the bundled sample clip (rendered by our ground-truth
# generator from CMU motion capture) becomes out/sample.npz (result file, + .bvh and .ply) and
# out/sample.blend (an animated SMPL-X rig with skinned mesh, camera and scene points, baked by the add-on).
set -euo pipefail
cd "$(dirname "$0")/.."
clip=tests/data/groundtruth/walk_static.mp4
mkdir -p out
.venv/bin/vidrig process "$clip" --preset fullbody-default -o out/sample.npz --bvh --ply --cache out/cache
.venv/bin/vidrig inspect out/sample.npz
.venv-blender/bin/python scripts/bake_blend.py out/sample.npz out/sample.blend --video "$clip"
