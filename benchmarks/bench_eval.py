"""Throughput of the reflection report on a generated corpus.

    .venv/bin/python benchmarks/bench_eval.py [--n 2000]

Prints responses per second for grading with ``srpo_eval.scoring.score_rollout``
and, on the same responses, for ``srpo_reward.compute_score`` (the training
reward, the baseline: same parse and two grades per response), their ratio, and
the wall time of the whole ``srpo_eval.report`` (grading, JSON, Markdown, PNGs).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

KINDS = (
    # (benchmark, answer_type, options, gold, right answers, wrong answers)
    ("mathvista", "multiple_choice", ["red", "green", "blue", "black"], "C", ["C", "(C)", "blue"], ["A", "D", "green"]),
    ("mathvista", "integer", [], "12", ["12", "12.0", "12 cm"], ["13", "11"]),
    ("mathverse", "expression", [], "\\frac{5}{2}", ["2.5", "\\frac{5}{2}", "5/2"], ["\\frac{2}{5}", "3"]),
    ("mathvision", "float", [], "1.5", ["1.5", "3/2"], ["1.25", "2"]),
    ("mmmu_pro", "multiple_choice", [f"o{k}" for k in range(10)], "H", ["H", "(H)", "Option H: o7"], ["A", "J"]),
)


def build_corpus(n: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    from srpo_reward.prompts import render_prompt

    rng = random.Random(seed)
    rows, rollouts = [], []
    for i in range(n):
        bench, atype, options, gold, right, wrong = KINDS[i % len(KINDS)]
        qid = f"{bench}-{i}"
        rows.append(
            {
                "data_source": bench,
                "prompt": [{"role": "user", "content": "<image>" + render_prompt(f"question {i}")}],
                "reward_model": {"style": "rule", "ground_truth": gold},
                "extra_info": {"id": qid, "benchmark": bench, "answer_type": atype, "options": options, "index": i},
            }
        )
        a1 = rng.choice(right if rng.random() < 0.5 else wrong)
        a2 = rng.choice(right if rng.random() < 0.6 else wrong)
        words = " ".join(rng.choice(["so", "the", "angle", "is", "x", "=", "3", "+", "4"]) for _ in range(rng.randint(20, 400)))
        text = (
            f"<think>{words}</think> <answer>\\boxed{{{a1}}}</answer> <reflection>{words[: len(words) // 3]}</reflection> "
            f"<think>{words[: len(words) // 2]}</think> <answer>\\boxed{{{a2}}}</answer>"
        )
        if rng.random() < 0.05:
            text = text[: len(text) // 2]  # cut off
        rollouts.append({"id": qid, "response": text})
    return rows, rollouts


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=2000)
    args = p.parse_args()
    from srpo_eval.data import items_from_rows
    from srpo_eval.report import build_report
    from srpo_eval.rollouts import Rollout
    from srpo_eval.scoring import score_rollout
    from srpo_reward import compute_score

    rows, recs = build_corpus(args.n)
    data = items_from_rows(rows)
    items = [data.items[r["id"]] for r in recs]
    # warm the math-verify workers before timing
    score_rollout(Rollout(id=items[2].id, response=recs[2]["response"]), items[2])

    t = time.perf_counter()
    for r, it in zip(recs, items):
        score_rollout(Rollout(id=it.id, response=r["response"]), it)
    ours = time.perf_counter() - t

    t = time.perf_counter()
    for r, it in zip(recs, items):
        compute_score(it.benchmark, r["response"], it.ground_truth, dict(it.extra_info))
    base = time.perf_counter() - t

    with tempfile.TemporaryDirectory() as d:
        dp = Path(d)
        pq.write_table(pa.Table.from_pylist(rows), dp / "data.parquet")
        with (dp / "run.jsonl").open("w") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")
        t = time.perf_counter()
        build_report([dp / "run.jsonl"], [dp / "data.parquet"], dp / "out")
        whole = time.perf_counter() - t

    print(f"responses: {args.n}")
    print(f"srpo_eval.scoring.score_rollout : {args.n / ours:9.1f} responses/s")
    print(f"srpo_reward.compute_score       : {args.n / base:9.1f} responses/s (baseline)")
    print(f"ratio (ours / baseline)         : {base / ours:9.2f}")
    print(f"whole report incl. plots        : {whole:9.2f} s ({args.n / whole:.1f} responses/s)")


if __name__ == "__main__":
    main()
