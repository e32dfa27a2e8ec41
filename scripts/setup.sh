#!/usr/bin/env bash
# Set up (or refresh) a virtual environment in .venv with metarl, its dependencies, the
# dev tools, Ray and Meta-World (the tests cover the ray sampler backend and the Meta-World
# families). Idempotent; safe to run before
# every command.
#
# torch: installed only when .venv has none. It is pinned to a version, not to a build:
# where pip is configured with a local CPU wheel of that version (as on our CI machines)
# pip takes it; elsewhere pip takes the registry's default build (CUDA on Linux). To use a
# torch build of your own, install it into .venv first; this script then leaves it alone.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${METARL_TORCH_VERSION:-2.13.0}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  echo "setup: installing torch==${TORCH_VERSION} into .venv"
  .venv/bin/python -m pip install -q "torch==${TORCH_VERSION}" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
  .venv/bin/python -c "import torch" || { echo "setup: torch failed to install" >&2; exit 1; }
fi
# The metaworld extra pins mujoco==3.3.0. MuJoCo 4 comes as several packages (mujoco,
# mujoco-core, mujoco-studio...) sharing one folder; pip's downgrade replaces only the first
# and leaves a venv whose `import mujoco` fails. Remove them all first; pip then installs 3.3.
if .venv/bin/python -m pip show mujoco-core >/dev/null 2>&1; then
  echo "setup: replacing MuJoCo 4 by the version metaworld needs"
  .venv/bin/python -m pip uninstall -q -y mujoco mujoco-core mujoco-studio mujoco-studio-wasm 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
fi
.venv/bin/python -m pip install -q -e ".[dev,ray,metaworld]" 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
.venv/bin/python -c "import metarl, metarl.envs, metarl.agents, gymnasium, mujoco, tensorboard, ray, metaworld" \
  || { echo "setup: metarl failed to install" >&2; exit 1; }
echo "setup: .venv ready ($(.venv/bin/python -c 'import torch, mujoco; print("torch", torch.__version__, "mujoco", mujoco.__version__)'))"
