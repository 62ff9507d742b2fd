"""The reward ablation study on a CPU (issue 27; the rules: docs/ablation.md).

    python -m recipe.srpo.cpu.ablation --workspace WS                      # the whole study, resumable
    python -m recipe.srpo.cpu.ablation --workspace WS --seeds 0 --arms srpo,srpo_no_flen   # a quick look
    python -m recipe.srpo.cpu.ablation --workspace WS --stop-after gate    # data, SFT, merge and the gate only

Stages, each skipped when its marker exists (a killed study goes on where it stopped; a GRPO run
resumes from its newest checkpoint):

1. ``workspace``: the count task (:mod:`srpo_data.offline.count_task`) and the tiny model;
2. ``data``: the scripted stage-1 endpoint (in this process) and the real data stage
   (``STAGES=data`` of ``examples/run_qwen7b_srpo.sh``: ``prepare_rl`` and ``build_reflections``);
3. ``sft`` and ``merge``: verl's SFT trainer (``+cpu_learn=sft``), the merge;
4. ``gate``: the SFT model sampled on the held-out split (:func:`gate_numbers`); a miss stops the study;
5. per seed, per arm: ``grpo`` (``+cpu_learn=grpo`` plus :data:`ARMS`' reward terms, the seed's
   ``data.seed`` and rollout seed, the rollouts dumped) and ``eval`` (its newest checkpoint merged
   and sampled on the held-out split);
6. ``summary``: the per-arm table, a plot per arm, the per-step standard errors and the decision
   lines of docs/ablation.md; then ``python -m recipe.srpo.cpu.verify_ablation`` checks integrity.

The settings (:class:`Settings`) are written to ``WS/study.json`` on the first run; a run with other
settings on the same workspace is refused, naming the difference.  ``--seeds`` and ``--arms`` pick
which runs this invocation does, not the settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parents[3]
RUN_SCRIPT = ROOT / "examples" / "run_qwen7b_srpo.sh"
KW = "reward.custom_reward_function.reward_kwargs"

_NO_IEFF = {"eff_fixed": 0.0, "eff_kept": 0.0, "eff_broke": 0.0, "eff_stayed_wrong": 0.0}
#: Each arm's reward terms (``reward_kwargs`` on top of the paper's defaults), named for what it changes.
ARMS: dict[str, dict[str, float]] = {
    "srpo": {},
    "srpo_no_ieff": dict(_NO_IEFF),
    "srpo_no_flen": {"len_alpha": 0.0},
    "format_and_final_acc_only": {"acc_weight": 0.0, "final_acc_weight": 0.5, **_NO_IEFF, "ref_weight": 0.0,
                                  "len_alpha": 0.0},
}
#: The gate's bands (docs/ablation.md): quantity -> (low, high).
GATE = {"well_formed": (0.85, 1.0), "first_acc": (0.40, 0.65), "final_acc": (0.70, 0.90), "harm_rate": (0.03, 0.15)}
#: The decision's equivalence margin and the per-step standard error target (docs/ablation.md).
DELTA = 0.03
STEP_SE_TARGET = 0.06


class StudyError(ValueError):
    """Bad input to the study: refused before any work."""


def parse_arms(text: str) -> list[str]:
    arms = [a.strip() for a in text.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ARMS]
    if unknown or not arms:
        raise StudyError(f"unknown arm(s) {unknown or [text]}; the known arms: {', '.join(ARMS)}")
    return list(dict.fromkeys(arms))


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise StudyError(f"--seeds takes comma-separated integers, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise StudyError(f"--seeds takes comma-separated integers >= 0, got {text!r}")
    return list(dict.fromkeys(seeds))


@dataclass(frozen=True)
class Settings:
    """Everything that changes what the study measures (``WS/study.json``)."""

    seeds: tuple[int, ...] = (0, 1, 2, 3)
    arms: tuple[str, ...] = tuple(ARMS)
    train_rows: int = 3072  # study run 3 (docs/ablation.md): 512 rows and 800 SFT steps missed the gate
    test_rows: int = 96
    sft_steps: int = 3200
    grpo_steps: int = 6  # the 90-minute budget of issue 27 (docs/ablation.md)
    prompts_per_step: int = 8
    responses_per_prompt: int = 8
    eval_samples: int = 4
    max_new_tokens: int = 192
    right_rate: float = 0.55
    revise_right_rate: float = 0.85
    grpo_overrides: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Settings":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})


def differences(old: Settings, new: Settings) -> list[str]:
    return [f"{f.name}: {getattr(old, f.name)!r} (the study's) vs {getattr(new, f.name)!r} (this run's)"
            for f in dataclasses.fields(Settings) if getattr(old, f.name) != getattr(new, f.name)]


def load_or_write_settings(workspace: Path, settings: Settings) -> Settings:
    path = workspace / "study.json"
    if path.exists():
        old = Settings.from_json(json.loads(path.read_text()))
        diff = differences(old, settings)
        if diff:
            raise StudyError(f"{path} was started with other settings; refused (use a new workspace, or the same "
                             "settings): " + "; ".join(diff))
        return old
    workspace.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings.to_json(), indent=1) + "\n")
    return settings


def grpo_overrides(settings: Settings, arm: str, seed: int, rollout_dir: Path) -> list[str]:
    """The GRPO stage's overrides of one run: the same for every arm of a seed but for the arm's reward terms."""
    p, n = settings.prompts_per_step, settings.responses_per_prompt
    common = ["+cpu_learn=grpo", f"trainer.total_training_steps={settings.grpo_steps}",
              f"data.train_batch_size={p}", f"actor_rollout_ref.actor.ppo_mini_batch_size={p}",
              f"actor_rollout_ref.rollout.n={n}", f"actor_rollout_ref.rollout.max_num_seqs={p * n}",
              f"data.seed={seed + 1}", f"actor_rollout_ref.rollout.seed={seed + 1}",
              f"trainer.rollout_data_dir={rollout_dir}", *settings.grpo_overrides]
    return common + [f"{KW}.{k}={v}" for k, v in ARMS[arm].items()]


def check_overrides(settings: Settings) -> None:
    """Every arm's overrides compose and its reward terms are the reward's: refused before any work."""
    from recipe.srpo.checks import ConfigError
    from recipe.srpo.compose import GRPO_CONFIG, compose
    from srpo_reward import RewardConfig

    for arm in settings.arms:
        if arm not in ARMS:
            raise StudyError(f"unknown arm {arm!r}; the known arms: {', '.join(ARMS)}")
        try:
            RewardConfig.from_kwargs(**ARMS[arm])
            compose(GRPO_CONFIG, ["+cpu=grpo", *grpo_overrides(settings, arm, 0, Path("/nonexistent"))])
        except (ConfigError, TypeError, ValueError) as exc:
            raise StudyError(f"arm {arm}: its GRPO overrides are refused: {exc}") from exc


# ------------------------------------------------------------------ sampling and metrics
def sample_model(model: Path, data: Path, out: Path, samples: int, max_new_tokens: int, seed: int,
                 progress: str = "", batch: int = 16) -> list[dict[str, Any]]:
    """Greedy and ``samples`` temperature-1.0 responses per question of ``data`` (transformers, CPU, ``batch``
    questions per generate call, left-padded).

    Appends to ``out`` (JSONL; questions already there are skipped: resumable) and returns every row.
    """
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from srpo_eval.generate import iter_prompts, read_ids, structured_messages
    from srpo_reward.format import parse_response

    done = {r["qid"] for r in read_jsonl(out)}
    gts = ground_truths(data)
    todo = [i for i in read_ids(data) if i not in done]
    if not todo:
        return read_jsonl(out)
    processor = AutoProcessor.from_pretrained(str(model), local_files_only=True)
    processor.tokenizer.padding_side = "left"
    net = AutoModelForImageTextToText.from_pretrained(str(model), local_files_only=True, dtype=torch.float32)
    net.eval()
    tok = processor.tokenizer
    prompts = list(iter_prompts(data, set(todo)))
    start = time.time()
    with open(out, "a") as fh:
        for b in range(0, len(prompts), batch):
            group = prompts[b:b + batch]
            texts = [processor.apply_chat_template(structured_messages(p.messages), add_generation_prompt=True,
                                                   tokenize=False) for p in group]
            images = [im for p in group for im in p.images] or None
            inputs = processor(text=texts, images=images, padding=True, return_tensors="pt")
            width = inputs["input_ids"].shape[1]
            torch.manual_seed(seed * 100_003 + b)
            rows = []
            for mode, k, kw in (("greedy", 1, dict(do_sample=False)),
                                ("sample", samples, dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0))):
                with torch.inference_mode():
                    seq = net.generate(**inputs, max_new_tokens=max_new_tokens, repetition_penalty=1.0,
                                       num_return_sequences=k, pad_token_id=tok.pad_token_id, **kw)
                for j, s in enumerate(seq):
                    p = group[j // k]
                    new = s[width:].tolist()
                    eos = [i for i, t in enumerate(new) if t in (tok.eos_token_id, tok.pad_token_id)]
                    new = new[:eos[0] + 1] if eos else new  # up to and with the first end token
                    response = tok.decode(new, skip_special_tokens=True)
                    first = parse_response(response).first_attempt or ""
                    rows.append({"qid": p.id, "mode": mode, "k": j % k, "ground_truth": gts[p.id], "response": response,
                                 "response_tokens": len(new),
                                 "first_tokens": len(tok(first)["input_ids"]) if first else 0})
            fh.write("".join(json.dumps(r) + "\n" for r in rows))
            fh.flush()
            say(f"{progress}sampled {min(b + batch, len(prompts))}/{len(prompts)} questions ({time.time() - start:.0f} s)")
    return read_jsonl(out)


def ground_truths(data: Path) -> dict[str, str]:
    import pyarrow.parquet as pq

    from srpo_eval.generate import read_ids

    rows = pq.read_table(data, columns=["reward_model"]).to_pylist()
    return {qid: str(r["reward_model"]["ground_truth"]) for qid, r in zip(read_ids(data), rows)}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def eval_rows(workspace: Path, arm: str, seed: int) -> list[dict[str, Any]]:
    """One run's held-out rollouts (``runs/ARM/seedN/eval_rollouts.jsonl``)."""
    return read_jsonl(workspace / "runs" / arm / f"seed{seed}" / "eval_rollouts.jsonl")


