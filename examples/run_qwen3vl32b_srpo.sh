#!/usr/bin/env bash
# SRPO (arXiv 2506.01713) on Qwen3-VL-32B-Instruct with verl 0.9.1: 4 nodes of 8 GPUs (32 GPUs).
#
# The stages, paper settings and cluster knobs of run_qwen32b_srpo.sh (multi-node: Ray for GRPO, torchrun on
# every node for SFT, as that script says), with what Qwen3-VL changes (qwen3vl_family.sh: patch 16, the SFT
# image cap) and the model set here; every variable of that script works here too:
#
#   DRY_RUN=1 bash examples/run_qwen3vl32b_srpo.sh         # check every stage on a CPU machine first
#   bash examples/run_qwen3vl32b_srpo.sh                   # all stages: data, sft, merge, grpo
#
# Thinking weights (Qwen3-VL-32B-Thinking): the dry run refuses their chat template (it prefills <think> and
# rewrites the SFT target); train them with the Instruct template, as run_qwen3vl8b_srpo.sh shows:
#   python -m recipe.srpo.chat_template --model ~/models/Qwen3-VL-32B-Thinking --out ~/models/Qwen3-VL-32B-Thinking-instruct
set -euo pipefail

# Qwen3-VL instead of Qwen2.5-VL-32B: the base model and the run's names.
MODEL_PATH=${MODEL_PATH:-$HOME/models/Qwen3-VL-32B-Instruct}
OUTPUT_DIR=${OUTPUT_DIR:-$HOME/outputs/srpo_qwen3vl_32b}
EXPERIMENT=${EXPERIMENT:-srpo_qwen3vl_32b}

# shellcheck source=examples/qwen3vl_family.sh
source "$(dirname "${BASH_SOURCE[0]}")/qwen3vl_family.sh"
# Cluster shape and memory knobs: those of the Qwen2.5-VL-32B script (4 nodes, SFT Ulysses SP 2, vLLM TP 4;
# not measured for Qwen3-VL-32B).
# shellcheck source=examples/run_qwen32b_srpo.sh
source "$(dirname "${BASH_SOURCE[0]}")/run_qwen32b_srpo.sh"
