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
# MODEL_PATH must be a tiny model (python -m srpo_data.offline.tiny_qwen; examples/cpu_train.sh builds one).

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
    # NNODES and SFT_SP likewise, else 1.  NNODES=2: two nodes on this machine (examples/cpu_train.sh runs
    # the SFT stage once per NODE_RANK and starts the Ray cluster GRPO joins at RAY_ADDRESS); SFT_SP=2:
    # Ulysses SP over 2 ranks (srpo_cpu_parallel_overrides).
    NNODES=$(srpo_cpu_env_or NNODES 1)
    SFT_SP=$(srpo_cpu_env_or SFT_SP 1)
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
        srpo_die "CPU_TRAIN=1 needs a tiny model; ${MODEL_PATH} has hidden size > 1024 (build one: ${PYTHON} -m srpo_data.offline.tiny_qwen --out DIR)"
    fi
    "${PYTHON}" -m recipe.srpo.cpu.layout --nnodes "${NNODES}" --gpus-per-node "${GPUS_PER_NODE}" \
        --rollout-tp "${ROLLOUT_TP}" --sft-sp "${SFT_SP}" ${MODEL_PATH:+--model "${MODEL_PATH}"} ||
        srpo_die "CPU_TRAIN=1: layout NNODES=${NNODES} GPUS_PER_NODE=${GPUS_PER_NODE} ROLLOUT_TP=${ROLLOUT_TP} SFT_SP=${SFT_SP} refused (the reason above)"
    srpo_cpu_parallel_overrides
    SFT_EXTRA=("+cpu=sft" ${SFT_SP_EXTRA[@]+"${SFT_SP_EXTRA[@]}"} ${SFT_EXTRA[@]+"${SFT_EXTRA[@]}"})
    GRPO_EXTRA=("+cpu=grpo" ${RAY_EXTRA[@]+"${RAY_EXTRA[@]}"} ${GRPO_EXTRA[@]+"${GRPO_EXTRA[@]}"})
    srpo_log "CPU_TRAIN=1: VERL_PLATFORM=cpu, +cpu=sft / +cpu=grpo (recipe/srpo/config/cpu/)"
}

# What SFT_SP > 1 and NNODES > 1 need on a CPU, or their refusal before any work (sets SFT_SP_EXTRA, RAY_EXTRA).
srpo_cpu_parallel_overrides() {
    SFT_SP_EXTRA=()
    RAY_EXTRA=()
    if [[ ${SFT_SP} != 1 ]] && srpo_stage_on sft; then
        local model_type
        model_type=$("${PYTHON}" -c 'import json, sys; print(json.load(open(sys.argv[1] + "/config.json")).get("model_type", ""))' \
            "${MODEL_PATH}") || srpo_die "SFT_SP=${SFT_SP}: cannot read ${MODEL_PATH}/config.json"
        if [[ ${model_type} == qwen3_vl* ]]; then
            srpo_die "CPU_TRAIN=1 SFT_SP=${SFT_SP} refused for ${model_type}: verl 0.9.1's Ulysses SP for Qwen3-VL runs its all-to-all only inside transformers' flash-attention integration (verl/models/transformers/monkey_patch.py:544-552, _ulysses_flash_attention_forward); on a CPU the model attends with SDPA, which never calls it, so each SP rank would attend within its own slice of the sequence (measured: the run does not fail, it is wrong). Use SFT_SP=1 (docs/cpu_training.md)"
        fi
        # verl's Ulysses SP needs the unpadded path (verl/workers/engine/fsdp/transformer_impl.py:148-152);
        # its flash-attn calls get SDPA stand-ins on the CPU platform (srpo_verl_plugins/cpu/sdpa_attention.py).
        SFT_SP_EXTRA=("model.use_remove_padding=true")
    fi
    if [[ ${NNODES} != 1 ]] && srpo_stage_on grpo && [[ -n ${RAY_ADDRESS:-} || ${DRY_RUN} != 1 ]]; then
        [[ -n ${RAY_ADDRESS:-} ]] || srpo_die "CPU_TRAIN=1 NNODES=${NNODES}: GRPO runs on a Ray cluster of ${NNODES} nodes; start one and set RAY_ADDRESS (examples/cpu_train.sh does: python -m recipe.srpo.cpu.ray_cluster start --dir DIR --nodes ${NNODES} --gpus-per-node ${GPUS_PER_NODE})"
        # ray.init refuses num_cpus/num_gpus when it joins a cluster: the nodes declared their slots.
        RAY_EXTRA=("ray_kwargs.ray_init.num_cpus=null" "ray_kwargs.ray_init.num_gpus=null"
            "+ray_kwargs.ray_init.address=${RAY_ADDRESS}")
        # Workers on a joined cluster inherit the environment of their node's `ray start`, not the driver's
        # (measured: without this the workers saw no VERL_PLATFORM and picked the cuda platform), so the
        # CPU platform and the run's SRPO_* settings travel in Ray's runtime_env.
        local var
        for var in VERL_PLATFORM TOKENIZERS_PARALLELISM $(compgen -e | grep '^SRPO_' || true); do
            RAY_EXTRA+=("+ray_kwargs.ray_init.runtime_env.env_vars.${var}='${!var}'")  # quoted: Ray wants strings
        done
    fi
}
