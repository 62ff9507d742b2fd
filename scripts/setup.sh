#!/usr/bin/env bash
# Create .venv in the repo root and install the project (editable) with its test extras.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, as a pair: on x86_64 CPU machines pip takes this CUDA build from the local
# disk; transformers' Qwen2.5-VL processor needs torchvision (without it verl silently drops
# every image).  The constraints file keeps every later step from pulling another torch.
.venv/bin/python -m pip install --quiet -c scripts/constraints.txt torch==2.14.1 torchvision==0.29.1
.venv/bin/python -m pip install --quiet -c scripts/constraints.txt -e ".[test]"
.venv/bin/python -c "import torch, torchvision, verl, transformers, srpo_reward; print('setup ok: torch', torch.__version__, 'torchvision', torchvision.__version__, 'verl', verl.__version__, 'transformers', transformers.__version__)"