def seed_accs(workspace: Path, arm: str, seeds: Iterable[int]) -> dict[int, dict[str, float]]:
    """Seed -> question -> sampled final accuracy of one arm (the bootstrap's input)."""
    return {seed: per_question_acc(eval_rows(workspace, arm, seed)) for seed in seeds}


def score_row(row: dict[str, Any]) -> dict[str, float]:
    """The paper's reward's indicators of one sampled response (lengths in the policy's tokens)."""
    from srpo_reward import compute_score
    from srpo_reward.format import parse_response

    extra = None
    if row.get("first_tokens"):
        extra = {"srpo_token_counts": {"total": int(row["response_tokens"]), "first_attempt": int(row["first_tokens"])}}
    out = compute_score("count_task", row["response"], row["ground_truth"], extra)
    parsed = parse_response(row["response"])
    changed = parsed.num_answers > 1 and (parsed.final_answer or "").strip() != (parsed.first_answer or "").strip()
    return {**out, "changed": float(changed), "response_tokens": float(row["response_tokens"])}


def metrics_of(rows: Iterable[dict[str, Any]], mode: str = "sample") -> dict[str, float]:
    """The held-out metrics of one model's rows of one decoding ``mode`` (docs/ablation.md)."""
    scored = [score_row(r) for r in rows if r["mode"] == mode]
    if not scored:
        return {}
    n = len(scored)
    mean = lambda key, rs=scored: sum(r[key] for r in rs) / len(rs) if rs else math.nan  # noqa: E731
    first_right = [r for r in scored if r["acc_first"]]
    wrong_first_wf = [r for r in scored if r["format"] and not r["acc_first"]]
    right_first_wf = [r for r in scored if r["format"] and r["acc_first"]]
    well_formed = [r for r in scored if r["format"]]
    return {
        "responses": float(n),
        "final_acc": mean("acc"),
        "first_acc": mean("acc_first"),
        "fix_rate": mean("fixed", wrong_first_wf),
        "harm_rate": mean("broke", right_first_wf),
        "harm_n": float(len(right_first_wf)),
        "changed_when_first_right": mean("changed", first_right),
        "len_ratio": mean("len_ratio", well_formed),
        "well_formed": mean("format"),
        "response_tokens": mean("response_tokens"),
    }


