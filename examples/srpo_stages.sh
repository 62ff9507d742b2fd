# Stage runner shared by run_qwen7b_srpo.sh and run_qwen32b_srpo.sh (sourced, not run), and through them by
# run_qwen3vl8b_srpo.sh and run_qwen3vl32b_srpo.sh (their family settings: qwen3vl_family.sh).
#
# The caller sets the variables at the top of its script, then calls: srpo_main "$@".
# Every stage builds ONE argument list; the real run executes it, DRY_RUN=1 hands the very
# same list to `python -m recipe.srpo.dry_run <stage>`, so the two can never drift apart.
#
# Extra Hydra overrides: "$@" goes to the GRPO stage; an override prefixed with "sft."
# goes to the SFT stage instead, without the prefix (sft.optim.lr=2e-5 -> optim.lr=2e-5).

srpo_log() { printf '[srpo %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

srpo_die() { srpo_log "ERROR: $*"; exit 1; }

# shellcheck source=examples/cpu_train_setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/cpu_train_setup.sh"

# srpo_stage_on NAME: true if NAME is listed in STAGES (comma-separated).
srpo_stage_on() { [[ ",${STAGES}," == *",$1,"* ]]; }

# srpo_exec STAGE DRY_RUN_ARGS... ::real:: REAL_COMMAND...
# Runs the real command, or, with DRY_RUN=1, `python -m recipe.srpo.dry_run STAGE DRY_RUN_ARGS...`.
# (No namerefs and no empty-array expansions: works with the bash 3.2 that macOS ships.)
srpo_exec() {
    local stage=$1
    shift
    local dry=()
    while [[ $# -gt 0 && $1 != "::real::" ]]; do
        dry+=("$1")
        shift
    done
    shift
    if [[ ${DRY_RUN} == 1 ]]; then
        "${PYTHON}" -m recipe.srpo.dry_run "${stage}" "${dry[@]}"
    else
        srpo_log "${stage}: $*"
        "$@"
    fi
}

srpo_split_overrides() {
    SFT_EXTRA=()
    GRPO_EXTRA=()
    local arg
    for arg in "$@"; do
        if [[ ${arg} == sft.* ]]; then SFT_EXTRA+=("${arg#sft.}"); else GRPO_EXTRA+=("${arg}"); fi
    done
}

# The step folder of the newest SFT checkpoint (verl writes latest_checkpointed_iteration.txt).
srpo_latest_sft_step_dir() {
    local tracker="${SFT_DIR}/latest_checkpointed_iteration.txt"
    if [[ -f ${tracker} ]]; then
        echo "${SFT_DIR}/global_step_$(cat "${tracker}")"
    elif [[ ${DRY_RUN} == 1 ]]; then
        echo "${SFT_DIR}/global_step_LATEST"
    else
        srpo_die "no SFT checkpoint in ${SFT_DIR} (missing ${tracker}): run the sft stage first"
    fi
}

# The actor folder of the newest GRPO checkpoint (verl writes latest_checkpointed_iteration.txt).
srpo_latest_grpo_actor_dir() {
    local grpo_dir="${OUTPUT_DIR}/grpo" tracker="${OUTPUT_DIR}/grpo/latest_checkpointed_iteration.txt"
    if [[ -f ${tracker} ]]; then
        echo "${grpo_dir}/global_step_$(cat "${tracker}")/actor"
    elif [[ ${DRY_RUN} == 1 ]]; then
        echo "${grpo_dir}/global_step_LATEST/actor"
    else
        srpo_die "no GRPO checkpoint in ${grpo_dir} (missing ${tracker}): run the grpo stage first (it saves every SAVE_FREQ steps and at the end)"
    fi
}

# srpo_is_model DIR: true if DIR is a Hugging Face model folder (has config.json).
srpo_is_model() { [[ -f $1/config.json ]]; }

# The model whose processor counts prompt tokens as the GRPO stage will: the policy once it exists,
# else the base model (SFT and merge keep the base model's tokenizer and image processor).
srpo_prompt_model() {
    if srpo_is_model "${POLICY_PATH}"; then echo "${POLICY_PATH}"; else echo "${MODEL_PATH}"; fi
}

# The GRPO stage's data.max_prompt_length: the recipe's YAML plus the same extra overrides the stage gets.
srpo_grpo_max_prompt_length() {
    "${PYTHON}" -m recipe.srpo.compose srpo_trainer data.max_prompt_length -- ${GRPO_EXTRA[@]+"${GRPO_EXTRA[@]}"} ||
        srpo_die "data: cannot compose the GRPO config to read data.max_prompt_length (see the error above)"
}

srpo_stage_data() {
    local split out max_prompt_length prompt_model
    max_prompt_length=$(srpo_grpo_max_prompt_length)
    prompt_model=$(srpo_prompt_model)
    for split in "${RL_TRAIN_SPLIT}" "${RL_VAL_SPLIT}"; do
        out=${RL_TRAIN_FILE}
        [[ ${split} == "${RL_VAL_SPLIT}" ]] && out=${RL_VAL_FILE}
        # Prompts are sized the way the GRPO run will count them (its model's processor, its max_prompt_length),
        # so verl's own length filter drops none of them silently at training time.
        local prep=(--source "${RL_SOURCE}" --input "${RL_INPUT}" --split "${split}" --output "${out}" --overwrite
            --max-prompt-length "${max_prompt_length}" --model "${prompt_model}" --on-too-long "${RL_ON_TOO_LONG}")
        srpo_exec data --module srpo_data.prepare_rl -- "${prep[@]}" \
            ::real:: "${PYTHON}" -m srpo_data.prepare_rl "${prep[@]}"
    done
    if [[ -n ${SFT_DATA} ]]; then
        srpo_log "data: using the SFT data you gave (SFT_DATA=${SFT_DATA}); reflection builder skipped"
    else
        # shellcheck disable=SC2206  # SFT_BUILD_ARGS is a user-given, space-separated argument string
        local build=(--config "${SFT_BUILD_CONFIG}" --input "${SFT_BUILD_INPUT}" --out "${SFT_BUILD_DIR}" ${SFT_BUILD_ARGS})
        srpo_exec data --module srpo_data.build_reflections --may-not-exist "${RL_TRAIN_FILE}" -- "${build[@]}" \
            ::real:: "${PYTHON}" -m srpo_data.build_reflections "${build[@]}"
    fi
}

srpo_stage_sft() {
    local args=(
        "model.path=${MODEL_PATH}"
        "data.train_files=${SFT_TRAIN_FILE}"
        "data.max_token_len_per_gpu=${SFT_MAX_TOKENS_PER_GPU}"
        "engine.ulysses_sequence_parallel_size=${SFT_SP}"
        "trainer.nnodes=${NNODES}"
        "trainer.n_gpus_per_node=${GPUS_PER_NODE}"
        "trainer.default_local_dir=${SFT_DIR}"
        "trainer.experiment_name=${EXPERIMENT}_sft"
        "trainer.logger=${LOGGER}"
        # Optional: the SFT image cap of the model family (run_qwen3vl*_srpo.sh; unset keeps the YAML's 262144).
        ${SFT_MAX_IMAGE_PIXELS:+"data.max_image_pixels=${SFT_MAX_IMAGE_PIXELS}"}
        ${SFT_EXTRA[@]+"${SFT_EXTRA[@]}"}
    )
    local rdzv=(--master_addr="${MASTER_ADDR}" --master_port="${MASTER_PORT:-29500}")
    if [[ ${NNODES} == 1 && -z ${MASTER_PORT:-} ]]; then
        rdzv=(--standalone)  # a free local port: two single-node runs on one machine do not collide
    fi
    srpo_exec sft -- "${args[@]}" \
        ::real:: "${PYTHON}" -m torch.distributed.run --nnodes="${NNODES}" --nproc_per_node="${GPUS_PER_NODE}" --node_rank="${NODE_RANK}" \
        "${rdzv[@]}" \
        -m verl.trainer.sft_trainer --config-path="${SRPO_CONFIG_DIR}" --config-name=srpo_sft "${args[@]}"
}

srpo_stage_merge() {
    local step_dir
    step_dir=$(srpo_latest_sft_step_dir)
    local args=(merge --backend fsdp --local_dir "${step_dir}" --target_dir "${POLICY_PATH}")
    srpo_exec merge -- "${args[@]}" ::real:: "${PYTHON}" -m verl.model_merger "${args[@]}"
}

srpo_stage_grpo() {
    local args=(
        "actor_rollout_ref.model.path=${POLICY_PATH}"
        "data.train_files=${RL_TRAIN_FILE}"
        "data.val_files=${RL_VAL_FILE}"
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=${ACTOR_MICRO_BSZ}"
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=${LOGPROB_MICRO_BSZ}"
        "actor_rollout_ref.rollout.tensor_model_parallel_size=${ROLLOUT_TP}"
        "trainer.nnodes=${NNODES}"
        "trainer.n_gpus_per_node=${GPUS_PER_NODE}"
        "trainer.default_local_dir=${OUTPUT_DIR}/grpo"
        "trainer.experiment_name=${EXPERIMENT}"
        "trainer.logger=${LOGGER}"
        "trainer.save_freq=${SAVE_FREQ}"
        "trainer.test_freq=${TEST_FREQ}"
        # Optional: the vision patch of the model family (run_qwen3vl*_srpo.sh: 16); verl's RL data config says 14.
        ${IMAGE_PATCH:+"data.image_patch_size=${IMAGE_PATCH}"}
        ${GRPO_EXTRA[@]+"${GRPO_EXTRA[@]}"}
    )
    # The base model may stand in for the policy only while the merge stage, scheduled in this run, has not
    # written it yet; otherwise a POLICY_PATH without a model is an error (a typo must not pass the dry run).
    local dry=(--)
    if ! srpo_is_model "${POLICY_PATH}"; then
        if srpo_stage_on merge; then
            dry=(--stand-in-model "${MODEL_PATH}" --)
        elif [[ ${POLICY_PATH} != *://* ]]; then
            srpo_die "grpo: POLICY_PATH=${POLICY_PATH} is not a model folder (no config.json) and STAGES=${STAGES} has no merge stage to write it: set POLICY_PATH to the merged SFT model, or add merge to STAGES"
        fi
    fi
    srpo_exec grpo "${dry[@]}" "${args[@]}" \
        ::real:: "${PYTHON}" -m recipe.srpo.main_srpo "${args[@]}"
}

# eval: merge the newest GRPO checkpoint, generate on every benchmark parquet of EVAL_DIR with the base
# model, the SFT model (when it exists) and the trained policy, then one report of all of them.
srpo_stage_eval() {
    local files=() f
    for f in "${EVAL_DIR}"/*.parquet; do [[ -f ${f} ]] && files+=("${f}"); done
    if [[ ${#files[@]} -eq 0 ]]; then
        srpo_die "eval: no benchmark parquet in EVAL_DIR=${EVAL_DIR} (convert the benchmarks with python -m srpo_eval.convert)"
    fi
    local actor_dir
    actor_dir=$(srpo_latest_grpo_actor_dir)
    local merge=(merge --backend fsdp --local_dir "${actor_dir}" --target_dir "${EVAL_POLICY_PATH}")
    srpo_exec merge -- "${merge[@]}" ::real:: "${PYTHON}" -m verl.model_merger "${merge[@]}"
    local names=(base) models=("${MODEL_PATH}")
    if srpo_is_model "${POLICY_PATH}" || srpo_stage_on merge; then
        names+=(sft)
        models+=("${POLICY_PATH}")
    fi
    names+=("${EXPERIMENT}")
    models+=("${EVAL_POLICY_PATH}")
    local rollouts=() i
    for i in "${!names[@]}"; do
        rollouts+=("${EVAL_OUT}/rollouts-${names[$i]}.jsonl")
        for f in "${files[@]}"; do
            # shellcheck disable=SC2206  # EVAL_GENERATE_ARGS is a user-given, space-separated argument string
            local gen=(--model "${models[$i]}" --data "${f}" --out "${EVAL_OUT}/rollouts-${names[$i]}.jsonl"
                --backend "${EVAL_BACKEND}" --max-new-tokens "${EVAL_MAX_NEW_TOKENS}" ${EVAL_GENERATE_ARGS})
            srpo_exec eval --module srpo_eval.generate --may-not-exist "${EVAL_POLICY_PATH}" \
                --may-not-exist "${POLICY_PATH}" -- "${gen[@]}" \
                ::real:: "${PYTHON}" -m srpo_eval.generate "${gen[@]}"
        done
    done
    local report=("${rollouts[@]}" --data "${files[@]}" --names "${names[@]}" --out "${EVAL_OUT}/report")
    srpo_exec eval --module srpo_eval.report -- "${report[@]}" \
        ::real:: "${PYTHON}" -m srpo_eval.report "${report[@]}"
}

srpo_main() {
    if [[ -n ${SFT_MICRO_BSZ:-} ]]; then
        srpo_die "SFT_MICRO_BSZ=${SFT_MICRO_BSZ} would have no effect: verl's SFT trainer batches by tokens (data.use_dynamic_bsz=true) and ignores micro_batch_size_per_gpu. Unset it and set SFT_MAX_TOKENS_PER_GPU (data.max_token_len_per_gpu) instead"
    fi
    srpo_split_overrides "$@"
    # CPU_TRAIN=1: the same stages on a CPU with a tiny model (examples/cpu_train_setup.sh).
    if [[ ${CPU_TRAIN:-0} == 1 ]]; then
        srpo_cpu_train_setup
    fi
    SRPO_CONFIG_DIR=${SRPO_CONFIG_DIR:-$("${PYTHON}" -c \
        'import pathlib, recipe.srpo as m; print(pathlib.Path(m.__file__).resolve().parent / "config")')}
    local stage ran=0
    for stage in ${STAGES//,/ }; do
        case ${stage} in
            data | sft | merge | grpo | eval) ;;
            *) srpo_die "unknown stage '${stage}' in STAGES=${STAGES}; use a comma-separated subset of data,sft,merge,grpo,eval" ;;
        esac
    done
    for stage in data sft merge grpo eval; do
        if srpo_stage_on "${stage}"; then
            srpo_log "stage ${stage}$([[ ${DRY_RUN} == 1 ]] && echo ' (dry run)')"
            "srpo_stage_${stage}"
            ran=$((ran + 1))
        fi
    done
    srpo_log "done: ${ran} stage(s) of STAGES=${STAGES}$([[ ${DRY_RUN} == 1 ]] && echo ', dry run')"
}
