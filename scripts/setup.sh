#!/usr/bin/env bash
# Fresh-machine setup for genrl (Debian/Ubuntu, Python 3.11): headless OpenGL + a virtualenv in .venv.
#   bash scripts/setup.sh          # then: .venv/bin/genrl --help
# Headless MuJoCo rendering uses EGL with Mesa's software renderer (llvmpipe): MUJOCO_GL=egl.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  export DEBIAN_FRONTEND=noninteractive
  # EGL + Mesa (llvmpipe) for MUJOCO_GL=egl; libosmesa6 as the MUJOCO_GL=osmesa fallback.
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libosmesa6 >/dev/null
  # headless Chromium + its WebDriver for the dashboard's browser test (tests/test_app.py skips without them)
  apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null \
    || echo "setup: could not install chromium/chromium-driver: the dashboard's browser test will skip" >&2
else
  echo "setup: not root or no apt-get: make sure EGL/Mesa (libegl1 libegl-mesa0 libgl1-mesa-dri) is installed" >&2
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch first, from the local CPU wheel (a plain 'torch' requirement would pull a multi-GB CUDA build);
# constraints.txt keeps torch/mujoco/dm_control pinned for everything installed afterwards.
.venv/bin/pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e ".[test]"
echo "setup: done (.venv ready; run commands with MUJOCO_GL=egl)"
