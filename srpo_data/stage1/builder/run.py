"""One full build: read input, run the pipeline, write outputs and the summary."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from srpo_data.stage1.builder.config import BuildConfig
from srpo_data.stage1.builder.inputs import BadRow, Sample, count_rows, iter_samples
from srpo_data.stage1.builder.outputs import SUMMARY_JSON, write_json, write_outputs
from srpo_data.stage1.builder.pipeline import DROPPED, KEPT, GradeFn, Runner, RunResult, default_grader


def _samples(cfg: BuildConfig) -> Iterator[Sample | BadRow]:
    return iter_samples(
        cfg.input,
        image_dir=cfg.image_dir,
        keys={"question": cfg.question_key, "answer": cfg.answer_key, "images": cfg.image_key, "id": cfg.id_key},
        limit=cfg.limit,
        input_format=cfg.input_format,
        sample=cfg.sample,
        sample_seed=cfg.sample_seed,
    )


def _total(cfg: BuildConfig) -> int | None:
    if cfg.input_format == "auto":
        return count_rows(cfg.input, cfg.limit)
    n = cfg.sample
    if cfg.limit is not None:
        n = cfg.limit if n is None else min(n, cfg.limit)
    return n  # None: unknown without a pass over the release


BAD_INPUT_JSONL = "bad_input.jsonl"
DROPPED_JSONL = "dropped.jsonl"


class _Listing:
    """``bad_input.jsonl`` and ``dropped.jsonl``: one line per row, in input order, with the
    reason (written under temporary names and renamed when complete)."""

    def __init__(self, out: Path):
        self.out = out
        self._files = {name: (out / (name + ".tmp")).open("w", encoding="utf-8") for name in (BAD_INPUT_JSONL, DROPPED_JSONL)}

    def write(self, name: str, rec: dict[str, Any]) -> None:
        self._files[name].write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")

    def close(self, commit: bool) -> None:
        for name, fh in self._files.items():
            fh.close()
            tmp = self.out / (name + ".tmp")
            if commit:
                os.replace(tmp, self.out / name)
            else:
                tmp.unlink(missing_ok=True)


def _kept_in_order(cfg: BuildConfig, result: RunResult, listing: _Listing | None = None) -> Iterator[tuple[Sample, str, bool]]:
    """Second pass over the input (images are not kept in memory during the run); bad and
    dropped rows go to ``listing`` on the way."""
    for item in _samples(cfg):
        if isinstance(item, BadRow):
            if listing is not None:
                listing.write(BAD_INPUT_JSONL, {"row": item.row, "source_id": item.source_id, "reason": item.reason, "detail": item.detail})
            continue
        o = result.outcomes.get(item.sample_id)
        if o is None or o.status not in (KEPT, DROPPED) or not result.outcomes.mark("emitted", item.sample_id):
            continue
        if o.status == KEPT and o.target is not None:
            yield item, o.target, bool(o.first_correct)
        elif o.status == DROPPED and listing is not None:
            listing.write(
                DROPPED_JSONL,
                {"row": item.row, "sample_id": item.sample_id, "source_id": item.source_id, "reason": o.reason,
                 "first_correct": o.first_correct, "judge_score": o.judge_score},
            )


def summarize(
    cfg: BuildConfig, result: RunResult, seconds: float, outputs: dict[str, Any] | None, output_seconds: float = 0.0
) -> dict[str, Any]:
    return {
        "complete": result.complete,
        "interrupted": result.stopped or result.interrupted > 0,
        "fatal_error": result.fatal,
        "input": str(cfg.input),
        "samples_in": result.samples_in,
        "bad_input": dict(sorted(result.bad_input.items())),
        "duplicates": result.duplicates,
        "attempts": result.attempts,
        "reflections": result.reflections,
        "revisions": result.revisions,
        "kept": result.kept,
        "kept_first_right": result.kept_first_right,
        "kept_first_wrong": result.kept_first_wrong,
        # the achieved mix (the paper: about 30% first-right, 70% first-wrong)
        "mix": {
            "target_first_right": cfg.target_first_right,
            "first_right": round(result.kept_first_right / result.kept, 4) if result.kept else None,
            "dropped_for_mix": result.dropped.get("mix_balance", 0),
        },
        "judge": None if cfg.judge is None else {
            "model": cfg.judge.model,
            "threshold": cfg.judge_threshold,
            "scored": result.judged,
            "kept": result.judge_kept,
            "dropped": result.judged - result.judge_kept,
        },
        "dropped": dict(sorted(result.dropped.items())),
        "dropped_total": sum(result.dropped.values()),
        "failed": dict(sorted(result.failed.items())),
        "failed_total": sum(result.failed.values()),
        "not_finished": result.interrupted,
        "paused_for_outage_seconds": round(result.paused_seconds, 2),
        # Tokens of every stored call the processed samples use (what the data cost in total).
        "tokens": result.tokens,
        # What this process spent: requests (incl. retries), completions, tokens, errors by reason.
        "this_run": result.usage,
        "revise_with": cfg.revise_with,
        "policy": {"base_url": cfg.policy.base_url, "model": cfg.policy.model},
        "teacher": {"base_url": cfg.teacher.base_url, "model": cfg.teacher.model},
        "seconds": round(seconds, 2),
        # of which writing the outputs (after the last call)
        "output_seconds": round(output_seconds, 2),
        "outputs": outputs,
        "internal_errors": result.errors[:20],
    }


def build(cfg: BuildConfig, grader: GradeFn = default_grader) -> dict[str, Any]:
    """Run a build and write its outputs; returns the summary (also in ``out/summary.json``).

    Outputs are written only when every sample reached an end (kept, dropped or failed): an
    interrupted run writes the summary alone, and the next run with the same arguments resumes.
    """
    # httpx logs every request at INFO; keep the console to the progress bar and the summary.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    start = time.monotonic()
    if cfg.sample is not None and cfg.input_format == "auto":
        raise ValueError("sample needs input_format mulberry, llava_cot or mathv360k (use limit for other inputs)")
    total = _total(cfg)
    runner = Runner(cfg, grader)
    result = asyncio.run(runner.run(_samples(cfg), total=total))
    outputs = None
    t_out = time.monotonic()
    if result.complete and cfg.target_first_right is not None:
        result.apply_mix(cfg.target_first_right, cfg.mix_seed)
    if result.complete:
        listing = _Listing(cfg.out)
        ok = False
        try:
            outputs = write_outputs(cfg.out, _kept_in_order(cfg, result, listing), cfg.dataset_name)
            outputs.update(bad_input=BAD_INPUT_JSONL, dropped=DROPPED_JSONL)
            ok = True
        finally:
            listing.close(commit=ok)
    summary = summarize(cfg, result, time.monotonic() - start, outputs, time.monotonic() - t_out)
    write_json(cfg.out / SUMMARY_JSON, summary)
    return summary
