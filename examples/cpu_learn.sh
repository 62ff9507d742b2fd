#!/usr/bin/env bash
# The learning run: does the SRPO reward teach?  A tiny random-init Qwen2.5-VL learns a small lookup task
# (srpo_data/offline/learn_task.py) on a CPU, through every real stage, then GRPO runs twice from the same SFT model
# with the same seeds: once with the SRPO reward (srpo_reward.compute_score through the recipe's reward
# manager), once with the paper's GRPO baseline reward (format + accuracy only: the reflection terms and the
# length term set to 0).  Checked from the artifacts by recipe.srpo.cpu.verify_learning.
#
#   1. workspace: the tiny model, the task in the hiyouga/geometry3k layout, the stage-1 endpoint's answer key;
#   2. data: a scripted OpenAI-compatible endpoint (srpo_data.offline.fake_endpoint) plays the stage-1 policy
#      and teacher; STAGES=data of run_qwen7b_srpo.sh runs prepare_rl and the real reflection builder
#      (grading, the 30/70 mix, the five-block targets) against it;
#   3. sft + merge: verl's SFT trainer, long enough to teach the format (+cpu_learn=sft), then the merge;
#   4. grpo (SRPO reward) and grpo_baseline (format + accuracy), GRPO_STEPS steps each, the online acc filter
#      on (+cpu_learn=grpo: the paper's settings scaled down);
#   5. eval: base, SFT, SRPO and the baseline on the held-out split (one report);
#   6. python -m recipe.srpo.cpu.verify_learning: the per-step table and plot of both runs, and the checks.
#
#   bash examples/cpu_learn.sh                      # workspace in a new temporary folder
#   WORKSPACE=/tmp/learn bash examples/cpu_learn.sh # the same again resumes: finished stages are skipped,
#                                                   # GRPO resumes from its newest checkpoint
#   STOP_AFTER=data bash examples/cpu_learn.sh      # stop after a stage (workspace, data, sft, merge, grpo, ...)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON=${PYTHON:-$HERE/../.venv/bin/python}
WORKSPACE=${WORKSPACE:-$(mktemp -d "${TMPDIR:-/tmp}/srpo-cpu-learn.XXXXXX")}
GRPO_STEPS=${GRPO_STEPS:-30}
SFT_STEPS=${SFT_STEPS:-800}
TRAIN_ROWS=${TRAIN_ROWS:-256}
TEST_ROWS=${TEST_ROWS:-32}
export PYTHON CPU_TRAIN=1 TOKENIZERS_PARALLELISM=false
export CPU_SAVE_FREQ=${CPU_SAVE_FREQ:-5} CPU_EVAL_MAX_NEW_TOKENS=${CPU_EVAL_MAX_NEW_TOKENS:-192}
export MODEL_PATH="${WORKSPACE}/tiny-qwen" DATA_DIR="${WORKSPACE}/data"
export SFT_DIR="${WORKSPACE}/outputs/sft" POLICY_PATH="${WORKSPACE}/outputs/sft_merged"
export EVAL_DIR="${DATA_DIR}/eval" EVAL_OUT="${WORKSPACE}/outputs/eval"
LOGS="${WORKSPACE}/logs"
mkdir -p "${LOGS}"

