"""The command line: ``python -m recipe.srpo.dry_run <stage> [options] -- <the real command's arguments>``."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

from recipe.srpo.dry_run.common import DEFAULT_ROWS, DryRunFailure, Reporter
from recipe.srpo.dry_run.data import dry_run_data
from recipe.srpo.dry_run.grpo import dry_run_grpo
from recipe.srpo.dry_run.merge import dry_run_merge
from recipe.srpo.dry_run.sft import dry_run_sft



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m recipe.srpo.dry_run",
        description="Check one stage of the SRPO recipe on a CPU machine, with the real run's arguments "
        "(given after '--').",
    )
    parser.add_argument("stage", choices=["data", "sft", "merge", "grpo", "eval"])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS, help="rows of each data file to load (default 3)")
    parser.add_argument(
        "--stand-in-model",
        default=None,
        help="grpo: a model folder with the same tokenizer/processor, used if the policy path does not exist yet",
    )
    parser.add_argument("--module", default=None, help="data, eval: the python module the real run calls")
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
            if not ns.module:  # data and eval: a python module the real run calls, checked the same way
                raise DryRunFailure("arguments", f"the {ns.stage} stage needs --module")
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
