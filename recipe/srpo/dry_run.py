"""CPU dry run of the SRPO recipe: every stage checked with the arguments the real run would use.

The run scripts (``examples/run_qwen*_srpo.sh``) call this module instead of the
real command when ``DRY_RUN=1``, passing the very same argument list::

    python -m recipe.srpo.dry_run sft   [--rows N] -- <the SFT trainer's Hydra overrides>
    python -m recipe.srpo.dry_run merge            -- <verl.model_merger's arguments>
    python -m recipe.srpo.dry_run grpo  [--rows N] [--stand-in-model DIR] -- <main_srpo's Hydra overrides>
    python -m recipe.srpo.dry_run data  --module srpo_data.prepare_rl -- <the preprocessor's arguments>

Each check prints one line; the first failing check prints what to fix and the
process exits with status 1.  What is checked, per stage:

- ``sft``: the config composes (misspelled keys fail here); verl's config
  dataclasses build (model with its tokenizer and processor, engine, optimizer,
  checkpoint); the batch divides the data-parallel size and the data has at least
  one batch; the vision freeze is installed through verl's ``external_lib`` hook and
  freezes the model's real layout (built on the meta device: no weights loaded);
  a few rows load through verl's SFT dataset with the processor (image tokens and
  pixel values checked) and their targets have the SRPO format.
- ``merge``: verl's model merger parses the arguments; an existing checkpoint has
  the files the merger reads.
- ``grpo``: compose; the legacy reward key is refused; verl's own
  ``validate_config`` (batch divisibility by the GPU count, micro-batch keys) plus
  the trainer's mini-batch and rollout-parallel arithmetic; verl's config
  dataclasses; the reward weights; verl's reward-function loader and reward manager;
  a few rows of each data file through verl's dataset class (the SRPO prompt
  applied, images reaching the processor, prompt length); a few synthetic rollouts
  scored through verl's reward manager and compared with direct ``compute_score``
  calls; the filter metric present in the reward's output; the entry point's trainer.
- ``data``: the preprocessor module is installed and its input files exist.

What no CPU check can prove (vLLM rollout, FSDP steps, memory, throughput) is
listed at the end of the ``grpo`` and ``sft`` stages.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib.util
import io
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recipe.srpo.checks import ConfigError, check_no_legacy_reward_key, check_reward_kwargs

CONFIG_DIR = Path(__file__).resolve().parent / "config"
GRPO_CONFIG = "srpo_trainer"
SFT_CONFIG = "srpo_sft"
DEFAULT_ROWS = 3

GPU_ONLY = {
    "grpo": "needs a GPU run (examples/smoke_gpu.sh): vLLM rollout and weight sync, FSDP forward/backward and "
    "optimizer steps, GPU memory at these micro-batch sizes, throughput",
    "sft": "needs a GPU run: torchrun process groups, FSDP forward/backward and optimizer steps, "
    "GPU memory at this micro batch, throughput",
}


class DryRunFailure(Exception):
    """A failed check; ``fix`` says what to change."""

    def __init__(self, check: str, message: str):
        super().__init__(f"{check}: {message}")
        self.check = check
        self.message = message


@dataclass
class Reporter:
    """Prints one line per check; counts them."""

    stage: str
    out: Any = None
    passed: int = 0

    def __post_init__(self) -> None:
        if self.out is None:
            self.out = sys.stdout

    def ok(self, check: str, detail: str = "") -> None:
        self.passed += 1
        self._line("OK", check, detail)

    def note(self, check: str, detail: str) -> None:
        self._line("NOTE", check, detail)

    def fail(self, check: str, message: str) -> None:
        self._line("FAIL", check, message)

    def _line(self, tag: str, check: str, detail: str) -> None:
        text = f"[{tag:>4}] {self.stage}: {check}" + (f" -- {detail}" if detail else "")
        print(text, file=self.out, flush=True)


@contextlib.contextmanager
def step(check: str) -> Iterator[None]:
    """Turn any exception inside into a :class:`DryRunFailure` for ``check``."""
    try:
        yield
    except DryRunFailure:
        raise
    except ConfigError as exc:
        raise DryRunFailure(check, str(exc)) from exc
    except Exception as exc:  # noqa: BLE001 - every failure must become a one-line message
        message = str(exc).strip() or type(exc).__name__
        raise DryRunFailure(check, f"{type(exc).__name__}: {message}") from exc


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """Silence verl's prints (kept for error messages)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield buf


