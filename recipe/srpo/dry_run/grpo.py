"""Dry run of the GRPO stage (``python -m recipe.srpo.main_srpo``): config, batch arithmetic, model, data."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence

from omegaconf import DictConfig, OmegaConf

from recipe.srpo.chat_template import check_chat_template
from recipe.srpo.checks import ConfigError, check_image_patch, check_no_legacy_reward_key, check_reward_kwargs
from recipe.srpo.compose import GRPO_CONFIG, compose
from recipe.srpo.dry_run.common import (
    DEFAULT_ROWS,
    GPU_ONLY,
    Reporter,
    check_files,
    check_freeze,
    model_config,
    note_logger,
    quiet,
    step,
)
from recipe.srpo.dry_run.grpo_data import check_length_filter, check_rl_rows
from recipe.srpo.dry_run.grpo_reward import check_scoring, reward_manager
from recipe.srpo.dry_run.layout import check_layout_heads


def dry_run_grpo(
    overrides: Sequence[str],
    rows: int = DEFAULT_ROWS,
    stand_in_model: str | None = None,
    report: Reporter | None = None,
) -> int:
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    report = report or Reporter("grpo")
    with step("compose"):
        cfg = compose(GRPO_CONFIG, overrides)
        report.ok("compose", f"{GRPO_CONFIG}.yaml + {len(overrides)} overrides")

    with step("legacy reward key"):
        check_no_legacy_reward_key(cfg)
        report.ok("legacy reward key", "top-level custom_reward_function unset; reward.custom_reward_function is used")

    with step("entry point"):
        from recipe.srpo.main_srpo import check_config, srpo_trainer_cls

        if not cfg.trainer.use_v1 or cfg.trainer.v1.trainer_mode != "sync":
            check_config(cfg)  # raises the entry point's own message
        cls = srpo_trainer_cls()
        report.ok("entry point", f"recipe.srpo.main_srpo -> {cls.__name__} (verl V1 sync trainer + SRPO metrics)")

    with step("KL term"):
        report.ok("KL term", _check_kl(cfg))

    with step("verl validate_config"):
        with quiet() as buf:
            try:
                use_ref, use_critic = need_reference_policy(cfg), need_critic(cfg)
                validate_config(cfg, use_reference_policy=use_ref, use_critic=use_critic)
            except AssertionError as exc:
                raise ConfigError(f"{exc}. {_batch_fix(cfg)}") from exc
        if "All configuration checks passed" not in buf.getvalue():
            raise ConfigError("verl's validate_config did not finish")
        report.ok("verl validate_config", f"{_n_gpus(cfg)} GPUs, batch {cfg.data.train_batch_size} x n={cfg.actor_rollout_ref.rollout.n}")

    with step("batch arithmetic"):
        report.ok("batch arithmetic", _check_grpo_batches(cfg, report))

    with step("verl config dataclasses"):
        resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        built = []
        for key in ("actor_rollout_ref.rollout", "algorithm", "actor_rollout_ref.rollout.checkpoint_engine"):
            omega_conf_to_dataclass(OmegaConf.select(resolved, key))
            built.append(key)
        if use_critic:
            raise ConfigError("a critic is enabled: SRPO uses GRPO (algorithm.adv_estimator=grpo, no critic)")
        report.ok("verl config dataclasses", ", ".join(built))

    with step("model"):
        model_cfg = model_config(
            cfg.actor_rollout_ref.model, stand_in_model, report, "model",
            fix="set POLICY_PATH to the merged SFT model folder, or include the merge stage in STAGES "
            "(the base model then stands in until the merge writes it)",
        )
        report.ok("model", f"{type(model_cfg.processor).__name__}, tokenizer {type(model_cfg.tokenizer).__name__}")

    with step("chat template"):
        report.ok("chat template", check_chat_template(model_cfg.processor))

    with step("image patch"):
        report.ok("image patch", check_image_patch(cfg.data, model_cfg.processor))

    with step("parallel heads"):
        actor_sp = int(cfg.actor_rollout_ref.actor.get("ulysses_sequence_parallel_size", 1) or 1)
        check_layout_heads(report, "parallel heads", model_cfg.hf_config,
                           int(cfg.actor_rollout_ref.rollout.tensor_model_parallel_size),
                           {"actor_rollout_ref.actor.ulysses_sequence_parallel_size": actor_sp})

    check_freeze(model_cfg, cfg.actor_rollout_ref.model.external_lib, report)

    with step("reward weights"):
        kwargs = OmegaConf.to_container(cfg.reward.custom_reward_function.get("reward_kwargs") or {}, resolve=True)
        reward_cfg = check_reward_kwargs(kwargs)
        report.ok("reward weights", f"{len(kwargs)} reward_kwargs -> RewardConfig(eff_fixed={reward_cfg.eff_fixed}, ...)")

    with step("reward function and manager"):
        manager, fn = reward_manager(cfg, model_cfg.tokenizer)
        report.ok(
            "reward function and manager",
            f"verl loaded {cfg.reward.custom_reward_function.path}:{cfg.reward.custom_reward_function.name} "
            f"into {type(manager).__name__}",
        )

    with step("RL data"):
        bsz = int(cfg.data.train_batch_size)
        train = check_files(
            cfg.data.train_files, "RL train", bsz, report,
            "run the data stage (STAGES=data) or set RL_TRAIN_FILE to your parquet",
        )
        val = check_files(cfg.data.val_files, "RL val", 1, report, "run the data stage or set RL_VAL_FILE")
    samples = []
    for kind, files, min_rows in (("train", train, bsz), ("val", val, 1)):
        with step(f"RL {kind} length filter"):
            dataset = check_length_filter(cfg, files, model_cfg, f"RL {kind} length filter", min_rows, report)
        with step(f"RL {kind} rows"):
            samples += check_rl_rows(cfg, dataset, files, model_cfg, rows, report, f"RL {kind} rows")

    with step("scored rollouts"):
        report.ok("scored rollouts", check_scoring(cfg, manager, model_cfg.tokenizer, samples, kwargs))
    engine = str(cfg.actor_rollout_ref.rollout.name)
    if importlib.util.find_spec(engine) is None:
        report.note("rollout engine", f"{engine} is not installed here; the GPU machine needs it (pip install 'verl[{engine}]')")
    note_logger(cfg, report)
    report.note("not checked here", GPU_ONLY["grpo"])
    return report.passed


def _n_gpus(cfg: DictConfig) -> int:
    return int(cfg.trainer.nnodes) * int(cfg.trainer.n_gpus_per_node)


def _batch_fix(cfg: DictConfig) -> str:
    n = int(cfg.actor_rollout_ref.rollout.n)
    gpus = _n_gpus(cfg)
    step_ = gpus // math.gcd(gpus, n)
    return (
        f"Fix: with {gpus} GPUs ({cfg.trainer.nnodes} node(s) x {cfg.trainer.n_gpus_per_node}) and n={n}, "
        f"data.train_batch_size must be a multiple of {step_}"
    )


def _check_grpo_batches(cfg: DictConfig, report: Reporter) -> str:
    """The batch arithmetic verl's workers assert later, on the GPUs (here: before any GPU is booked)."""
    gpus = _n_gpus(cfg)
    n = int(cfg.actor_rollout_ref.rollout.n)
    actor = cfg.actor_rollout_ref.actor
    bsz = int(cfg.data.train_batch_size)
    mini = int(actor.ppo_mini_batch_size)
    if bsz % mini:
        raise ConfigError(f"data.train_batch_size={bsz} is not a multiple of actor.ppo_mini_batch_size={mini}")
    sp = int(actor.get("ulysses_sequence_parallel_size", 1) or 1)
    dp = gpus // sp
    if (mini * n) % dp:
        raise ConfigError(
            f"actor.ppo_mini_batch_size={mini} x n={n} responses is not divisible by the {dp} data-parallel ranks: "
            f"use a mini batch that is a multiple of {dp // math.gcd(dp, n)}"
        )
    per_rank = mini * n // dp
    micro = actor.get("ppo_micro_batch_size_per_gpu")
    if not actor.use_dynamic_bsz and micro and per_rank % int(micro):
        raise ConfigError(
            f"each rank gets {per_rank} responses per mini batch, not a multiple of "
            f"actor.ppo_micro_batch_size_per_gpu={micro}"
        )
    replicas = _check_rollout_parallel(cfg, report)
    return (
        f"{bsz} prompts x {n} = {bsz * n} responses per step; {per_rank} per rank per update "
        f"(micro {micro}); {replicas}"
    )


