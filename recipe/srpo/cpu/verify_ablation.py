"""The ablation study's integrity, read from its artifacts (not which arm won: docs/ablation.md).

    python -m recipe.srpo.cpu.verify_ablation --workspace WS

One ``[PASS]``/``[FAIL]`` line per check, exit 1 if any failed:

- the gate passed, and its numbers are those recomputed from the SFT model's sampled rollouts;
- every arm and seed of the study ran its GRPO steps and its held-out eval (a ``--seeds``/``--arms``
  subset fails this line: a quick look is not the study);
- per seed, the arms saw the same prompts in the same order: the prompts of the rollout dumps
  (``trainer.rollout_data_dir``), in step order, never in another order in one arm than in another
  (with the online filter each arm trains on a subsequence of the same drawn sequence), and the same
  ``data.seed`` and rollout seed;
- every number of the table (``outputs/ablation/metrics.json``) and every decision
  (``decisions.json``) equals the one recomputed from the rollouts;
- each arm's GRPO overrides differ from SRPO's of the same seed only in the arm's named reward terms;
- the reward that ran is the arm's: the dumped scores recomputed from the dumped responses with the
  arm's reward (lengths re-counted in the policy's tokens) match, and fit better than any other arm's.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from recipe.srpo.cpu import ablation as ab
from recipe.srpo.cpu.verify_run import Check, parse_step_lines, report_checks

#: A dumped score and the recomputed one agree when within this (the re-counted length may be off by the
#: end token; alpha * f_len moves by well under this for one token).
SCORE_TOLERANCE = 0.01


def _close(a: Any, b: Any, tol: float = 1e-9) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= tol
    return a == b


def _verdict(name: str, bad: list[str], notes: list[str], nothing: str) -> Check:
    """FAIL with the problems, or with ``nothing`` when there was nothing to check; else PASS with the notes."""
    if not bad and not notes:
        bad = [nothing]
    return Check(name, not bad, "; ".join(bad) if bad else "; ".join(notes))


def check_gate(ws: Path) -> Check:
    name = "gate: the SFT model passed, its numbers recomputed from its sampled rollouts"
    path = ws / "gate.json"
    if not path.exists():
        return Check(name, False, f"no {path}")
    stored = json.loads(path.read_text())
    again = json.loads(json.dumps(ab.gate_numbers(ab.read_jsonl(ws / "gate_rollouts.jsonl"))))
    if not _close(stored, again):
        return Check(name, False, "gate.json differs from the gate recomputed from gate_rollouts.jsonl")
    q = stored["quantities"]
    return Check(name, bool(again["passed"]), ", ".join(f"{k} {v['value']:.3f}" for k, v in q.items())
                 + f" of {stored['responses']} responses")


def check_runs(ws: Path, s: ab.Settings) -> Check:
    missing, short = [], []
    want = s.test_rows * (1 + s.eval_samples)
    for arm in s.arms:
        for seed in s.seeds:
            rd = ws / "runs" / arm / f"seed{seed}"
            log = rd / "grpo.log"
            steps = parse_step_lines(log.read_text(errors="replace")) if log.exists() else {}
            rows = ab.eval_rows(ws, arm, seed)
            if not (rd / "eval.done").exists():
                missing.append(f"{arm}/seed{seed}")
            elif len(steps) < s.grpo_steps or len(rows) != want:
                short.append(f"{arm}/seed{seed} ({len(steps)} steps, {len(rows)} eval rows)")
    ok = not missing and not short
    return Check(f"runs: every arm and seed ran {s.grpo_steps} GRPO steps and {want} held-out responses", ok,
                 "; ".join(filter(None, [missing and f"not run: {', '.join(missing)}",
                                         short and f"short: {', '.join(short)}"])) or
                 f"{len(s.arms) * len(s.seeds)} runs")


def dumped_prompts(rollout_dir: Path) -> dict[str, int]:
    """Prompt -> the first step that trained on it (the dumps of ``trainer.rollout_data_dir``)."""
    first: dict[str, int] = {}
    files = sorted(rollout_dir.glob("*.jsonl"), key=lambda p: int(p.stem)) if rollout_dir.exists() else []
    for f in files:
        for row in ab.read_jsonl(f):
            first.setdefault(row["input"], int(row["step"]))
    return first


def order_inversions(a: dict[str, int], b: dict[str, int]) -> tuple[int, int]:
    """(prompts both saw, pairs of them that one saw in strictly the other order than the other)."""
    common = sorted(set(a) & set(b), key=lambda p: (a[p], b[p]))
    inversions = 0
    best_b = -1  # the largest b-step so far among prompts with a strictly smaller a-step
    i = 0
    while i < len(common):
        j = i
        while j < len(common) and a[common[j]] == a[common[i]]:
            j += 1
        for p in common[i:j]:
            if b[p] < best_b:
                inversions += 1
        best_b = max([best_b, *(b[p] for p in common[i:j])])
        i = j
    return len(common), inversions


def check_pairing(ws: Path, s: ab.Settings) -> Check:
    bad, notes = [], []
    for seed in s.seeds:
        runs = {arm: ws / "runs" / arm / f"seed{seed}" for arm in s.arms if (ws / "runs" / arm / f"seed{seed}").exists()}
        if "srpo" not in runs:
            continue
        ref = dumped_prompts(runs["srpo"] / "rollouts")
        ref_cmd = _overrides(runs["srpo"])
        for arm, rd in runs.items():
            if arm == "srpo":
                continue
            cmd = _overrides(rd)
            for key in ("data.seed", "actor_rollout_ref.rollout.seed", "data.train_batch_size"):
                if ref_cmd.get(key) != cmd.get(key):
                    bad.append(f"seed {seed} {arm}: {key}={cmd.get(key)} vs srpo's {ref_cmd.get(key)}")
            common, inv = order_inversions(ref, dumped_prompts(rd / "rollouts"))
            if common < s.prompts_per_step:
                bad.append(f"seed {seed} {arm}: only {common} prompts in common with srpo")
            elif inv:
                bad.append(f"seed {seed} {arm}: {inv} of {common} common prompts in another order than srpo's")
            else:
                notes.append(f"seed {seed} {arm}: {common} common prompts, same order")
    return _verdict("pairing: per seed, the arms saw the same prompts in the same order", bad, notes,
                    "no seed with srpo and another arm")


def _overrides(rd: Path) -> dict[str, str]:
    path = rd / "cmd.json"
    if not path.exists():
        return {}
    return dict(o.split("=", 1) for o in json.loads(path.read_text())["overrides"] if "=" in o)


def check_table(ws: Path, s: ab.Settings) -> Check:
    name = "table: every number of metrics.json and decisions.json recomputed from the rollouts"
    out = ws / "outputs" / "ablation"
    if not (out / "metrics.json").exists() or not (out / "decisions.json").exists():
        return Check(name, False, f"no {out / 'metrics.json'} or decisions.json (run the study's summary)")
    stored = json.loads((out / "metrics.json").read_text())
    again = json.loads(json.dumps(ab.study_metrics(ws, s), sort_keys=True))
    if not _close(stored, again):
        diff = sorted(k for k in set(stored.get("runs", {})) | set(again.get("runs", {}))
                      if not _close(stored.get("runs", {}).get(k), again.get("runs", {}).get(k)))
        return Check(name, False, f"metrics.json differs from the rollouts' (runs {diff or 'sft'})")
    decisions = json.loads((out / "decisions.json").read_text())["decisions"]
    for arm, d in decisions.items():
        point, lo, hi = ab.paired_bootstrap(ab.seed_accs(ws, "srpo", d["seeds"]), ab.seed_accs(ws, arm, d["seeds"]))
        if not _close([point, lo, hi], [d["d"], d["lo"], d["hi"]]) or ab.outcome(lo, hi) != d["outcome"]:
            return Check(name, False, f"srpo vs {arm}: stored {d} vs recomputed d={point} [{lo}, {hi}]")
    return Check(name, True, f"{len(stored['runs'])} runs, the SFT model and {len(decisions)} decisions")


def check_arm_configs(ws: Path, s: ab.Settings) -> Check:
    bad, seen = [], 0
    for seed in s.seeds:
        ref_path = ws / "runs" / "srpo" / f"seed{seed}"
        if not (ref_path / "cmd.json").exists():
            continue
        ref = _overrides(ref_path)
        for arm in s.arms:
            rd = ws / "runs" / arm / f"seed{seed}"
            if not (rd / "cmd.json").exists():
                continue
            seen += 1
            mine = _overrides(rd)
            for run, ovs in (("srpo", ref), (arm, mine)):
                where = ovs.get("trainer.rollout_data_dir", "")
                if Path(where) != ws / "runs" / run / f"seed{seed}" / "rollouts" and Path(where).resolve() != (ws / "runs" / run / f"seed{seed}" / "rollouts").resolve():
                    bad.append(f"seed {seed} {run}: rollouts dumped to {where!r}, not its own run folder")
            keys = (set(ref) | set(mine)) - {"trainer.rollout_data_dir"}
            differ = {k for k in keys if ref.get(k) != mine.get(k)}
            named = {f"{ab.KW}.{k}" for k in ab.ARMS[arm]}
            if differ != named:
                bad.append(f"seed {seed} {arm}: differs from srpo in {sorted(differ)}, its named terms are {sorted(named)}")
            for k, v in ab.ARMS[arm].items():
                if k in ab.ARMS[arm] and float(mine.get(f"{ab.KW}.{k}", "nan")) != v:
                    bad.append(f"seed {seed} {arm}: {k}={mine.get(f'{ab.KW}.{k}')}, the arm says {v}")
    if not seen:
        bad.append("no run recorded its overrides (runs/ARM/seedN/cmd.json)")
    return Check("configs: each arm differs from SRPO's run of the same seed only in its named reward terms",
                 not bad, "; ".join(bad) or f"{seen} runs compared")


def check_reward_ran(ws: Path, s: ab.Settings, tokenizer: Any = None) -> Check:
    from recipe.srpo.reward_manager import token_counts
    from srpo_reward import compute_score

    if tokenizer is None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(ws / "outputs" / "sft_merged"))
    bad, notes = [], []
    for arm in s.arms:
        for seed in s.seeds:
            rd = ws / "runs" / arm / f"seed{seed}" / "rollouts"
            rows = [r for f in sorted(rd.glob("*.jsonl")) for r in ab.read_jsonl(f)] if rd.exists() else []
            if not rows:
                continue
            errors = {}
            for other, kw in ab.ARMS.items():
                errs = []
                for r in rows:
                    counts = token_counts(tokenizer, r["output"])
                    extra = {"srpo_token_counts": counts} if counts else None
                    errs.append(abs(compute_score("count_task", r["output"], r["gts"], extra, **kw)["score"] - float(r["score"])))
                errors[other] = errs
            own = errors[arm]
            share = sum(e <= SCORE_TOLERANCE for e in own) / len(own)
            mean = {k: sum(v) / len(v) for k, v in errors.items()}
            best = min(mean, key=mean.get)
            if share < 0.95 or best != arm:
                bad.append(f"{arm}/seed{seed}: {share:.0%} of {len(own)} dumped scores within {SCORE_TOLERANCE} of "
                           f"the arm's reward; best fit {best} (mean error {mean[best]:.4f} vs the arm's {mean[arm]:.4f})")
            else:
                notes.append(f"{arm}/seed{seed} {share:.0%} of {len(own)}")
    return _verdict("reward: the dumped scores are the arm's reward, recomputed from the dumped responses", bad, notes,
                    "no rollout dumps (trainer.rollout_data_dir) found")


def verify(ws: Path, tokenizer: Any = None) -> list[Check]:
    s = ab.Settings.from_json(json.loads((ws / "study.json").read_text()))
    return [check_gate(ws), check_runs(ws, s), check_pairing(ws, s), check_table(ws, s), check_arm_configs(ws, s),
            check_reward_ran(ws, s, tokenizer)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", required=True, type=Path)
    args = ap.parse_args(argv)
    if not (args.workspace / "study.json").exists():
        print(f"verify_ablation: no study in {args.workspace} (no study.json)", file=sys.stderr)
        return 2
    return report_checks(verify(args.workspace))


if __name__ == "__main__":
    sys.exit(main())
