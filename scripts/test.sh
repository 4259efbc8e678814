#!/usr/bin/env bash
# Run the whole VidRig test suite: backend + protocol + real server + mediapipe in .venv, then the add-on
# inside real Blender (bpy) in .venv-blender. Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
.venv/bin/python -m pytest -q "$@" tests || status=$?
.venv-blender/bin/python -m pytest -q -p no:cacheprovider "$@" tests/blender || status=$?
exit $status
