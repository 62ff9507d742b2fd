"""What every stage's checks share: the one-line reporter, failures, the model, the freeze, files, images."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from recipe.srpo.checks import ConfigError

DEFAULT_ROWS = 3

GPU_ONLY = {
    "grpo": "vLLM rollout, weight sync and FSDP2 steps ran on CPU with a tiny model (examples/cpu_train.sh); "
    "at this model size only a GPU run (examples/smoke_gpu.sh) shows GPU memory at these micro-batch sizes, "
    "NCCL, tensor-parallel vLLM, multi-node Ray and throughput",
    "sft": "FSDP2 SFT steps ran on CPU with a tiny model (examples/cpu_train.sh); at this model size only a GPU "
    "run shows NCCL process groups, GPU memory at this token budget and throughput",
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


# --------------------------------------------------------------------------- shared checks


def model_config(
    node: DictConfig, stand_in_model: str | None, report: Reporter, check: str,
    fix: str = "set MODEL_PATH to a local model folder",
) -> Any:
    """verl's HFModelConfig (tokenizer + processor + external_lib import) for a model node.

    ``stand_in_model``: checked instead when ``node.path`` holds no model yet (the run scripts pass the
    base model only when their merge stage, which writes the policy, is scheduled).
    """
    from verl.utils.config import omega_conf_to_dataclass

    node = OmegaConf.create(OmegaConf.to_container(node, resolve=True))
    path = str(node.path)
    local = os.path.expanduser(path)
    if not os.path.isfile(os.path.join(local, "config.json")):
        if stand_in_model and os.path.isfile(os.path.join(os.path.expanduser(stand_in_model), "config.json")):
            report.note(
                check,
                f"{path} holds no model yet (the merge stage writes it); checking with its base model {stand_in_model}",
            )
            node.path = stand_in_model
        elif "/" in path and not path.startswith(("/", ".", "~")):
            raise ConfigError(
                f"model path '{path}' is not a local folder: download it first (the dry run never fetches from a hub) "
                f"and {fix}"
            )
        else:
            raise ConfigError(f"model path '{path}' is not a Hugging Face model folder (no config.json): {fix}")
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


def check_pixel_cap(processor: Any, grid_thw: Any, max_pixels: Any, where: str) -> None:
    """Every image reached the model at most ``max_pixels`` large (the SFT cap really applied)."""
    import torch

    if max_pixels is None:
        return
    patch = int(processor.image_processor.patch_size)
    grid = torch.as_tensor(grid_thw)
    largest = int((grid[:, 1] * grid[:, 2]).max().item()) * patch * patch
    if largest > int(max_pixels):
        raise ConfigError(f"{where}: an image reached the processor with {largest} pixels > data.max_image_pixels")


def note_logger(cfg: DictConfig, report: Reporter) -> None:
    """A NOTE when wandb logging is on but no key is set here (the GPU machine needs one)."""
    loggers = cfg.trainer.get("logger") or []
    loggers = [loggers] if isinstance(loggers, str) else list(loggers)
    if "wandb" in loggers and not os.environ.get("WANDB_API_KEY"):
        report.note("logger", "trainer.logger includes wandb: set WANDB_API_KEY on the GPU machine, or LOGGER='[console]'")


