#!/usr/bin/env bash
# SRPO (arXiv 2506.01713) on Qwen3-VL-8B-Instruct with verl 0.9.1: one node of 8 GPUs.
#
# The stages, paper settings and cluster knobs of run_qwen7b_srpo.sh (and its stage library,
# srpo_stages.sh), with what Qwen3-VL changes (qwen3vl_family.sh: patch 16, the SFT image cap) and the
# model set here; every variable of that script works here too (STAGES, DRY_RUN, CPU_TRAIN, extra Hydra
# overrides, ...):
#
#   DRY_RUN=1 bash examples/run_qwen3vl8b_srpo.sh          # check every stage on a CPU machine first
#   bash examples/run_qwen3vl8b_srpo.sh                    # all stages: data, sft, merge, grpo
#
# Thinking weights (Qwen3-VL-8B-Thinking): their chat template prefills <think> and rewrites the SFT target
# (only the first think block and the last answer survive), and the dry run refuses it.  Train them with the
# Instruct template:
#   python -m recipe.srpo.chat_template --model ~/models/Qwen3-VL-8B-Thinking --out ~/models/Qwen3-VL-8B-Thinking-instruct
#   MODEL_PATH=~/models/Qwen3-VL-8B-Thinking-instruct bash examples/run_qwen3vl8b_srpo.sh
# Video SFT rows are refused for Qwen3-VL (verl 0.9.1's SFT position ids crash on them); images are fine.
set -euo pipefail

# Qwen3-VL instead of Qwen2.5-VL-7B: the base model and the run's names.
MODEL_PATH=${MODEL_PATH:-$HOME/models/Qwen3-VL-8B-Instruct}
OUTPUT_DIR=${OUTPUT_DIR:-$HOME/outputs/srpo_qwen3vl_8b}
EXPERIMENT=${EXPERIMENT:-srpo_qwen3vl_8b}

# shellcheck source=examples/qwen3vl_family.sh
source "$(dirname "${BASH_SOURCE[0]}")/qwen3vl_family.sh"
# Cluster shape and memory knobs: those of the 7B script (the 8B's text model is 36 layers of 4096, the 7B's
# 28 of 3584; ROLLOUT_TP, ACTOR_MICRO_BSZ, LOGPROB_MICRO_BSZ, SFT_MAX_TOKENS_PER_GPU not measured for Qwen3-VL).
# shellcheck source=examples/run_qwen7b_srpo.sh
source "$(dirname "${BASH_SOURCE[0]}")/run_qwen7b_srpo.sh"
