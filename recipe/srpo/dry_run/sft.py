"""Dry run of the SFT stage (``torchrun -m verl.trainer.sft_trainer --config-name=srpo_sft``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recipe.srpo.chat_template import check_chat_template
from recipe.srpo.checks import ConfigError
from recipe.srpo.compose import SFT_CONFIG, compose
from recipe.srpo.dry_run.common import (
    DEFAULT_ROWS,
    GPU_ONLY,
    Reporter,
    check_files,
    check_freeze,
    check_pixel_cap,
    image_token_check,
    model_config,
    note_logger,
    quiet,
    step,
)
from recipe.srpo.dry_run.layout import check_layout_heads



def dry_run_sft(overrides: Sequence[str], rows: int = DEFAULT_ROWS, report: Reporter | None = None) -> int:
    from verl.utils.config import omega_conf_to_dataclass

    report = report or Reporter("sft")
    with step("compose"):
        cfg = compose(SFT_CONFIG, overrides)
        report.ok("compose", f"{SFT_CONFIG}.yaml + {len(overrides)} overrides")

    with step("model"):
        model_cfg = model_config(cfg.model, None, report, "model")
        report.ok("model", f"{cfg.model.path}: {type(model_cfg.processor).__name__}")

    with step("chat template"):
        report.ok("chat template", check_chat_template(model_cfg.processor))

    with step("verl config dataclasses"):
        resolved = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        built = []
        for key in ("engine", "optim", "checkpoint", "profiler"):
            omega_conf_to_dataclass(resolved[key])
            built.append(key)
        report.ok("verl config dataclasses", ", ".join(built))

    check_freeze(model_cfg, cfg.model.external_lib, report)

    with step("batch size"):
        world = int(cfg.trainer.nnodes) * int(cfg.trainer.n_gpus_per_node)
        sp = int(cfg.engine.get("ulysses_sequence_parallel_size", 1) or 1)
        if world % sp:
            raise ConfigError(f"{world} GPUs are not divisible by ulysses_sequence_parallel_size={sp}")
        dp = world // sp
        bsz = int(cfg.data.train_batch_size)
        if bsz % dp:
            raise ConfigError(
                f"data.train_batch_size={bsz} is not divisible by the data-parallel size {dp} "
                f"({cfg.trainer.nnodes} node(s) x {cfg.trainer.n_gpus_per_node} GPUs): verl would drop the remainder. "
                f"Use a multiple of {dp}"
            )
        report.ok("batch size", f"{bsz} = {dp} data-parallel ranks x {bsz // dp}")

    with step("micro batches"):
        report.ok("micro batches", _check_micro_batches(cfg, sp))

    with step("parallel heads"):
        check_layout_heads(report, "parallel heads", model_cfg.hf_config, None,
                           {"engine.ulysses_sequence_parallel_size": sp})

    with step("SFT data"):
        train = check_files(
            cfg.data.train_files, "SFT train", int(cfg.data.train_batch_size), report,
            "run the data stage (STAGES=data) or set SFT_DATA to your SFT parquet",
        )
        if cfg.data.get("val_files"):
            check_files(cfg.data.val_files, "SFT val", 1, report, "fix data.val_files or set it to null")
    with step("SFT rows"):
        _check_sft_rows(cfg, train, model_cfg, rows, report)
    note_logger(cfg, report)
    report.note("not checked here", GPU_ONLY["sft"])
    return report.passed


def _check_micro_batches(cfg: DictConfig, sp: int) -> str:
    """The memory knob verl's SFT trainer really uses (``data.use_dynamic_bsz`` decides which one).

    With dynamic batching (verl's default) micro batches are packed up to ``max_token_len_per_gpu``
    tokens per GPU (times the Ulysses size, ``verl/workers/engine/utils.py``) and
    ``micro_batch_size_per_gpu`` is ignored; verl asserts that the longest sequence fits
    (``verl/utils/seqlen_balancing.py``, rearrange_micro_batches), so a budget below the cutoff
    ``data.max_length`` would stop the run at the first long sample.
    """
    data = cfg.data
    if not data.use_dynamic_bsz:
        return (
            f"fixed micro batches of data.micro_batch_size_per_gpu={data.micro_batch_size_per_gpu} samples "
            "(data.use_dynamic_bsz=false)"
        )
    budget = int(data.max_token_len_per_gpu) * sp
    if budget < int(data.max_length):
        raise ConfigError(
            f"data.max_token_len_per_gpu={data.max_token_len_per_gpu} x ulysses_sequence_parallel_size={sp} = "
            f"{budget} tokens is less than data.max_length={data.max_length}: verl would stop at the first sample "
            f"that long (max_token_len must be greater than the sequence length). Set SFT_MAX_TOKENS_PER_GPU "
            f"(data.max_token_len_per_gpu) to at least {-(-int(data.max_length) // sp)}"
        )
    return (
        f"dynamic batching: up to data.max_token_len_per_gpu={data.max_token_len_per_gpu} tokens per GPU "
        f"(x SP {sp}) per micro batch, >= data.max_length={data.max_length}; micro_batch_size_per_gpu is unused"
    )


def _check_sft_rows(cfg: DictConfig, train: list[str], model_cfg: Any, rows: int, report: Reporter) -> None:
    from verl.trainer.sft_trainer import create_sft_dataset

    from srpo_reward import parse_response

    with quiet():
        dataset = create_sft_dataset(train, cfg.data, model_cfg.tokenizer, model_cfg.processor, max_samples=rows)
    n = min(rows, len(dataset))
    images_seen = 0
    for i in range(n):
        with quiet():
            item = dataset[i]
        where = f"SFT row {i} of {train[0]}"
        input_ids = item["input_ids"]
        loss_mask = item["loss_mask"]
        if int(loss_mask.sum()) == 0:
            raise ConfigError(f"{where}: no assistant tokens to train on (empty loss mask)")
        if len(input_ids) > int(cfg.data.max_length):
            raise ConfigError(f"{where}: {len(input_ids)} tokens > data.max_length={cfg.data.max_length}")
        mm = item.get("multi_modal_inputs") or {}
        if "pixel_values" in mm:
            images_seen += image_token_check(model_cfg.processor, input_ids, mm.get("image_grid_thw"), where)
            check_pixel_cap(model_cfg.processor, mm["image_grid_thw"], cfg.data.get("max_image_pixels"), where)
        messages = dataset.messages[i]
        targets = [m["content"] for m in messages if m.get("role") == "assistant"]
        if not targets or not isinstance(targets[-1], str):
            raise ConfigError(f"{where}: no assistant message")
        parsed = parse_response(targets[-1])
        if not parsed.ok:
            raise ConfigError(
                f"{where}: the assistant target does not have the SRPO five-block format ({parsed.reason}); "
                "rebuild the SFT data with srpo_data.build_reflections"
            )
    if images_seen == 0:
        raise ConfigError(
            f"none of the first {n} SFT rows carried an image to the processor: check data.image_key "
            "and the <image> placeholders of the SFT parquet"
        )
    report.ok("SFT rows", f"{n} rows through {type(dataset).__name__} + processor: {images_seen} image tokens, "
              "targets in SRPO format")