def _check_rollout_parallel(cfg: DictConfig, report: Reporter) -> str:
    """How verl 0.9.1 lays vLLM replicas over the GPUs (``verl/workers/rollout/replica.py``, RolloutReplica).

    A replica takes ``tp x dp x pp`` consecutive ranks.  Within a node, the node's GPU count must be a
    multiple of it, or a replica straddles two nodes (6 GPUs per node and TP 4: the second replica gets
    GPUs 4-5 of node 0 and 0-1 of node 1).  A replica larger than a node is supported (verl's multi-node
    replicas) when it spans whole nodes (verl asserts that): a NOTE, since TP then crosses the network.
    """
    rollout = cfg.actor_rollout_ref.rollout
    tp = int(rollout.tensor_model_parallel_size)
    size = tp * int(rollout.get("data_parallel_size", 1) or 1) * int(rollout.get("pipeline_model_parallel_size", 1) or 1)
    what = f"tensor_model_parallel_size={tp}" if size == tp else f"vLLM replica size {size} (tp x dp x pp)"
    gpus = _n_gpus(cfg)
    per_node = int(cfg.trainer.n_gpus_per_node)
    if size > gpus or gpus % size:
        raise ConfigError(f"actor_rollout_ref.rollout.{what} does not divide the {gpus} GPUs")
    if size <= per_node:
        if per_node % size:
            divisors = [d for d in range(1, per_node + 1) if per_node % d == 0]
            raise ConfigError(
                f"actor_rollout_ref.rollout.{what} does not divide the {per_node} GPUs per node: some vLLM "
                f"replicas would straddle two nodes. Use one of {divisors}"
            )
        return f"{gpus // size} vLLM replicas of {size} GPUs (TP={tp}), {per_node // size} per node"
    if size % per_node:
        raise ConfigError(
            f"actor_rollout_ref.rollout.{what} is larger than a node ({per_node} GPUs) but not a multiple of it: "
            f"verl 0.9.1 places a multi-node replica on whole nodes. Use a multiple of {per_node}"
        )
    report.note(
        "batch arithmetic",
        f"each vLLM replica spans {size // per_node} nodes (TP={tp} > {per_node} GPUs per node): verl 0.9.1 "
        "supports multi-node replicas, but tensor parallelism then runs over the inter-node network (slow)",
    )
    return f"{gpus // size} vLLM replicas of {size} GPUs (TP={tp}), each over {size // per_node} nodes"