# --------------------------------------------------------------------------- config composition


def override_key(override: str) -> str:
    key = override.split("=", 1)[0]
    return key.lstrip("+~")


def suggest_key(base: DictConfig, key: str) -> str:
    """A hint for a key that is not in ``base``: the closest existing key under the same parent."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(base, parent) if parent else base
    if not isinstance(node, DictConfig):
        return ""
    close = difflib.get_close_matches(leaf, [str(k) for k in node.keys()], n=1)
    return f" Did you mean '{parent + '.' if parent else ''}{close[0]}'?" if close else ""


def compose(config_name: str, overrides: Sequence[str]) -> DictConfig:
    """Compose ``config_name`` from the recipe's config dir with ``overrides``, as the trainer would."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    def _compose(ovs: Sequence[str]) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None, job_name="srpo_dry_run"):
            return hydra_compose(config_name=config_name, overrides=list(ovs))

    try:
        return _compose(overrides)
    except HydraException as exc:
        base = _compose([])
        for ov in overrides:
            key = override_key(ov)
            if not ov.startswith("+") and OmegaConf.select(base, key, default="__missing__") == "__missing__":
                raise ConfigError(
                    f"override '{ov}': '{key}' is not a key of {config_name} (verl {_verl_version()} + SRPO)."
                    f"{suggest_key(base, key)} Fix the spelling (a key verl does not declare needs a leading '+')."
                ) from exc
        raise ConfigError(f"the overrides do not compose: {str(exc).splitlines()[0]}") from exc


def _verl_version() -> str:
    import verl

    return verl.__version__


# --------------------------------------------------------------------------- shared checks


def model_config(node: DictConfig, stand_in_model: str | None, report: Reporter, check: str) -> Any:
    """verl's HFModelConfig (tokenizer + processor + external_lib import) for a model node."""
    from verl.utils.config import omega_conf_to_dataclass

    node = OmegaConf.create(OmegaConf.to_container(node, resolve=True))
    path = str(node.path)
    local = os.path.expanduser(path)
    if not os.path.isfile(os.path.join(local, "config.json")):
        if stand_in_model and os.path.exists(os.path.expanduser(stand_in_model)):
            report.note(
                check,
                f"{path} holds no model yet (the merge stage writes it); checking with its base model {stand_in_model}",
            )
            node.path = stand_in_model
        elif "/" in path and not path.startswith(("/", ".", "~")):
            raise ConfigError(
                f"model path '{path}' is not a local folder: download it first (the dry run never fetches from a hub) "
                "and set MODEL_PATH to the folder"
            )
        else:
            raise ConfigError(
                f"model path '{path}' is not a Hugging Face model folder (no config.json): "
                "set MODEL_PATH (or POLICY_PATH) to a local model folder"
            )
    with quiet():
        cfg = omega_conf_to_dataclass(node)
    if cfg.processor is None:
        raise ConfigError(f"{node.path} has no image processor: SRPO needs a vision-language model (Qwen2.5-VL)")
    return cfg


