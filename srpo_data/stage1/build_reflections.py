"""Stage 1 of SRPO: build the reflection SFT data with a policy and a teacher endpoint.

    python -m srpo_data.build_reflections --input rl.parquet --out DIR \\
        --policy policy.yaml --teacher teacher.yaml [--revise-with policy|teacher]

or ``--config run.yaml`` holding the same keys (``input``, ``out``, ``policy: {...}``,
``teacher: {...}``, ...); command-line flags override the file.  ``--policy``/``--teacher``
take a YAML file or an inline mapping (``'{base_url: http://localhost:8000/v1, model: m}'``).
See ``srpo_data/stage1/builder/config.py`` for every field and its default.

Exit status: 0 when every sample reached an end (kept, dropped or failed: see summary.json and
failures.jsonl), 130 after Ctrl-C, 2 for a configuration error or an endpoint that refuses
every call (401/403/404), 1 for an internal error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m srpo_data.build_reflections", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="YAML file with any of the keys below (flags override it)")
    p.add_argument("--input", help="verl RL parquet (srpo_data.prepare_rl) or JSONL with question/answer/images")
    p.add_argument("--out", help="output folder (created; reruns resume from it)")
    p.add_argument("--policy", help="policy endpoint: YAML file or inline YAML mapping")
    p.add_argument("--teacher", help="teacher endpoint: YAML file or inline YAML mapping")
    p.add_argument("--judge", help="optional judge endpoint that scores the first attempts: YAML file or inline mapping")
    p.add_argument("--judge-threshold", type=float, help="lowest judge score (1-10) that keeps a sample (default 6)")
    p.add_argument("--target-first-right", type=float,
                   help="share of first-right samples among the kept ones (the paper: about 0.3); default: keep all")
    p.add_argument("--revise-with", choices=["policy", "teacher"], help="who writes the revised attempt (default policy)")
    p.add_argument("--image-dir", help="JSONL input: folder for relative image paths (default: the JSONL's folder)")
    p.add_argument("--image-url-prefix", help="JSONL input: send images as PREFIX + relative path instead of base64")
    p.add_argument("--input-format", choices=["auto", "mulberry", "llava_cot", "mathv360k", "srpo_sft"],
                   help="auto (RL parquet or JSONL), a public stage-1 release in its published layout, or "
                        "srpo_sft: the authors' released SFT data, completed with the revise step")
    p.add_argument("--sample", type=int, help="releases: a deterministic sample of N records (the paper: 100000)")
    p.add_argument("--sample-seed", type=int, help="seed of --sample (default 0)")
    p.add_argument("--limit", type=int, help="only the first N input rows")
    p.add_argument("--json-retries", type=int, help="extra teacher calls when its reply is not valid JSON (default 2)")
    p.add_argument("--max-in-flight", type=int, help="samples worked on at once (default 2 x total concurrency)")
    p.add_argument("--dataset-name", help="name in LLaMA-Factory's dataset_info.json")
    p.add_argument("--retry-failed", action="store_true", default=None, help="retry samples listed in failures.jsonl")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> Any:
    from srpo_data.stage1.builder.config import BuildConfig, load_mapping

    data: dict[str, Any] = load_mapping(args.config) if args.config else {}
    for role in ("policy", "teacher", "judge"):
        value = getattr(args, role)
        if value is not None:
            data[role] = load_mapping(value)
    flags = {
        "input": args.input,
        "out": args.out,
        "revise_with": args.revise_with,
        "image_dir": args.image_dir,
        "image_url_prefix": args.image_url_prefix,
        "limit": args.limit,
        "input_format": args.input_format,
        "sample": args.sample,
        "sample_seed": args.sample_seed,
        "json_retries": args.json_retries,
        "max_in_flight": args.max_in_flight,
        "dataset_name": args.dataset_name,
        "retry_failed": args.retry_failed,
        "judge_threshold": args.judge_threshold,
        "target_first_right": args.target_first_right,
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.no_progress:
        data["progress"] = False
    return BuildConfig.model_validate(data)


def main(argv: list[str] | None = None) -> int:
    from srpo_data.stage1.builder.config import ConfigError
    from srpo_data.stage1.builder.run import build

    args = parse_args(argv)
    try:
        cfg = config_from_args(args)
        cfg.policy.api_key()  # fail before any work when a key variable is missing
        cfg.teacher.api_key()
        if cfg.judge is not None:
            cfg.judge.api_key()
    except (ConfigError, ValidationError, FileNotFoundError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = build(cfg)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the run loop took over Ctrl-C (while reading the input)
        print("interrupted before the run started", file=sys.stderr)
        return 130
    brief = {k: summary[k] for k in ("samples_in", "attempts", "reflections", "kept", "kept_first_right",
                                     "kept_first_wrong", "dropped_total", "failed_total", "not_finished")}
    print(json.dumps(brief))
    print(f"summary: {Path(cfg.out) / 'summary.json'}", file=sys.stderr)
    if summary["internal_errors"]:
        print("internal errors (a bug; please report):\n" + "\n".join(summary["internal_errors"]), file=sys.stderr)
        return 1
    if summary["fatal_error"]:
        print(f"stopped: endpoint refused the calls: {summary['fatal_error']}", file=sys.stderr)
        return 2
    if summary["interrupted"]:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
