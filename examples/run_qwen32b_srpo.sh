#!/usr/bin/env bash
# SRPO (arXiv 2506.01713) on Qwen2.5-VL-32B-Instruct with verl 0.9.1: 4 nodes of 8 GPUs (32 GPUs).
#
# Multi-node: GRPO runs on a Ray cluster (`ray start --head` on node 0, `ray start --address=HEAD:6379`
# on the others, then this script on node 0); SFT uses torchrun, so run STAGES=sft on every node with
# NODE_RANK=0..3 and MASTER_ADDR=node 0.
#
#   bash examples/run_qwen32b_srpo.sh                       # all stages: data, sft, merge, grpo
#   STAGES=grpo POLICY_PATH=/my/sft_model bash examples/run_qwen32b_srpo.sh
#   DRY_RUN=1 bash examples/run_qwen32b_srpo.sh             # check every stage on a CPU machine first
#   CPU_TRAIN=1 MODEL_PATH=/tiny/model bash examples/run_qwen32b_srpo.sh   # train for real on a CPU (tiny model;
#                                              see examples/cpu_train_setup.sh and examples/cpu_train.sh)
#   bash examples/run_qwen32b_srpo.sh trainer.total_epochs=1 sft.optim.lr=2e-5   # extra Hydra overrides
#
# Paper settings live in recipe/srpo/config/{srpo_sft,srpo_trainer}.yaml; this script only sets paths,
# cluster shape and memory knobs.  Any variable below can be set from the environment.
set -euo pipefail

# --- paths -------------------------------------------------------------------------------------------
# The base model: a local Hugging Face folder (the dry run never downloads).
MODEL_PATH=${MODEL_PATH:-$HOME/models/Qwen2.5-VL-32B-Instruct}
DATA_DIR=${DATA_DIR:-$HOME/data/srpo}
OUTPUT_DIR=${OUTPUT_DIR:-$HOME/outputs/srpo_qwen25vl_32b}
EXPERIMENT=${EXPERIMENT:-srpo_qwen25vl_32b}
# The project's environment when it exists (bash scripts/setup.sh creates .venv in the repo), else python3.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${PYTHON:-} ]]; then
    PYTHON=python3
    [[ -x ${REPO_ROOT}/.venv/bin/python ]] && PYTHON=${REPO_ROOT}/.venv/bin/python
fi

