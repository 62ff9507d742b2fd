"""Dry run of the GRPO stage (``python -m recipe.srpo.main_srpo``): config, batch arithmetic, model, data."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recipe.srpo.checks import ConfigError, check_no_legacy_reward_key, check_reward_kwargs
from recipe.srpo.compose import GRPO_CONFIG, compose
from recipe.srpo.dry_run.common import (
    DEFAULT_ROWS,
    GPU_ONLY,
    Reporter,
    check_files,
    check_freeze,
    image_token_check,
    model_config,
    note_logger,
    parquet_rows,
    quiet,
    step,
)
from recipe.srpo.dry_run.grpo_reward import check_scoring, reward_manager



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
        report.ok("batch arithmetic", _check_grpo_batches(cfg))

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
        model_cfg = model_config(cfg.actor_rollout_ref.model, stand_in_model, report, "model")
        report.ok("model", f"{type(model_cfg.processor).__name__}, tokenizer {type(model_cfg.tokenizer).__name__}")

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
    for what, files in (("RL train rows", train), ("RL val rows", val)):
        with step(what):
            samples += _check_rl_rows(cfg, files, model_cfg, rows, report, what)

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


def _check_grpo_batches(cfg: DictConfig) -> str:
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
    tp = int(cfg.actor_rollout_ref.rollout.tensor_model_parallel_size)
    per_node = int(cfg.trainer.n_gpus_per_node)
    if tp > gpus or gpus % tp:
        raise ConfigError(
            f"actor_rollout_ref.rollout.tensor_model_parallel_size={tp} does not divide the {gpus} GPUs"
        )
    if tp > per_node:
        raise ConfigError(f"rollout tensor parallel size {tp} spans nodes ({per_node} GPUs per node): use <= {per_node}")
    return (
        f"{bsz} prompts x {n} = {bsz * n} responses per step; {per_rank} per rank per update "
        f"(micro {micro}); {gpus // tp} vLLM replicas of TP={tp}"
    )


def _check_rl_rows(cfg: DictConfig, files: list[str], model_cfg: Any, rows: int, report: Reporter, what: str) -> list[dict]:
    from verl.trainer.ppo.utils import create_rl_dataset
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    from recipe.srpo.dataset import has_srpo_prompt

    tokenizer, processor = model_cfg.tokenizer, model_cfg.processor
    with quiet():
        dataset = create_rl_dataset(files, cfg.data, tokenizer, processor, is_train=True, max_samples=rows)
    wanted = min(rows, sum(parquet_rows(f) for f in files))
    if len(dataset) < wanted:
        raise ConfigError(
            f"{wanted - len(dataset)} of the first {wanted} rows of {files[0]} were dropped while loading "
            f"(prompt longer than data.max_prompt_length={cfg.data.max_prompt_length}, or a broken image/prompt)"
        )
    samples = []
    image_tokens = 0
    max_len = 0
    for i in range(len(dataset)):
        with quiet():
            item = dataset[i]
        where = f"{what} {i} of {files[0]}"
        messages = item["raw_prompt"]
        user_texts = [
            part.get("text", "") for m in messages if m.get("role") == "user" and isinstance(m.get("content"), list)
            for part in m["content"] if part.get("type") == "text"
        ] + [m["content"] for m in messages if m.get("role") == "user" and isinstance(m.get("content"), str)]
        if not any(has_srpo_prompt(t) for t in user_texts):
            raise ConfigError(
                f"{where}: the prompt lacks the SRPO format prompt; keep "
                "data.custom_cls.path=pkg://recipe.srpo.dataset data.custom_cls.name=SRPODataset"
            )
        reward_model = item.get("reward_model") or {}
        if not isinstance(reward_model, dict) or "ground_truth" not in reward_model:
            raise ConfigError(f"{where}: no reward_model.ground_truth column (verl's reward manager reads it)")
        images, videos, audios = type(dataset)._process_multi_modal_info(messages, dataset.image_patch_size, cfg.data)
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = build_multimodal_processor_inputs(processor, text=[text], images=images, videos=videos, audio=audios)
        input_ids = inputs["input_ids"][0]
        if images:
            image_tokens += image_token_check(processor, input_ids, inputs.get("image_grid_thw"), where)
        if len(input_ids) > int(cfg.data.max_prompt_length):
            raise ConfigError(f"{where}: prompt of {len(input_ids)} tokens > data.max_prompt_length")
        max_len = max(max_len, len(input_ids))
        samples.append(
            {
                "prompt_text": text,
                "data_source": item.get("data_source", "unknown"),
                "ground_truth": str(reward_model["ground_truth"]),
                "extra_info": item.get("extra_info") or {},
            }
        )
    if image_tokens == 0:
        raise ConfigError(
            f"none of the first {len(dataset)} rows of {files[0]} carried an image to the processor: "
            f"check data.image_key (now '{cfg.data.image_key}') and the <image> placeholders"
        )
    report.ok(
        what,
        f"{len(dataset)} rows through {type(dataset).__name__} + {type(processor).__name__}: SRPO prompt applied, "
        f"{image_tokens} image tokens, longest prompt {max_len} <= {cfg.data.max_prompt_length} tokens",
    )
    return samples


