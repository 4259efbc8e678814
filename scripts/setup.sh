#!/usr/bin/env bash
# Set up VidRig on a fresh machine (Python 3.11): .venv for the backend (torch 2.13.0 first, so pip never
# fetches CUDA wheels), .venv-blender with Blender as a module for the add-on, then run the main job on the
# bundled sample clip: out/sample.npz (the result file) and out/sample.blend (an animated SMPL-X rig).
# Pass --no-demo to only install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
demo=1
[ "${1:-}" = "--no-demo" ] && demo=0

if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade "pip>=25.1"
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[backend]" --group dev

if [ ! -x .venv-blender/bin/python ]; then "$PY" -m venv .venv-blender; fi
.venv-blender/bin/python -m pip install -q --upgrade "pip>=25.1"
.venv-blender/bin/python -m pip install -q "bpy==5.0.1" "pyzmq>=26" "pytest>=8"

# Real clips used by integration tests (OpenCV's sample videos), when we may install system packages.
if ! ls /usr/share/doc/opencv-doc/examples/data/vtest.avi >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq opencv-doc) >/dev/null
  else
    echo "note: install Debian's opencv-doc (vtest.avi, Megamind.avi) for the real-clip integration tests" >&2
  fi
fi

if [ "$demo" = 1 ]; then
  bash scripts/demo.sh
fi
