"""Dry run of the data stage: the preprocessor (``srpo_data.prepare_rl``, ``srpo_data.build_reflections``)."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import os
from collections.abc import Sequence

from recipe.srpo.checks import ConfigError
from recipe.srpo.dry_run.common import Reporter, step



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
        inputs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a in ("--input", "--config", "--model", "--data")]
        later = {os.path.abspath(os.path.expanduser(p)) for p in may_not_exist}
        missing = [
            p for p in inputs
            if not os.path.exists(os.path.expanduser(p)) and os.path.abspath(os.path.expanduser(p)) not in later
        ]
        if missing:
            raise ConfigError(f"{missing[0]} does not exist: download it or point the run script's variable at it")
        report.ok(f"{name} inputs", ", ".join(inputs) or "none named")
    return report.passed