say() { printf '[cpu_learn %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# stage NAME COMMAND...: skipped when logs/NAME.done exists (a rerun resumes); log appended; wall time recorded.
stage() {
    local name=$1 start=$SECONDS
    shift
    if [[ -f ${LOGS}/${name}.done ]]; then
        say "${name}: done in an earlier run (${LOGS}/${name}.done), skipped"
        return
    fi
    say "${name}: log ${LOGS}/${name}.log"
    "$@" 2>&1 | tee -a "${LOGS}/${name}.log" >&2
    echo "${name} $((SECONDS - start))" >> "${LOGS}/stage_seconds.txt"
    touch "${LOGS}/${name}.done"
    say "${name}: done in $((SECONDS - start)) s"
    if [[ ${STOP_AFTER:-} == "${name}" ]]; then
        say "STOP_AFTER=${name}: stopping (workspace ${WORKSPACE}; run again with the same WORKSPACE to go on)"
        exit 0
    fi
}
free_port() { "${PYTHON}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# 1. workspace (the endpoint's port is fixed once, in the builder config the workspace keeps)
if [[ ! -f ${LOGS}/workspace.done ]]; then
    PORT=${STAGE1_PORT:-$(free_port)}
    echo "${PORT}" > "${LOGS}/stage1_port"
fi
PORT=$(cat "${LOGS}/stage1_port")
stage workspace "${PYTHON}" -m srpo_data.offline.learn_task --out "${WORKSPACE}" --train-rows "${TRAIN_ROWS}" \
    --test-rows "${TEST_ROWS}" --endpoint-url "http://127.0.0.1:${PORT}/v1"

# 2. data: the scripted stage-1 endpoint with the task's texts (srpo_data.offline.learn_task.scripted_reply: 40% of
#    first attempts read the shape, the others guess wrongly; revisions right 90% of the time; the builder drops wrong revisions
#    and mixes 30% first-right / 70% first-wrong), then the real data stage.
data_stage() {
    "${PYTHON}" -m srpo_data.offline.fake_endpoint --port "${PORT}" --answers "${DATA_DIR}/stage1_answers.json" \
        --reply srpo_data.offline.learn_task:scripted_reply --right-rate 0.4 --revise-right-rate 0.9 \
        > "${LOGS}/stage1_endpoint.log" 2>&1 &
    local endpoint=$!
    trap 'kill ${endpoint} 2>/dev/null || true' RETURN
    local tries=0
    until grep -q "^http" "${LOGS}/stage1_endpoint.log" 2>/dev/null; do
        tries=$((tries + 1))
        if [[ ${tries} -gt 100 ]] || ! kill -0 "${endpoint}" 2>/dev/null; then
            say "ERROR: the stage-1 endpoint did not start on port ${PORT}: $(cat "${LOGS}/stage1_endpoint.log")"
            return 1
        fi
        sleep 0.2
    done
    OUTPUT_DIR="${WORKSPACE}/outputs/srpo" STAGES=data bash "${HERE}/run_qwen7b_srpo.sh"
}
stage data data_stage

# 3. SFT (long enough to teach the format), merge
stage sft env OUTPUT_DIR="${WORKSPACE}/outputs/srpo" STAGES=sft bash "${HERE}/run_qwen7b_srpo.sh" \
    sft.+cpu_learn=sft "sft.trainer.total_training_steps=${SFT_STEPS}"
stage merge env OUTPUT_DIR="${WORKSPACE}/outputs/srpo" STAGES=merge bash "${HERE}/run_qwen7b_srpo.sh"

# 4. GRPO twice from the same SFT model, same seeds (verl's data.seed and rollout seeds are the config's).
GRPO=(+cpu_learn=grpo "trainer.total_training_steps=${GRPO_STEPS}")
# The paper's GRPO baseline (Table 3's ablation): format + accuracy of the final answer only.
# eff_fixed = eff_kept = 0.5 pays a right final answer (valid format), acc_weight = 0 drops the first-answer
# term, and the reflection, harm and length terms are 0.
BASELINE=(reward.custom_reward_function.reward_kwargs.acc_weight=0.0
    reward.custom_reward_function.reward_kwargs.eff_fixed=0.5
    reward.custom_reward_function.reward_kwargs.eff_kept=0.5
    reward.custom_reward_function.reward_kwargs.eff_broke=0.0
    reward.custom_reward_function.reward_kwargs.eff_stayed_wrong=0.0
    reward.custom_reward_function.reward_kwargs.ref_weight=0.0
    reward.custom_reward_function.reward_kwargs.len_alpha=0.0)
stage grpo env OUTPUT_DIR="${WORKSPACE}/outputs/srpo" EXPERIMENT=srpo STAGES=grpo \
    bash "${HERE}/run_qwen7b_srpo.sh" "${GRPO[@]}"
stage grpo_baseline env OUTPUT_DIR="${WORKSPACE}/outputs/grpo_baseline" EXPERIMENT=grpo_baseline STAGES=grpo \
    bash "${HERE}/run_qwen7b_srpo.sh" "${GRPO[@]}" "${BASELINE[@]}"

# 5. eval on the held-out split: the eval stage of each run (base and SFT rollouts are generated once: the
#    second run finds their ids in EVAL_OUT and skips them), then one report of the four.
mkdir -p "${EVAL_DIR}"
cp "${DATA_DIR}/rl/val.parquet" "${EVAL_DIR}/learn_task.parquet"
stage eval_srpo env OUTPUT_DIR="${WORKSPACE}/outputs/srpo" EXPERIMENT=srpo \
    EVAL_POLICY_PATH="${WORKSPACE}/outputs/srpo_merged" STAGES=eval bash "${HERE}/run_qwen7b_srpo.sh"
stage eval_baseline env OUTPUT_DIR="${WORKSPACE}/outputs/grpo_baseline" EXPERIMENT=grpo_baseline \
    EVAL_POLICY_PATH="${WORKSPACE}/outputs/grpo_baseline_merged" STAGES=eval bash "${HERE}/run_qwen7b_srpo.sh"
stage report "${PYTHON}" -m srpo_eval.report "${EVAL_OUT}"/rollouts-{base,sft,srpo,grpo_baseline}.jsonl \
    --data "${EVAL_DIR}/learn_task.parquet" --names base sft srpo grpo_baseline --out "${EVAL_OUT}/report4"

# 6. what the run showed
say "the learning run (workspace ${WORKSPACE}):"
"${PYTHON}" -m recipe.srpo.cpu.verify_learning --workspace "${WORKSPACE}"
say "stage wall times (s): $(tr '\n' ' ' < "${LOGS}/stage_seconds.txt")"