def check_freeze(model_cfg: Any, external_lib: Any, report: Reporter) -> None:
    """The freeze module is imported by verl's hook and freezes this model's real layout (meta device)."""
    import torch
    from verl.utils.model import get_hf_auto_model_class

    from recipe.srpo import freeze_vision

    with step("vision freeze"):
        libs = external_lib if isinstance(external_lib, (list, tuple)) else [external_lib]
        if "recipe.srpo.freeze_vision" not in [str(x) for x in libs if x]:
            raise ConfigError(
                "model.external_lib does not include recipe.srpo.freeze_vision: the vision tower would be trained "
                "(verl 0.9.1 ignores actor.freeze_vision_tower). Restore model.external_lib=recipe.srpo.freeze_vision"
            )
        if not freeze_vision.is_installed():
            raise ConfigError("verl imported model.external_lib but the FSDP engine is not patched")
        with quiet(), torch.device("meta"):
            module = get_hf_auto_model_class(model_cfg.hf_config).from_config(
                model_cfg.hf_config, attn_implementation="eager"
            )
        frozen = freeze_vision.freeze_vision(module)
        n_frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
        n_train = sum(p.numel() for p in module.parameters() if p.requires_grad)
        report.ok(
            "vision freeze",
            f"verl's external_lib hook patched its FSDP engine; on {type(module).__name__} it freezes "
            f"{frozen} tensors ({_human(n_frozen)} weights), {_human(n_train)} stay trainable",
        )