def _check_kl(cfg: DictConfig) -> str:
    """The paper trains without a KL term; a KL switched on with a zero coefficient only costs a reference model."""
    actor, algorithm = cfg.actor_rollout_ref.actor, cfg.algorithm
    terms = []
    if actor.get("use_kl_loss", False):
        if float(actor.get("kl_loss_coef", 0.0)) == 0.0:
            raise ConfigError(
                "actor.use_kl_loss=true with actor.kl_loss_coef=0: verl builds a reference model for a KL loss "
                "that weighs nothing. Set a coefficient > 0, or keep use_kl_loss=false (the recipe's choice)"
            )
        terms.append(f"KL loss x {actor.kl_loss_coef}")
    if algorithm.get("use_kl_in_reward", False):
        if float(algorithm.kl_ctrl.kl_coef) == 0.0:
            raise ConfigError(
                "algorithm.use_kl_in_reward=true with algorithm.kl_ctrl.kl_coef=0: a reference model for a KL "
                "penalty that weighs nothing. Set a coefficient > 0, or keep use_kl_in_reward=false"
            )
        terms.append(f"KL in reward x {algorithm.kl_ctrl.kl_coef}")
    if terms:
        return (
            f"{' and '.join(terms)}: verl builds a reference model (the recipe's default has no KL term; it needs "
            "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu)"
        )
    return "off (use_kl_loss=false, use_kl_in_reward=false): no reference model is built"
