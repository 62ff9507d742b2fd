#!/usr/bin/env bash
# SRPO (arXiv 2506.01713) on Qwen3-VL-32B-Instruct with verl 0.9.1: 4 nodes of 8 GPUs (32 GPUs).
#
# The stages, paper settings and cluster knobs of run_qwen32b_srpo.sh (multi-node: Ray for GRPO, torchrun on
# every node for SFT, as that script says), with only what Qwen3-VL changes set here; every variable of that
# script works here too:
#
#   DRY_RUN=1 bash examples/run_qwen3vl32b_srpo.sh         # check every stage on a CPU machine first
#   bash examples/run_qwen3vl32b_srpo.sh                   # all stages: data, sft, merge, grpo
#
# Thinking weights (Qwen3-VL-32B-Thinking): the dry run refuses their chat template (it prefills <think> and
# rewrites the SFT target); train them with the Instruct template:
#   python -m recipe.srpo.chat_template --model ~/models/Qwen3-VL-32B-Thinking --out ~/models/Qwen3-VL-32B-Thinking-instruct-template
# Video SFT rows are refused for Qwen3-VL (verl 0.9.1's SFT position ids crash on them); images are fine.
set -euo pipefail

# Qwen3-VL instead of Qwen2.5-VL-32B: the base model and the run's names.
MODEL_PATH=${MODEL_PATH:-$HOME/models/Qwen3-VL-32B-Instruct}
OUTPUT_DIR=${OUTPUT_DIR:-$HOME/outputs/srpo_qwen3vl_32b}
EXPERIMENT=${EXPERIMENT:-srpo_qwen3vl_32b}

# Qwen3-VL's vision patch is 16 pixels (Qwen2.5-VL: 14), merged 2x2: one image token per 32x32 pixels
# (Qwen2.5-VL: 28x28).  The GRPO stage gets it as data.image_patch_size (verl's RL data config says 14; see
# run_qwen3vl8b_srpo.sh for what that would miscount); the dry run checks it against the model's processor.
IMAGE_PATCH=${IMAGE_PATCH:-16}
# The SFT image cap re-derived for the paper's image-token budget (see run_qwen3vl8b_srpo.sh): the paper's
# 262144 pixels are 334 Qwen2.5-VL tokens, and 334 Qwen3-VL tokens are 334 * 32 * 32 = 342016 pixels.
SFT_MAX_IMAGE_PIXELS=${SFT_MAX_IMAGE_PIXELS:-$((334 * (2 * IMAGE_PATCH) ** 2))}

# Cluster shape and memory knobs: those of the Qwen2.5-VL-32B script (4 nodes, SFT Ulysses SP 2, vLLM TP 4;
# not measured on GPUs for Qwen3-VL-32B, whose 64 layers of 5120 match Qwen2.5-VL-32B's).
# shellcheck source=examples/run_qwen32b_srpo.sh
source "$(dirname "${BASH_SOURCE[0]}")/run_qwen32b_srpo.sh"