def per_question_acc(rows: Iterable[dict[str, Any]], mode: str = "sample") -> dict[str, float]:
    """Question -> share of its ``mode`` responses whose final answer is right (the primary metric's unit)."""
    hits: dict[str, list[float]] = {}
    for r in rows:
        if r["mode"] == mode:
            hits.setdefault(r["qid"], []).append(score_row(r)["acc"])
    return {q: sum(v) / len(v) for q, v in hits.items()}


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    from recipe.srpo.cpu.verify_learning import wilson as _wilson

    return _wilson(p, n, z) if n else (math.nan, math.nan)


def gate_numbers(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The gate of docs/ablation.md on the SFT model's sampled rows: each quantity, its interval, its band."""
    m = metrics_of(rows, "sample")
    n = int(m.get("responses", 0))
    out: dict[str, Any] = {"responses": n, "quantities": {}, "passed": bool(n)}
    for name, (lo, hi) in GATE.items():
        value = m.get(name, math.nan)
        trials = int(m["harm_n"]) if name == "harm_rate" else n
        ok = trials > 0 and lo <= value <= hi
        out["quantities"][name] = {"value": value, "n": trials, "interval": wilson(value, trials) if trials else None,
                                   "band": [lo, hi], "ok": ok}
        out["passed"] = out["passed"] and ok
    return out


def gate_lines(gate: dict[str, Any]) -> list[str]:
    lines = []
    for name, q in gate["quantities"].items():
        lo, hi = q["interval"] or (math.nan, math.nan)
        lines.append(f"[{'PASS' if q['ok'] else 'FAIL'}] gate {name}: {q['value']:.3f} of {q['n']} "
                     f"(95% Wilson {lo:.3f} to {hi:.3f}), band {q['band'][0]:.2f} to {q['band'][1]:.2f}")
    lines.append(f"gate {'passed' if gate['passed'] else 'MISSED'} ({gate['responses']} sampled responses)")
    return lines


# ------------------------------------------------------------------ the decision
def paired_bootstrap(a: dict[int, dict[str, float]], b: dict[int, dict[str, float]], draws: int = 10_000,
                     rng_seed: int = 0) -> tuple[float, float, float]:
    """d = mean over seeds of mean over questions (a - b), and its two-level percentile bootstrap interval:
    seeds drawn with replacement, then questions within each drawn seed, the same questions for a and b."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("no seed common to both arms")
    qs = {s: sorted(set(a[s]) & set(b[s])) for s in seeds}
    diff = {s: [a[s][q] - b[s][q] for q in qs[s]] for s in seeds}
    point = sum(sum(d) / len(d) for d in diff.values()) / len(seeds)
    rng = random.Random(rng_seed)
    stats = []
    for _ in range(draws):
        total = 0.0
        for s in rng.choices(seeds, k=len(seeds)):
            d = diff[s]
            total += sum(rng.choices(d, k=len(d))) / len(d)
        stats.append(total / len(seeds))
    stats.sort()
    return point, stats[int(0.025 * draws)], stats[int(0.975 * draws) - 1]


def outcome(lo: float, hi: float, delta: float = DELTA) -> str:
    if lo > 0:
        return "SRPO better"
    if hi < 0:
        return "SRPO worse"
    if -delta <= lo and hi <= delta:
        return "no difference"
    return "inconclusive"


def step_standard_errors(log: Path) -> list[float]:
    """Per GRPO step: sqrt(p (1 - p) / n) of the step's generated responses' final-answer accuracy."""
    from recipe.srpo.cpu.verify_run import parse_step_lines
    from recipe.srpo.metrics import PREFILTER_PREFIX

    out = []
    if not log.exists():
        return out
    for _, m in sorted(parse_step_lines(log.read_text(errors="replace")).items()):
        p, n = m.get(f"{PREFILTER_PREFIX}/acc/mean"), m.get(f"{PREFILTER_PREFIX}/responses")
        if p is not None and n:
            out.append(math.sqrt(float(p) * (1 - float(p)) / float(n)))
    return out


# ------------------------------------------------------------------ the study
def say(msg: str) -> None:
    print(f"[ablation {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Study:
    def __init__(self, workspace: Path, settings: Settings, python: str = sys.executable):
        self.ws = workspace
        self.s = settings
        self.python = python
        self.logs = workspace / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.data = workspace / "data"

    def run_dir(self, arm: str, seed: int) -> Path:
        return self.ws / "runs" / arm / f"seed{seed}"

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "PYTHON": self.python, "CPU_TRAIN": "1", "TOKENIZERS_PARALLELISM": "false",
               "CPU_SAVE_FREQ": os.environ.get("CPU_SAVE_FREQ", "5"), "MODEL_PATH": str(self.ws / "tiny-qwen"),
               "DATA_DIR": str(self.data), "SFT_DIR": str(self.ws / "outputs" / "sft"),
               "POLICY_PATH": str(self.sft_model), "OUTPUT_DIR": str(self.ws / "outputs" / "srpo")}
        env.pop("VERL_PLATFORM", None)
        env.update(extra)
        return env

    @property
    def sft_model(self) -> Path:
        return self.ws / "outputs" / "sft_merged"

    def stage(self, name: str, fn, marker: Path | None = None) -> None:
        marker = marker or self.logs / f"{name}.done"
        if marker.exists():
            say(f"{name}: done in an earlier run ({marker}), skipped")
            return
        start = time.time()
        say(f"{name}: started")
        fn()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(f"{time.time() - start:.0f}\n")
        with open(self.logs / "stage_seconds.txt", "a") as fh:
            fh.write(f"{name} {time.time() - start:.0f}\n")
        say(f"{name}: done in {time.time() - start:.0f} s")

    def sh(self, log: Path, cmd: Sequence[str], env: dict[str, str]) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as fh:
            fh.write(f"$ {' '.join(cmd)}\n")
            fh.flush()
            proc = subprocess.run(list(cmd), env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
        if proc.returncode:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"{' '.join(cmd[:3])} exited {proc.returncode} (log {log}):\n{tail}")

    # the stages
    def workspace(self) -> None:
        from srpo_data.offline import count_task

        count_task.write_task(self.ws, self.s.train_rows, self.s.test_rows, "http://127.0.0.1:9/v1")

    def data_stage(self) -> None:
        from srpo_data.offline import count_task
        from srpo_data.offline.fake_endpoint import FakeEndpoint, Script
        from srpo_data.offline.learn_task import builder_yaml

        answers = json.loads((self.data / "stage1_answers.json").read_text())
        endpoint = FakeEndpoint(Script(answers=answers, right_rate=self.s.right_rate,
                                       revise_right_rate=self.s.revise_right_rate, reply=count_task.scripted_reply))
        url = endpoint.start_in_thread()
        try:
            (self.data / "reflection_builder.yaml").write_text(builder_yaml(url, count_task.FIRST_RIGHT))
            self.sh(self.logs / "data.log", ["bash", str(RUN_SCRIPT)], self.env(STAGES="data"))
        finally:
            endpoint.stop()
        summary = json.loads((self.data / "sft" / "summary.json").read_text())
        say(f"data: {summary['kept']} SFT samples, first-right share {summary['mix']['first_right']:.2f}, "
            f"dropped {dict(summary.get('dropped', {}))}")

    def sft(self) -> None:
        self.sh(self.logs / "sft.log", ["bash", str(RUN_SCRIPT), "sft.+cpu_learn=sft",
                                        f"sft.trainer.total_training_steps={self.s.sft_steps}"], self.env(STAGES="sft"))

    def merge(self) -> None:
        self.sh(self.logs / "merge.log", ["bash", str(RUN_SCRIPT)], self.env(STAGES="merge"))

    @property
    def val(self) -> Path:
        return self.data / "rl" / "val.parquet"

    def gate(self) -> dict[str, Any]:
        path = self.ws / "gate.json"
        if not path.exists():
            rows = sample_model(self.sft_model, self.val, self.ws / "gate_rollouts.jsonl", self.s.eval_samples,
                                self.s.max_new_tokens, seed=10_000, progress="gate: ")
            path.write_text(json.dumps(gate_numbers(rows), indent=1) + "\n")
        gate = json.loads(path.read_text())
        for line in gate_lines(gate):
            print(line, flush=True)
        return gate

    def grpo(self, arm: str, seed: int) -> None:
        rd = self.run_dir(arm, seed)
        overrides = grpo_overrides(self.s, arm, seed, rd / "rollouts")
        (rd / "cmd.json").parent.mkdir(parents=True, exist_ok=True)
        (rd / "cmd.json").write_text(json.dumps({"arm": arm, "seed": seed, "overrides": overrides}, indent=1) + "\n")
        self.sh(rd / "grpo.log", ["bash", str(RUN_SCRIPT), *overrides],
                self.env(STAGES="grpo", OUTPUT_DIR=str(rd), EXPERIMENT=f"{arm}_seed{seed}"))

    def eval(self, arm: str, seed: int) -> None:
        rd = self.run_dir(arm, seed)
        step = (rd / "grpo" / "latest_checkpointed_iteration.txt").read_text().strip()
        merged = rd / "merged"
        if not (merged / "config.json").exists():
            self.sh(rd / "eval.log", [self.python, "-m", "verl.model_merger", "merge", "--backend", "fsdp",
                                      "--local_dir", str(rd / "grpo" / f"global_step_{step}" / "actor"),
                                      "--target_dir", str(merged)], self.env())
        sample_model(merged, self.val, rd / "eval_rollouts.jsonl", self.s.eval_samples, self.s.max_new_tokens,
                     seed=seed, progress=f"eval {arm} seed {seed}: ")

    def run(self, seeds: Sequence[int], arms: Sequence[str], stop_after: str | None = None) -> int:
        start = time.time()
        for name, fn in (("workspace", self.workspace), ("data", self.data_stage), ("sft", self.sft),
                         ("merge", self.merge)):
            self.stage(name, fn)
            if stop_after == name:
                return 0
        gate = self.gate()
        if not gate["passed"]:
            say("the SFT model missed the gate (docs/ablation.md): the study stops before any GRPO run")
            return 3
        if stop_after == "gate":
            return 0
        units = [(seed, arm) for seed in seeds for arm in arms]
        for i, (seed, arm) in enumerate(units, 1):
            rd = self.run_dir(arm, seed)
            say(f"run {i}/{len(units)}: arm {arm}, seed {seed} ({time.time() - start:.0f} s into this invocation)")
            self.stage(f"grpo {arm} seed {seed}", lambda: self.grpo(arm, seed), rd / "grpo.done")
            self.stage(f"eval {arm} seed {seed}", lambda: self.eval(arm, seed), rd / "eval.done")
        if stop_after == "runs":
            return 0
        summary = summarize(self.ws, self.s)
        for line in summary["lines"]:
            print(line, flush=True)
        say(f"done in {time.time() - start:.0f} s; check it: python -m recipe.srpo.cpu.verify_ablation --workspace {self.ws}")
        return 0


# ------------------------------------------------------------------ the summary
TABLE_COLUMNS = ("final_acc", "first_acc", "fix_rate", "harm_rate", "changed_when_first_right", "len_ratio",
                 "well_formed", "response_tokens")


def study_metrics(workspace: Path, settings: Settings) -> dict[str, Any]:
    """Every number of the table, from the rollouts: per arm and seed (sampled and greedy), and the SFT model."""
    out: dict[str, Any] = {"runs": {}, "sft": {}}
    gate_rows = read_jsonl(workspace / "gate_rollouts.jsonl")
    out["sft"] = {mode: metrics_of(gate_rows, mode) for mode in ("sample", "greedy")}
    for arm in settings.arms:
        for seed in settings.seeds:
            rows = eval_rows(workspace, arm, seed)
            if rows:
                out["runs"][f"{arm}/seed{seed}"] = {mode: metrics_of(rows, mode) for mode in ("sample", "greedy")}
    return out


def summarize(workspace: Path, settings: Settings) -> dict[str, Any]:
    out_dir = workspace / "outputs" / "ablation"
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = study_metrics(workspace, settings)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n")
    lines = ["| arm | seed | decoding | " + " | ".join(TABLE_COLUMNS) + " |", "|---|---|---|" + "---:|" * len(TABLE_COLUMNS)]
    for mode in ("sample", "greedy"):
        if metrics["sft"].get(mode):
            lines.append(f"| sft (start) | - | {mode} | " + " | ".join(f"{metrics['sft'][mode][c]:.3f}" for c in TABLE_COLUMNS) + " |")
    for key, by_mode in metrics["runs"].items():
        arm, seed = key.split("/")
        for mode in ("sample", "greedy"):
            lines.append(f"| {arm} | {seed[4:]} | {mode} | " + " | ".join(f"{by_mode[mode][c]:.3f}" for c in TABLE_COLUMNS) + " |")
    acc = {arm: seed_accs(workspace, arm, [seed for seed in settings.seeds
                                           if (workspace / "runs" / arm / f"seed{seed}" / "eval.done").exists()])
           for arm in settings.arms}
    decisions = {}
    for arm in settings.arms:
        if arm == "srpo" or not acc.get("srpo") or not acc.get(arm) or not set(acc["srpo"]) & set(acc[arm]):
            continue
        d, lo, hi = paired_bootstrap(acc["srpo"], acc[arm])
        seeds = sorted(set(acc["srpo"]) & set(acc[arm]))
        decisions[arm] = {"d": d, "lo": lo, "hi": hi, "seeds": seeds, "outcome": outcome(lo, hi)}
    ses = {f"{arm}/seed{seed}": step_standard_errors(workspace / "runs" / arm / f"seed{seed}" / "grpo.log")
           for arm in settings.arms for seed in settings.seeds}
    all_se = sorted(x for v in ses.values() for x in v)
    se_summary = {"median": all_se[len(all_se) // 2] if all_se else math.nan, "max": max(all_se, default=math.nan),
                  "steps": len(all_se), "target": STEP_SE_TARGET}
    (out_dir / "decisions.json").write_text(json.dumps({"decisions": decisions, "step_se": se_summary}, indent=1) + "\n")
    (out_dir / "table.md").write_text("\n".join(lines) + "\n")
    plots = plot_arms(workspace, settings, out_dir)
    text = ["held-out metrics (table.md):", *lines,
            f"per-step standard error of the generated final accuracy: median {se_summary['median']:.3f}, max "
            f"{se_summary['max']:.3f} over {se_summary['steps']} steps (target <= {STEP_SE_TARGET}: "
            f"{'met' if se_summary['median'] <= STEP_SE_TARGET else 'NOT met'})"]
    for arm, dec in decisions.items():
        text.append(f"srpo vs {arm}: d = {dec['d']:+.3f}, 95% paired bootstrap [{dec['lo']:+.3f}, {dec['hi']:+.3f}] "
                    f"over seeds {dec['seeds']} then questions -> {dec['outcome']}"
                    + (" (fewer seeds than the study's: a quick look, not the study)" if len(dec["seeds"]) < len(settings.seeds) else ""))
    text += [f"wrote {p}" for p in [out_dir / "metrics.json", out_dir / "table.md", out_dir / "decisions.json", *plots]]
    return {"metrics": metrics, "decisions": decisions, "step_se": se_summary, "lines": text}


def plot_arms(workspace: Path, settings: Settings, out_dir: Path) -> list[Path]:
    """One figure per arm: its runs' per-step training curves (one line per seed) and held-out bars per seed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recipe.srpo.cpu.verify_learning import step_row
    from recipe.srpo.cpu.verify_run import parse_step_lines
    from recipe.srpo.metrics import PREFILTER_PREFIX

    cols = {"acc": "final-answer accuracy (generated)", "acc_first": "first-answer accuracy", "fix_rate": "fix rate",
            "harm_rate": "harm rate", "format": "well-formed rate", "response_tokens": "response tokens"}
    paths = []
    for arm in settings.arms:
        fig, axes = plt.subplots(2, 4, figsize=(18, 7.5))
        for seed in settings.seeds:
            rd = workspace / "runs" / arm / f"seed{seed}"
            log = rd / "grpo.log"
            steps = parse_step_lines(log.read_text(errors="replace")) if log.exists() else {}
            rows = {s: step_row(m) for s, m in steps.items() if f"{PREFILTER_PREFIX}/format/mean" in m}
            xs = sorted(rows)
            for ax, (col, title) in zip(axes.flat, cols.items()):
                ax.plot(xs, [rows[x][col] for x in xs], marker=".", label=f"seed {seed}")
                ax.set_title(title, fontsize=10)
                ax.set_xlabel("GRPO step")
        for ax, col in zip(axes.flat[6:], ("final_acc", "first_acc")):
            vals = []
            for seed in settings.seeds:
                rows = eval_rows(workspace, arm, seed)
                vals.append(metrics_of(rows).get(col, math.nan) if rows else math.nan)
            ax.bar([str(s) for s in settings.seeds], vals)
            ax.set_ylim(0, 1)
            ax.set_title(f"held-out {col} (T=1 samples) per seed", fontsize=10)
        axes.flat[0].legend()
        fig.suptitle(f"ablation arm {arm}: {ARMS[arm] or 'the paper defaults'}", fontsize=10)
        fig.tight_layout()
        path = out_dir / f"{arm}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Settings, list[int], list[str]]:
    d = Settings()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", required=True, type=Path)
    ap.add_argument("--seeds", default=None, help=f"this invocation's seeds (default: the study's, {','.join(map(str, d.seeds))})")
    ap.add_argument("--arms", default=None, help=f"this invocation's arms (default: all: {','.join(ARMS)})")
    ap.add_argument("--stop-after", choices=("workspace", "data", "sft", "merge", "gate", "runs"))
    ap.add_argument("--summary-only", action="store_true", help="only the summary of the runs done so far")
    for f in dataclasses.fields(Settings):
        if f.name in ("seeds", "arms", "grpo_overrides"):
            continue
        ap.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default)
    ap.add_argument("--study-seeds", default=",".join(map(str, d.seeds)), help="the study's seeds (a setting)")
    ap.add_argument("--grpo-override", action="append", default=[], help="an extra GRPO override, for every arm (a setting)")
    args = ap.parse_args(argv)
    study_seeds = parse_seeds(args.study_seeds)
    seeds = parse_seeds(args.seeds) if args.seeds else study_seeds
    arms = parse_arms(args.arms) if args.arms else list(ARMS)
    if set(seeds) - set(study_seeds):
        raise StudyError(f"--seeds {seeds} are not all among the study's seeds {study_seeds} (--study-seeds)")
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings) if f.name not in ("seeds", "arms", "grpo_overrides")}
    settings = Settings(seeds=tuple(study_seeds), arms=tuple(ARMS), grpo_overrides=tuple(args.grpo_override), **values)
    return args, settings, seeds, arms


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args, settings, seeds, arms = parse_args(argv)
        check_overrides(settings)
        settings = load_or_write_settings(args.workspace, settings)
    except StudyError as exc:
        print(f"ablation: {exc}", file=sys.stderr)
        return 2
    study = Study(args.workspace, settings)
    if args.summary_only:
        for line in summarize(args.workspace, settings)["lines"]:
            print(line)
        return 0
    return study.run(seeds, arms, args.stop_after)


if __name__ == "__main__":
    sys.exit(main())