# --- cluster -------------------------------------------------------------------------------------------
NNODES=${NNODES:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
# torchrun rendezvous for the SFT stage (multi-node: run STAGES=sft on every node with its NODE_RANK).
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
# One node and no MASTER_PORT: torchrun --standalone picks a free port (two runs on one machine never
# collide on 29500); several nodes: MASTER_PORT, 29500 unless set.
MASTER_PORT=${MASTER_PORT:-}

# --- what to run -------------------------------------------------------------------------------------
# Stages in order: data, sft, merge, grpo, eval (eval needs converted benchmarks in EVAL_DIR).
STAGES=${STAGES:-data,sft,merge,grpo}
DRY_RUN=${DRY_RUN:-0}

# --- data stage ----------------------------------------------------------------------------------------
# RL prompts: srpo_data.prepare_rl converts a public set (RL_SOURCE names its layout, e.g. geometry3k,
# mmk12, virl39k, thinklite, generic) into verl RL parquet with the SRPO prompt.
RL_SOURCE=${RL_SOURCE:-geometry3k}
RL_INPUT=${RL_INPUT:-$DATA_DIR/raw/geometry3k}
RL_TRAIN_SPLIT=${RL_TRAIN_SPLIT:-train}
RL_VAL_SPLIT=${RL_VAL_SPLIT:-test}
RL_TRAIN_FILE=${RL_TRAIN_FILE:-$DATA_DIR/rl/train.parquet}
RL_VAL_FILE=${RL_VAL_FILE:-$DATA_DIR/rl/val.parquet}
# Prompts over the GRPO stage's data.max_prompt_length (counted with the model's processor): drop the row,
# or resize its images until it fits.  Either way prepare_rl reports them, and verl's filter drops none later.
RL_ON_TOO_LONG=${RL_ON_TOO_LONG:-resize}
# Stage-1 SFT data: set SFT_DATA to a verl SFT parquet you already have, or let
# srpo_data.build_reflections write it from SFT_BUILD_INPUT (an RL parquet or JSONL; the paper used
# Mulberry-SFT, LLaVA-CoT-100k and MathV360K) with the endpoints of SFT_BUILD_CONFIG (its YAML).
SFT_DATA=${SFT_DATA:-}
SFT_BUILD_INPUT=${SFT_BUILD_INPUT:-$RL_TRAIN_FILE}
SFT_BUILD_CONFIG=${SFT_BUILD_CONFIG:-$DATA_DIR/reflection_builder.yaml}
SFT_BUILD_DIR=${SFT_BUILD_DIR:-$DATA_DIR/sft}
SFT_BUILD_ARGS=${SFT_BUILD_ARGS:-}
SFT_TRAIN_FILE=${SFT_DATA:-$SFT_BUILD_DIR/sft.parquet}

# --- sft and merge stages ------------------------------------------------------------------------------
SFT_DIR=${SFT_DIR:-$OUTPUT_DIR/sft}
# The merged SFT model, the policy GRPO starts from.
POLICY_PATH=${POLICY_PATH:-$OUTPUT_DIR/sft_merged}
# Memory knobs (not from the paper; fit 80 GB GPUs).  verl's SFT trainer packs micro batches by tokens
# (data.use_dynamic_bsz=true, its default), so the knob is tokens per GPU per micro batch
# (data.max_token_len_per_gpu), not a sample count; SFT_MICRO_BSZ is refused (it would have no effect).
SFT_MAX_TOKENS_PER_GPU=${SFT_MAX_TOKENS_PER_GPU:-8192}
# Ulysses sequence parallel size.
SFT_SP=${SFT_SP:-2}

# --- grpo stage ------------------------------------------------------------------------------------------
# Memory/parallel knobs (not from the paper; fit 80 GB GPUs).
ROLLOUT_TP=${ROLLOUT_TP:-4}
ACTOR_MICRO_BSZ=${ACTOR_MICRO_BSZ:-1}
# Per-GPU micro batch of the old-policy log-prob pass (actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu).
LOGPROB_MICRO_BSZ=${LOGPROB_MICRO_BSZ:-4}
SAVE_FREQ=${SAVE_FREQ:-50}
TEST_FREQ=${TEST_FREQ:-10}
LOGGER=${LOGGER:-'["console","wandb"]'}

# --- eval stage (STAGES=...,eval) --------------------------------------------------------------------------
# Benchmarks converted by srpo_eval.convert (verl parquet, one file per benchmark) in EVAL_DIR; the newest
# GRPO checkpoint is merged to EVAL_POLICY_PATH, then the base model, the SFT model (when it exists) and the
# trained policy are evaluated, and EVAL_OUT/report holds the Table-1-style report of all of them.
EVAL_DIR=${EVAL_DIR:-$DATA_DIR/eval}
EVAL_OUT=${EVAL_OUT:-$OUTPUT_DIR/eval}
EVAL_POLICY_PATH=${EVAL_POLICY_PATH:-$OUTPUT_DIR/grpo_merged}
EVAL_BACKEND=${EVAL_BACKEND:-auto}
EVAL_MAX_NEW_TOKENS=${EVAL_MAX_NEW_TOKENS:-4096}
EVAL_GENERATE_ARGS=${EVAL_GENERATE_ARGS:-}

# shellcheck source=examples/srpo_stages.sh
source "$(dirname "${BASH_SOURCE[0]}")/srpo_stages.sh"
srpo_main "$@"
