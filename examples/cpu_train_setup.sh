# CPU_TRAIN=1 of run_qwen7b_srpo.sh / run_qwen32b_srpo.sh (sourced by srpo_stages.sh, not run).
#
# The same stages and the same argument lists the GPU run builds, plus:
#   - VERL_PLATFORM=cpu: verl loads the project's CPU platform (recipe/srpo/cpu/, a verl.plugins
#     entry point) and its patches; nothing of it is active without this variable;
#   - the cluster shape: GPUS_PER_NODE and ROLLOUT_TP from the environment, else 1 (not the GPU defaults),
#     checked by recipe.srpo.cpu.layout (ranks the cores can host, free memory, heads divisible by TP);
#   - `+cpu=sft` / `+cpu=grpo`: recipe/srpo/config/cpu/{sft,grpo}.yaml, the CPU and tiny-model settings;
#   - console logging, a checkpoint every step, no periodic validation;
#   - eval with transformers' generate (no vLLM engine per model), 32 new tokens (CPU_EVAL_MAX_NEW_TOKENS).
# MODEL_PATH must be a tiny model (python -m srpo_data.tiny_qwen; examples/cpu_train.sh builds one).

# srpo_cpu_env_or NAME DEFAULT: NAME's value if the caller's environment gives it (the run scripts' own
# defaults are shell variables, not exported), else DEFAULT.
srpo_cpu_env_or() { printenv "$1" || echo "$2"; }

srpo_cpu_train_setup() {
    export VERL_PLATFORM=cpu
    export TOKENIZERS_PARALLELISM=${TOKENIZERS_PARALLELISM:-false}
    # The cluster shape: the GPU scripts' defaults (8 GPUs, vLLM TP 2 or 4, ...) do not apply on a CPU;
    # a value given in the environment does (GPUS_PER_NODE=2 ROLLOUT_TP=2: 2 FSDP ranks, one vLLM engine
    # over both), else 1.  recipe.srpo.cpu.layout refuses, before any work, a shape the CPU cannot run.
    GPUS_PER_NODE=$(srpo_cpu_env_or GPUS_PER_NODE 1)
    ROLLOUT_TP=$(srpo_cpu_env_or ROLLOUT_TP 1)
    if [[ ${NNODES} != 1 || ${SFT_SP} != 1 ]]; then
        srpo_log "CPU_TRAIN=1: one node, no Ulysses SP (NNODES=1 SFT_SP=1 instead of ${NNODES}/${SFT_SP})"
    fi
    NNODES=1
    SFT_SP=1
    ACTOR_MICRO_BSZ=${CPU_ACTOR_MICRO_BSZ:-4}
    LOGPROB_MICRO_BSZ=${CPU_LOGPROB_MICRO_BSZ:-4}
    SAVE_FREQ=${CPU_SAVE_FREQ:-1}
    TEST_FREQ=-1
    EVAL_BACKEND=hf
    EVAL_MAX_NEW_TOKENS=${CPU_EVAL_MAX_NEW_TOKENS:-32}
    LOGGER='["console"]'
    if [[ -f ${MODEL_PATH}/config.json ]] && ! "${PYTHON}" - "${MODEL_PATH}" <<'PY'; then
import json, sys
cfg = json.load(open(sys.argv[1] + "/config.json"))
hidden = cfg.get("hidden_size") or cfg.get("text_config", {}).get("hidden_size", 0)
sys.exit(0 if hidden <= 1024 else 1)
PY
        srpo_die "CPU_TRAIN=1 needs a tiny model; ${MODEL_PATH} has hidden size > 1024 (build one: ${PYTHON} -m srpo_data.tiny_qwen --out DIR)"
    fi
    "${PYTHON}" -m recipe.srpo.cpu.layout --nnodes "${NNODES}" --gpus-per-node "${GPUS_PER_NODE}" \
        --rollout-tp "${ROLLOUT_TP}" --sft-sp "${SFT_SP}" ${MODEL_PATH:+--model "${MODEL_PATH}"} ||
        srpo_die "CPU_TRAIN=1: layout NNODES=${NNODES} GPUS_PER_NODE=${GPUS_PER_NODE} ROLLOUT_TP=${ROLLOUT_TP} SFT_SP=${SFT_SP} refused (the reason above)"
    SFT_EXTRA=("+cpu=sft" ${SFT_EXTRA[@]+"${SFT_EXTRA[@]}"})
    GRPO_EXTRA=("+cpu=grpo" ${GRPO_EXTRA[@]+"${GRPO_EXTRA[@]}"})
    srpo_log "CPU_TRAIN=1: VERL_PLATFORM=cpu, +cpu=sft / +cpu=grpo (recipe/srpo/config/cpu/)"
}
