#!/usr/bin/env bash
# Two GRPO steps of the SRPO recipe on a small model, for whoever has a GPU (1 to 8 GPUs, one node).
# It proves what the CPU dry run cannot: vLLM rollout and weight sync, FSDP2 steps with the vision
# tower frozen, the reward in verl's reward loop, and the training/srpo/* metrics in the step log.
#
#   MODEL_PATH=/models/Qwen2.5-VL-3B-Instruct RL_TRAIN_FILE=... RL_VAL_FILE=... bash examples/smoke_gpu.sh
#   DRY_RUN=1 MODEL_PATH=... bash examples/smoke_gpu.sh   # only the CPU dry run of the same arguments (GPUS=1 unless set)
#
# RL_*_FILE: verl RL parquet (srpo_data.prepare_rl output, or verl's own geo3k preprocessing: the
# SRPO prompt is applied on the fly).  Extra Hydra overrides are passed through: "$@".
set -euo pipefail

MODEL_PATH=${MODEL_PATH:-$HOME/models/Qwen2.5-VL-3B-Instruct}
DATA_DIR=${DATA_DIR:-$HOME/data/srpo}
RL_TRAIN_FILE=${RL_TRAIN_FILE:-$DATA_DIR/rl/train.parquet}
RL_VAL_FILE=${RL_VAL_FILE:-$DATA_DIR/rl/val.parquet}
OUTPUT_DIR=${OUTPUT_DIR:-$HOME/outputs/srpo_smoke_gpu}
# The project's environment when it exists (bash scripts/setup.sh creates .venv in the repo), else python3.
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${PYTHON:-} ]]; then
    PYTHON=python3
    [[ -x ${REPO_ROOT}/.venv/bin/python ]] && PYTHON=${REPO_ROOT}/.venv/bin/python
fi
LOG=${LOG:-$OUTPUT_DIR/smoke.log}
DRY_RUN=${DRY_RUN:-0}

if [[ ${DRY_RUN} != 1 ]] && { ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; }; then
    echo "smoke_gpu.sh: no NVIDIA GPU here; on a CPU machine run DRY_RUN=1 bash examples/smoke_gpu.sh" >&2
    exit 2
fi
# GPUs to use: all of this node's.  A dry run on a machine without nvidia-smi checks the 1-GPU layout.
if [[ -z ${GPUS:-} ]]; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        GPUS=$(nvidia-smi -L | wc -l)
    else
        GPUS=1
    fi
fi

# Small, fast settings; everything else is the recipe's (recipe/srpo/config/srpo_trainer.yaml), the
# online accuracy filter included: it must run here, since no CPU check exercises it with real
# rollouts.  It evicts all-right and all-wrong groups and samples more prompts until 8 groups with
# signal remain (a 3B instruct model on geometry3k gets some right at temperature 1.0).
args=(
    "actor_rollout_ref.model.path=${MODEL_PATH}"
    "data.train_files=${RL_TRAIN_FILE}"
    "data.val_files=${RL_VAL_FILE}"
    "data.train_batch_size=8"
    "data.max_response_length=512"
    "actor_rollout_ref.actor.ppo_mini_batch_size=8"
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2"
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4"
    "actor_rollout_ref.rollout.tensor_model_parallel_size=1"
    "actor_rollout_ref.rollout.gpu_memory_utilization=0.5"
    "trainer.nnodes=1"
    "trainer.n_gpus_per_node=${GPUS}"
    "trainer.total_training_steps=2"
    "trainer.val_before_train=false"
    "trainer.test_freq=-1"
    "trainer.save_freq=-1"
    "trainer.logger=[console]"
    "trainer.default_local_dir=${OUTPUT_DIR}/ckpt"
    "trainer.experiment_name=srpo_smoke_gpu"
    "$@"
)

echo "== dry run (same arguments) ==" >&2
"${PYTHON}" -m recipe.srpo.dry_run grpo -- "${args[@]}"
[[ ${DRY_RUN} == 1 ]] && exit 0

mkdir -p "${OUTPUT_DIR}"
echo "== two GRPO steps on ${GPUS} GPU(s); log: ${LOG} ==" >&2
"${PYTHON}" -m recipe.srpo.main_srpo "${args[@]}" 2>&1 | tee "${LOG}"
for metric in "training/srpo/fix_rate" "training/srpo/acc/mean" "training/srpo/format/mean" \
    "training/srpo/prefilter/fix_rate" "training/srpo/prefilter/responses"; do
    grep -q "${metric}" "${LOG}" || { echo "smoke_gpu.sh: FAILED: ${metric} missing from the step log" >&2; exit 1; }
done
echo "smoke_gpu.sh: PASSED: 2 GRPO steps ran and logged the SRPO reflection metrics" >&2
