"""GRPO dry-run checks of the RL data: verl's own overlong-prompt filter over whole files, then a few rows.

verl's ``RLHFDataset`` drops every prompt longer than ``data.max_prompt_length`` while it
loads (``filter_overlong_prompts``), without failing.  If fewer than one batch survives, the
trainer runs 0 steps and exits 0.  So the dry run builds the recipe's dataset class over the
WHOLE of each file with that very filter (in this process) and refuses a train file that
leaves less than one batch, printing how many prompts were dropped.
"""

from __future__ import annotations

import time
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recipe.srpo.checks import ConfigError
from recipe.srpo.dry_run.common import Reporter, image_token_check, parquet_rows, quiet

DROP_FIX = (
    "run the data stage, which sizes prompts for this model and max_prompt_length "
    "(srpo_data.prepare_rl --max-prompt-length N --model DIR; RL_ON_TOO_LONG=resize shrinks images instead of "
    "dropping), raise data.max_prompt_length, or cap images with data.max_image_pixels"
)


def filter_config(data_cfg: DictConfig) -> DictConfig:
    """``data`` with verl's length filter on and run in this process (the GPU config's worker pool forks)."""
    data = OmegaConf.create(OmegaConf.to_container(data_cfg, resolve=True))
    data.filter_overlong_prompts = True
    data.filter_overlong_prompts_workers = None
    return data


def rows_in(files: list[str]) -> int:
    total = 0
    for path in files:
        if not str(path).endswith(".parquet"):
            raise ConfigError(f"{path}: the recipe's RL data is parquet (verl also reads json/jsonl, not checked here)")
        total += parquet_rows(path)
    return total


def check_length_filter(
    cfg: DictConfig, files: list[str], model_cfg: Any, what: str, min_rows: int, report: Reporter
) -> Any:
    """verl's overlong-prompt filter over all rows of ``files``; returns the filtered dataset.

    Refuses fewer than ``min_rows`` surviving rows (one train batch), and prompts the run would
    crash on (filter off with ``truncation: error``).
    """
    from verl.trainer.ppo.utils import create_rl_dataset

    total = rows_in(files)
    max_len = int(cfg.data.max_prompt_length)
    start = time.perf_counter()
    with quiet():
        dataset = create_rl_dataset(
            files, filter_config(cfg.data), model_cfg.tokenizer, model_cfg.processor, is_train=True, max_samples=-1
        )
    seconds = time.perf_counter() - start
    kept = len(dataset)
    dropped = total - kept
    where = files[0] if len(files) == 1 else f"{len(files)} files"
    if dropped and not cfg.data.get("filter_overlong_prompts", True):
        if cfg.data.get("truncation", "error") == "error":
            raise ConfigError(
                f"{dropped} of {total} prompts of {where} are longer than data.max_prompt_length={max_len} tokens "
                "(or unreadable), data.filter_overlong_prompts=false and data.truncation=error: the run would stop "
                f"at the first of them. Fix: {DROP_FIX}"
            )
        report.note(what, f"{dropped} of {total} prompts are longer than {max_len} tokens and will be truncated "
                    f"(data.truncation={cfg.data.truncation})")
        with quiet():
            dataset = create_rl_dataset(files, cfg.data, model_cfg.tokenizer, model_cfg.processor, is_train=True)
        kept = len(dataset)
    if kept < min_rows:
        raise ConfigError(
            f"verl's length filter keeps {kept} of the {total} rows of {where} ({dropped} dropped: prompt longer "
            f"than data.max_prompt_length={max_len} tokens, or unreadable), fewer than one batch ({min_rows}): "
            f"verl would train 0 steps and exit 0. Fix: {DROP_FIX}, or use more data or a smaller batch"
        )
    steps = f"; {kept // min_rows} steps per epoch at batch {min_rows}" if min_rows > 1 else ""
    report.ok(
        what,
        f"verl's overlong-prompt filter over all {total} rows of {where}: {kept} kept, {dropped} dropped "
        f"(> {max_len} tokens or unreadable){steps} ({seconds:.1f}s, one process)",
    )
    if dropped:
        report.note(what, f"{dropped} prompts of {where} will never be trained on; to keep them: {DROP_FIX}")
    return dataset


def check_rl_rows(
    cfg: DictConfig, dataset: Any, files: list[str], model_cfg: Any, rows: int, report: Reporter, what: str
) -> list[dict]:
    """The first ``rows`` rows of the filtered ``dataset`` in detail: SRPO prompt, ground truth, image tokens."""
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    from recipe.srpo.dataset import has_srpo_prompt

    processor = model_cfg.processor
    samples = []
    image_tokens = 0
    max_len = 0
    n = min(rows, len(dataset))
    for i in range(n):
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
            f"none of the first {n} rows of {files[0]} carried an image to the processor: "
            f"check data.image_key (now '{cfg.data.image_key}') and the <image> placeholders"
        )
    report.ok(
        what,
        f"first {n} rows through {type(dataset).__name__} + {type(processor).__name__}: SRPO prompt applied, "
        f"{image_tokens} image tokens, longest prompt {max_len} <= {cfg.data.max_prompt_length} tokens",
    )
    return samples


