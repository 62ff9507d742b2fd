# NNODES > 1 for examples/cpu_train.sh (sourced, not run): every node of a multi-node run on this one machine,
# launched as on a cluster.  NNODES unset or 1: the one-node commands, unchanged.
#   - SFT: the run script's sft stage once per node, NODE_RANK=0..NNODES-1, all with MASTER_ADDR=127.0.0.1
#     and one MASTER_PORT (torchrun --nnodes NNODES --node_rank i, static rendezvous);
#   - GRPO: a Ray cluster of NNODES nodes (python -m recipe.srpo.cpu.ray_cluster: `ray start --head`, then
#     `ray start --address` for the others, with Ray 2.60's auth token), joined through RAY_ADDRESS, and
#     stopped at the end or on any failure (trap).
# Needs WORKSPACE, PYTHON, HERE and say() from cpu_train.sh.  bash >= 5.1 (wait -n -p).

CPU_NNODES=${NNODES:-1}
CPU_RAY_DIR="${WORKSPACE}/ray"

# cpu_nodes_sft SCRIPT: STAGES=sft of SCRIPT on every node; node 0's output on stdout, node i's in
# logs/sft_node<i>.log.  The first node that fails ends the others (each runs in its own process group).
cpu_nodes_sft() {
    local script=$1
    if [[ ${CPU_NNODES} == 1 ]]; then
        env STAGES=sft bash "${script}"
        return
    fi
    local port=${MASTER_PORT:-$("${PYTHON}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
    local -A node_of=()
    local pids=() rank pid
    for ((rank = 0; rank < CPU_NNODES; rank++)); do
        say "sft: node ${rank} of ${CPU_NNODES} (NODE_RANK=${rank} MASTER_ADDR=127.0.0.1 MASTER_PORT=${port})"
        local node=(setsid env STAGES=sft NNODES="${CPU_NNODES}" NODE_RANK="${rank}" MASTER_ADDR=127.0.0.1
            MASTER_PORT="${port}" bash "${script}")
        if ((rank == 0)); then
            "${node[@]}" 2>&1 &
        else
            "${node[@]}" > "${WORKSPACE}/logs/sft_node${rank}.log" 2>&1 &
        fi
        pids+=($!)
        node_of[$!]=${rank}
    done
    local running=("${pids[@]}") status p still
    # Poll rather than `wait -n -p`: measured, `wait -n -p` sometimes returned with the variable unset
    # while a node was still running ("pid: unbound variable").  `wait PID` returns the status bash
    # saved for a node that has already ended.
    while ((${#running[@]} > 0)); do
        still=()
        for p in "${running[@]}"; do
            if kill -0 "${p}" 2>/dev/null && [[ $(ps -o stat= -p "${p}" 2>/dev/null) != Z* ]]; then
                still+=("${p}")
                continue
            fi
            status=0
            wait "${p}" || status=$?
            if ((status != 0)); then
                say "sft: node ${node_of[${p}]} failed (exit ${status}); ending the other nodes"
                for p in ${running[@]+"${running[@]}"}; do kill -TERM -- "-${p}" 2>/dev/null || true; done
                wait ${running[@]+"${running[@]}"} 2>/dev/null || true
                return "${status}"
            fi
        done
        running=(${still[@]+"${still[@]}"})
        ((${#running[@]} == 0)) || sleep 0.2
    done
}

cpu_nodes_ray_down() {
    [[ -f ${CPU_RAY_DIR}/address ]] || return 0
    "${PYTHON}" -m recipe.srpo.cpu.ray_cluster nodes --dir "${CPU_RAY_DIR}" --out "${WORKSPACE}/logs/ray_nodes.json" ||
        say "ray: could not read the cluster's nodes before stopping it"
    "${PYTHON}" -m recipe.srpo.cpu.ray_cluster stop --dir "${CPU_RAY_DIR}"
}

# cpu_nodes_ray_up: NNODES > 1: start the cluster, export RAY_ADDRESS and the token; stopped on exit.
cpu_nodes_ray_up() {
    [[ ${CPU_NNODES} == 1 ]] && return 0
    local start=$SECONDS
    trap cpu_nodes_ray_down EXIT
    trap 'exit 130' INT TERM
    "${PYTHON}" -m recipe.srpo.cpu.ray_cluster start --dir "${CPU_RAY_DIR}" --nodes "${CPU_NNODES}" \
        --gpus-per-node "${GPUS_PER_NODE:-1}" > /dev/null
    eval "$("${PYTHON}" -m recipe.srpo.cpu.ray_cluster env --dir "${CPU_RAY_DIR}")"
    echo "ray_start $((SECONDS - start))" >> "${WORKSPACE}/logs/stage_seconds.txt"
    say "ray: ${CPU_NNODES} nodes at ${RAY_ADDRESS} (token ${RAY_AUTH_TOKEN_PATH}), in $((SECONDS - start)) s"
}