def _human(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def parquet_rows(path: str) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def check_files(files: Any, what: str, min_rows: int, report: Reporter, fix: str) -> list[str]:
    paths = [files] if isinstance(files, str) else list(files or [])
    if not paths:
        raise ConfigError(f"no {what} file configured: {fix}")
    for path in paths:
        local = os.path.expanduser(str(path))
        if not os.path.isfile(local):
            raise ConfigError(f"{what} file {path} does not exist: {fix}")
    rows = sum(parquet_rows(os.path.expanduser(str(p))) for p in paths if str(p).endswith(".parquet"))
    if rows and rows < min_rows:
        raise ConfigError(
            f"{what} has {rows} rows, fewer than one batch ({min_rows}): the run would train 0 steps. "
            "Use more data or a smaller batch size"
        )
    report.ok(f"{what} files", f"{len(paths)} file(s), {rows} rows")
    return [os.path.expanduser(str(p)) for p in paths]


def image_token_check(processor: Any, input_ids: Any, grid_thw: Any, where: str) -> int:
    """Image placeholder tokens in ``input_ids`` equal what ``image_grid_thw`` says (the processor saw the image)."""
    import torch

    if grid_thw is None:
        raise ConfigError(f"{where}: the row has images but the processor produced no image_grid_thw")
    image_token_id = getattr(processor, "image_token_id", None)
    if image_token_id is None:
        image_token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    merge = processor.image_processor.merge_size
    expected = int(torch.as_tensor(grid_thw).prod(dim=-1).sum().item()) // (merge * merge)
    found = int((torch.as_tensor(input_ids) == image_token_id).sum().item())
    if found != expected or found == 0:
        raise ConfigError(f"{where}: {found} image tokens in the prompt, the image grid needs {expected}")
    return found


def _check_pixel_cap(processor: Any, grid_thw: Any, max_pixels: Any, where: str) -> None:
    """Every image reached the model at most ``max_pixels`` large (the SFT cap really applied)."""
    import torch

    if max_pixels is None:
        return
    patch = int(processor.image_processor.patch_size)
    grid = torch.as_tensor(grid_thw)
    largest = int((grid[:, 1] * grid[:, 2]).max().item()) * patch * patch
    if largest > int(max_pixels):
        raise ConfigError(f"{where}: an image reached the processor with {largest} pixels > data.max_image_pixels")


# --------------------------------------------------------------------------- SFT


def dry_run_sft(overrides: Sequence[str], rows: int = DEFAULT_ROWS, report: Reporter | None = None) -> int:
    from verl.utils.config import omega_conf_to_dataclass

    report = report or Reporter("sft")
    with step("compose"):
        cfg = compose(SFT_CONFIG, overrides)
        report.ok("compose", f"{SFT_CONFIG}.yaml + {len(overrides)} overrides")

    with step("model"):
        model_cfg = model_config(cfg.model, None, report, "model")
        report.ok("model", f"{cfg.model.path}: {type(model_cfg.processor).__name__}")

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
            _check_pixel_cap(model_cfg.processor, mm["image_grid_thw"], cfg.data.get("max_image_pixels"), where)
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


# --------------------------------------------------------------------------- merge


def dry_run_merge(argv: Sequence[str], report: Reporter | None = None) -> int:
    from verl.model_merger.base_model_merger import ModelMergerConfig, _default_hf_model_config_path, parse_args

    report = report or Reporter("merge")
    with step("model_merger arguments"):
        saved = sys.argv
        try:
            sys.argv = ["verl.model_merger", *argv]
            with contextlib.redirect_stderr(io.StringIO()) as err:
                try:
                    args = parse_args()
                except SystemExit as exc:
                    raise ConfigError(f"verl.model_merger rejects the arguments: {err.getvalue().strip()}") from exc
        finally:
            sys.argv = saved
        # verl's generate_config_from_args would create --target_dir: build the same config without side effects.
        merge_cfg = ModelMergerConfig(
            operation=args.operation,
            backend=args.backend,
            local_dir=args.local_dir,
            target_dir=getattr(args, "target_dir", None),
            hf_model_config_path=_default_hf_model_config_path(args.backend, args.local_dir or ""),
        )
        if merge_cfg.operation != "merge" or merge_cfg.backend != "fsdp":
            raise ConfigError("the recipe merges FSDP checkpoints: use 'merge --backend fsdp'")
        if not merge_cfg.local_dir or not merge_cfg.target_dir:
            raise ConfigError("both --local_dir (the SFT checkpoint step folder) and --target_dir are required")
        report.ok("model_merger arguments", f"{merge_cfg.local_dir} -> {merge_cfg.target_dir}")
    with step("SFT checkpoint"):
        local = Path(merge_cfg.local_dir)
        if local.is_dir():
            missing = [name for name in ("fsdp_config.json", "huggingface") if not (local / name).exists()]
            if missing:
                raise ConfigError(f"{local} lacks {missing}: not an FSDP checkpoint written by verl's SFT trainer")
            report.ok("SFT checkpoint", f"{local} has the files the merger reads")
        else:
            report.note("SFT checkpoint", f"{local} does not exist yet (the SFT stage writes it)")
    return report.passed


# --------------------------------------------------------------------------- GRPO


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
        manager, fn = _reward_manager(cfg, model_cfg.tokenizer)
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
        report.ok("scored rollouts", _check_scoring(cfg, manager, model_cfg.tokenizer, samples, kwargs))
    engine = str(cfg.actor_rollout_ref.rollout.name)
    if importlib.util.find_spec(engine) is None:
        report.note("rollout engine", f"{engine} is not installed here; the GPU machine needs it (pip install 'verl[{engine}]')")
    note_logger(cfg, report)
    report.note("not checked here", GPU_ONLY["grpo"])
    return report.passed


def note_logger(cfg: DictConfig, report: Reporter) -> None:
    """A NOTE when wandb logging is on but no key is set here (the GPU machine needs one)."""
    loggers = cfg.trainer.get("logger") or []
    loggers = [loggers] if isinstance(loggers, str) else list(loggers)
    if "wandb" in loggers and not os.environ.get("WANDB_API_KEY"):
        report.note("logger", "trainer.logger includes wandb: set WANDB_API_KEY on the GPU machine, or LOGGER='[console]'")


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


def _reward_manager(cfg: DictConfig, tokenizer: Any) -> tuple[Any, Callable[..., Any]]:
    from verl.trainer.ppo.reward import get_custom_reward_fn, load_reward_manager, resolve_reward_manager_cls

    fn = get_custom_reward_fn(cfg)
    if fn is None:
        raise ConfigError(
            "reward.custom_reward_function.path is empty: verl would use its default scorer. "
            "Set reward.custom_reward_function.path=pkg://srpo_reward"
        )
    resolve_reward_manager_cls(cfg)
    with quiet():
        manager = load_reward_manager(cfg, tokenizer)
    return manager, fn


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


def synthetic_responses(ground_truth: str) -> dict[str, str]:
    """A fixed-by-reflection response and a malformed one, built from a row's ground truth."""
    gt = ground_truth.strip()
    if re.fullmatch(r"[A-Ea-e]", gt):
        wrong = "B" if gt.upper() != "B" else "C"
    else:
        wrong = "-987654321" if gt != "-987654321" else "123456789"
    fixed = (
        f"<think> First try. </think> <answer> \\boxed{{{wrong}}} </answer> "
        "<reflection> The first answer used the wrong relation; redo the computation. </reflection> "
        f"<think> Recomputed carefully. </think> <answer> \\boxed{{{gt}}} </answer>"
    )
    malformed = f"<answer> \\boxed{{{gt}}} </answer>"
    return {"fixed": fixed, "malformed": malformed}


def score_with_manager(manager: Any, tokenizer: Any, prompt_text: str, response: str, sample: dict) -> dict:
    """One response through verl's reward manager, as its reward loop calls it (a one-row DataProto)."""
    import numpy as np
    import torch
    from verl import DataProto

    prompt_ids = tokenizer(prompt_text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    eos = tokenizer.eos_token or ""
    response_ids = tokenizer(response + eos, add_special_tokens=False, return_tensors="pt")["input_ids"]
    attention = torch.ones(1, prompt_ids.shape[1] + response_ids.shape[1], dtype=torch.long)
    data = DataProto.from_dict(
        tensors={"prompts": prompt_ids, "responses": response_ids, "attention_mask": attention},
        non_tensors={
            "data_source": np.array([sample["data_source"]], dtype=object),
            "reward_model": np.array([{"ground_truth": sample["ground_truth"]}], dtype=object),
            "extra_info": np.array([dict(sample["extra_info"])], dtype=object),
        },
    )
    out = manager.loop.run_until_complete(manager.run_single(data))
    return {"reward_score": float(out["reward_score"]), **out["reward_extra_info"]}


def _check_scoring(cfg: DictConfig, manager: Any, tokenizer: Any, samples: list[dict], kwargs: dict) -> str:
    import srpo_reward

    metric = cfg.algorithm.filter_groups.metric if cfg.algorithm.filter_groups.enable else None
    checked = 0
    for sample in samples[:2]:
        responses = synthetic_responses(sample["ground_truth"])
        scores = {}
        for name, response in responses.items():
            via_verl = score_with_manager(manager, tokenizer, sample["prompt_text"], response, sample)
            direct = srpo_reward.compute_score(
                sample["data_source"], response, sample["ground_truth"], dict(sample["extra_info"]), **kwargs
            )
            if not math.isclose(via_verl["reward_score"], direct["score"], abs_tol=1e-9):
                raise ConfigError(
                    f"verl's reward manager scored {via_verl['reward_score']} but compute_score gives {direct['score']} "
                    f"for the '{name}' rollout of ground truth {sample['ground_truth']!r}"
                )
            if metric and metric != "reward" and metric not in via_verl:
                raise ConfigError(
                    f"algorithm.filter_groups.metric={metric} is not a key of the reward's output "
                    f"({sorted(via_verl)}): use metric=acc"
                )
            scores[name] = via_verl
        fixed = scores["fixed"]
        if not (fixed["acc"] == 1 and fixed["acc_first"] == 0 and fixed["fixed"] == 1):
            raise ConfigError(
                f"a correct revision of ground truth {sample['ground_truth']!r} was not graded as fixed "
                f"(acc={fixed['acc']}, acc_first={fixed['acc_first']}, fixed={fixed['fixed']}): check the "
                "ground-truth column and the grader"
            )
        if not fixed["reward_score"] > scores["malformed"]["reward_score"]:
            raise ConfigError("a well-formed fixed response does not outscore a malformed one: check the weights")
        checked += len(responses)
    return (
        f"{checked} rollouts through {type(manager).__name__} equal direct compute_score; "
        f"filter metric '{metric}' present; fixed > malformed"
    )


# --------------------------------------------------------------------------- data


def dry_run_data(
    module: str, argv: Sequence[str], may_not_exist: Sequence[str] = (), report: Reporter | None = None
) -> int:
    """The preprocessor is installed, accepts ``argv`` (its own parser/config validation) and its inputs exist."""
    report = report or Reporter("data")
    name = module.rsplit(".", 1)[-1]
    with step(f"{name} installed"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"python module {module} not found: install the project (pip install -e .)")
        mod = importlib.import_module(module)
        report.ok(f"{name} installed", module)
    with step(f"{name} arguments"):
        with contextlib.redirect_stderr(io.StringIO()) as err:
            try:
                if hasattr(mod, "build_parser"):
                    mod.build_parser().parse_args(list(argv))
                elif hasattr(mod, "parse_args"):
                    args = mod.parse_args(list(argv))
                    if hasattr(mod, "config_from_args"):
                        mod.config_from_args(args)
            except SystemExit as exc:
                raise ConfigError(f"{module} rejects its arguments: {err.getvalue().strip()}") from exc
            except Exception as exc:  # the tool's own config validation (e.g. the builder's YAML)
                detail = " ".join(str(exc).split())
                raise ConfigError(f"{module} rejects its configuration: {type(exc).__name__}: {detail}") from exc
        report.ok(f"{name} arguments", "accepted by its own parser")
    with step(f"{name} inputs"):
        inputs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--input", "--config")]
        later = {os.path.abspath(os.path.expanduser(p)) for p in may_not_exist}
        missing = [
            p for p in inputs
            if not os.path.exists(os.path.expanduser(p)) and os.path.abspath(os.path.expanduser(p)) not in later
        ]
        if missing:
            raise ConfigError(f"{missing[0]} does not exist: download it or point the run script's variable at it")
        report.ok(f"{name} inputs", ", ".join(inputs) or "none named")
    return report.passed


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recipe.srpo.dry_run",
        description="Check one stage of the SRPO recipe on a CPU machine, with the real run's arguments "
        "(given after '--').",
    )
    parser.add_argument("stage", choices=["data", "sft", "merge", "grpo"])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows of each data file to load (default 3)")
    parser.add_argument(
        "--stand-in-model",
        default=None,
        help="grpo: a model folder with the same tokenizer/processor, used if the policy path does not exist yet",
    )
    parser.add_argument("--module", default=None, help="data: the preprocessor module the real run calls")
    parser.add_argument(
        "--may-not-exist", action="append", default=[], help="data: an input an earlier step of the stage writes"
    )
    return parser


def run(argv: Sequence[str] | None = None, out: Any = None) -> int:
    """Run one stage's checks; return the exit status (0 pass, 1 fail)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own, rest = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    ns = build_parser().parse_args(own)
    report = Reporter(ns.stage, out=out)
    start = time.perf_counter()
    try:
        if ns.stage == "sft":
            dry_run_sft(rest, rows=ns.rows, report=report)
        elif ns.stage == "grpo":
            dry_run_grpo(rest, rows=ns.rows, stand_in_model=ns.stand_in_model, report=report)
        elif ns.stage == "merge":
            dry_run_merge(rest, report=report)
        else:
            if not ns.module:
                raise DryRunFailure("arguments", "the data stage needs --module")
            dry_run_data(ns.module, rest, may_not_exist=ns.may_not_exist, report=report)
    except DryRunFailure as exc:
        report.fail(exc.check, exc.message)
        print(f"DRY RUN FAILED: {ns.stage} stage, check '{exc.check}' ({report.passed} checks passed before it)",
              file=report.out, flush=True)
        return 1
    print(f"DRY RUN PASSED: {ns.stage} stage, {report.passed} checks in {time.perf_counter() - start:.1f}s",
          file=report.out, flush=True)
    return 0


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", message=r".* engine is not available", category=UserWarning)
    sys.exit(run())


if __name__ == "__main__":
    main()
