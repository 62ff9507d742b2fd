#!/usr/bin/env bash
# SRPO (arXiv 2506.01713) on Qwen3-VL-8B-Instruct with verl 0.9.1: one node of 8 GPUs.
#
# The stages, paper settings and cluster knobs of run_qwen7b_srpo.sh (and its stage library,
# srpo_stages.sh), with only what Qwen3-VL changes set here; every variable of that script
# works here too (STAGES, DRY_RUN, CPU_TRAIN, extra Hydra overrides, ...):
#
#   DRY_RUN=1 bash examples/run_qwen3vl8b_srpo.sh          # check every stage on a CPU machine first
#   bash examples/run_qwen3vl8b_srpo.sh                    # all stages: data, sft, merge, grpo
#
# Thinking weights (Qwen3-VL-8B-Thinking): their chat template prefills <think> and rewrites the SFT target
# (only the first think block and the last answer survive), and the dry run refuses it.  Train them with the
# Instruct template:
#   python -m recipe.srpo.chat_template --model ~/models/Qwen3-VL-8B-Thinking --out ~/models/Qwen3-VL-8B-Thinking-instruct-template
#   MODEL_PATH=~/models/Qwen3-VL-8B-Thinking-instruct-template bash examples/run_qwen3vl8b_srpo.sh
# Video SFT rows are refused for Qwen3-VL (verl 0.9.1's SFT position ids crash on them); images are fine.
set -euo pipefail

# Qwen3-VL instead of Qwen2.5-VL-7B: the base model and the run's names.
MODEL_PATH=${MODEL_PATH:-$HOME/models/Qwen3-VL-8B-Instruct}
OUTPUT_DIR=${OUTPUT_DIR:-$HOME/outputs/srpo_qwen3vl_8b}
EXPERIMENT=${EXPERIMENT:-srpo_qwen3vl_8b}

# Qwen3-VL's vision patch is 16 pixels (Qwen2.5-VL: 14), merged 2x2 into one image token: one token per 32x32
# pixels after Qwen's resize (Qwen2.5-VL: 28x28).  The GRPO stage gets it as data.image_patch_size: verl's RL
# data config says 14 (Qwen2.5-VL's), with which its dataset resizes images to multiples of 28 before the
# processor rounds them to 32, so its length filter counts other image tokens than the rollout (which reads 16
# from the processor) and the data stage do (a 100x80 image: 12 tokens instead of 6).  The dry run checks it.
IMAGE_PATCH=${IMAGE_PATCH:-16}
# The SFT image cap re-derived for the paper's image-token budget: its 262144 pixels (paper B.3, the YAML's
# data.max_image_pixels) are at most 262144 / (28*28) = 334 Qwen2.5-VL image tokens; 334 Qwen3-VL tokens are
# 334 * 32 * 32 = 342016 pixels (the unchanged 262144 would allow Qwen3-VL only 256 tokens per image).
SFT_MAX_IMAGE_PIXELS=${SFT_MAX_IMAGE_PIXELS:-$((334 * (2 * IMAGE_PATCH) ** 2))}
# The RL stage keeps data.max_image_pixels=null as for Qwen2.5-VL: the processor's own limit, which is the same
# 16384 image tokens for both families (Qwen2.5-VL 12845056 = 16384 * 28^2, Qwen3-VL 16777216 = 16384 * 32^2).

# Cluster shape and memory knobs: those of the 7B script (the 8B has 36 layers of 4096 against the 7B's 28 of
# 3584; not measured on GPUs for Qwen3-VL: ROLLOUT_TP, ACTOR_MICRO_BSZ, LOGPROB_MICRO_BSZ, SFT_MAX_TOKENS_PER_GPU).
# shellcheck source=examples/run_qwen7b_srpo.sh
source "$(dirname "${BASH_SOURCE[0]}")/run_qwen7b_srpo.sh"
