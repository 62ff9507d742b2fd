"""Dry run of the merge stage (``python -m verl.model_merger merge --backend fsdp ...``)."""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Sequence
from pathlib import Path

from recipe.srpo.checks import ConfigError
from recipe.srpo.dry_run.common import Reporter, step



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
            raise ConfigError("both --local_dir (the checkpoint step folder) and --target_dir are required")
        report.ok("model_merger arguments", f"{merge_cfg.local_dir} -> {merge_cfg.target_dir}")
    with step("checkpoint"):
        local = Path(merge_cfg.local_dir)
        if local.is_dir():
            missing = [name for name in ("fsdp_config.json", "huggingface") if not (local / name).exists()]
            if missing:
                raise ConfigError(f"{local} lacks {missing}: not an FSDP checkpoint written by verl's SFT trainer")
            report.ok("checkpoint", f"{local} has the files the merger reads")
        else:
            report.note("checkpoint", f"{local} does not exist yet (an earlier stage, sft or grpo, writes it)")
    return report.passed


