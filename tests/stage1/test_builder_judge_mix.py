"""The quality judge and the target mix: against the scripted server, resumed after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from builder_helpers import build_config, endpoint, make_question_set
from srpo_data.stage1.builder.pipeline import KEPT, Outcome, RunResult
from srpo_data.stage1.builder.run import build
from srpo_data.stage1.builder.steps import parse_judge_score

N = 24


@pytest.mark.parametrize(
    "text, score, reason",
    [
        pytest.param('{"score": 7}', 7.0, "ok", id="int"),
        pytest.param('```json\n{"score": 8.5}\n```', 8.5, "ok", id="fenced-float"),
        pytest.param('{"score": "high"}', None, "no_score_field", id="not-a-number"),
        pytest.param('{"score": true}', None, "no_score_field", id="bool-is-not-a-score"),
        pytest.param("seven", None, "not_json", id="prose"),
    ],
)
def test_parse_judge_score(text: str, score: float | None, reason: str) -> None:
    assert parse_judge_score(text) == (score, reason)


def test_judge_scores_filters_and_resumes(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", N)
    srv = fake_server(answers=answers)
    out = tmp_path / "out"
    cfg = build_config(inp, out, srv.base_url, judge=endpoint(srv.base_url), judge_threshold=6)
    first = build(cfg)
    judge = first["judge"]
    assert judge["scored"] > 0 and judge["kept"] > 0 and judge["dropped"] > 0
    assert judge["kept"] + judge["dropped"] == judge["scored"]
    assert first["dropped"]["judge_below_threshold"] == judge["dropped"]
    assert first["this_run"]["judge"]["completions"] == judge["scored"]
    # only samples the judge kept reached the teacher
    assert first["reflections"] <= judge["kept"]
    scores = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert len([r for r in scores if r["step"] == "judge"]) == judge["scored"]
    dropped = [json.loads(line) for line in (out / "dropped.jsonl").read_text().splitlines()]
    assert all(d["judge_score"] < 6 for d in dropped if d["reason"] == "judge_below_threshold")
    # the scores are stored: a rerun calls nobody
    same = build(cfg)
    assert all(u["requests"] == 0 for u in same["this_run"].values())
    assert same["judge"] == judge
    # a lower threshold asks the judge nothing again; the samples it now lets through go on
    again = build(cfg.model_copy(update={"judge_threshold": 3}))
    assert again["this_run"]["judge"]["requests"] == 0
    assert again["judge"]["scored"] == judge["scored"] and again["judge"]["kept"] >= judge["kept"]


def _outcome(i: int, right: bool) -> Outcome:
    return Outcome(f"s{i:03d}", i, KEPT, first_correct=right, target="t")


@pytest.mark.parametrize(
    "n_right, n_wrong, target, kept_right, kept_wrong",
    [
        pytest.param(50, 50, 0.3, 21, 50, id="too-many-right"),
        pytest.param(10, 90, 0.3, 10, 23, id="too-many-wrong"),
        pytest.param(30, 70, 0.3, 30, 70, id="already-on-target"),
        pytest.param(5, 0, 0.3, 5, 0, id="one-side-only-keeps-it"),
        pytest.param(5, 5, 1.0, 5, 0, id="all-right"),
        # small counts (issue 19): whole samples, the split closest to the target
        pytest.param(2, 1, 0.3, 1, 1, id="small-never-empties-right-when-50pct-is-closer"),
        pytest.param(1, 2, 0.3, 1, 2, id="small-already-closest"),
        pytest.param(1, 100, 0.3, 1, 2, id="one-right-keeps-two-wrong"),
        pytest.param(3, 1, 0.3, 1, 1, id="small-too-many-right"),
        pytest.param(10, 1, 0.2, 0, 1, id="empty-side-only-when-closest"),
    ],
)
def test_mix_is_applied_exactly_and_deterministically(n_right: int, n_wrong: int, target: float, kept_right: int, kept_wrong: int) -> None:
    def run(order: list[Outcome]) -> RunResult:
        r = RunResult()
        for o in order:
            r.add(o)
        r.apply_mix(target, seed=0)
        return r

    outs = [_outcome(i, i < n_right) for i in range(n_right + n_wrong)]
    a = run([Outcome(**vars(o)) for o in outs])
    b = run([Outcome(**vars(o)) for o in reversed(outs)])
    assert (a.kept_first_right, a.kept_first_wrong) == (kept_right, kept_wrong)
    assert a.kept == kept_right + kept_wrong
    assert a.dropped.get("mix_balance", 0) == n_right + n_wrong - a.kept
    assert {s for s, o in a.outcomes.items() if o.status == KEPT} == {s for s, o in b.outcomes.items() if o.status == KEPT}


def test_target_mix_in_a_build(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 40)
    srv = fake_server(answers=answers, right_rate=0.6)
    summary = build(build_config(inp, tmp_path / "out", srv.base_url, target_first_right=0.3))
    mix = summary["mix"]
    assert summary["kept_first_right"] > 0 and summary["kept_first_wrong"] > 0
    assert abs(mix["first_right"] - 0.3) <= 1 / summary["kept"] + 1e-9
    assert mix["dropped_for_mix"] == summary["dropped"].get("mix_balance", 0) > 0
    rows = pq.read_table(tmp_path / "out" / "sft.parquet").to_pylist()
    assert len(rows) == summary["kept"]
    assert sum(r["first_correct"] for r in rows) == summary["kept_first_right"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.mark.slow
def test_judge_and_mix_resume_after_sigkill(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 16)
    srv = fake_server(answers=answers, delay=0.1, right_rate=0.6)

    def cmd(out: Path) -> list[str]:
        ep = f"{{base_url: '{srv.base_url}', model: fake, concurrency: 4, timeout: 5, backoff_initial: 0.05}}"
        return [sys.executable, "-m", "srpo_data.build_reflections", "--input", str(inp), "--out", str(out), "--policy", ep,
                "--teacher", ep, "--judge", ep, "--judge-threshold", "4", "--target-first-right", "0.3", "--no-progress"]

    ref = subprocess.run(cmd(tmp_path / "ref"), env=_env(), capture_output=True, text=True, timeout=120)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "out"
    steps = out / "steps.jsonl"
    ref_steps = (tmp_path / "ref" / "steps.jsonl").read_bytes().count(b"\n")
    kills = []
    for target in (6, 20):
        proc = subprocess.Popen(cmd(out), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and (
            not steps.exists() or steps.read_bytes().count(b"\n") < target
        ):
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills.append((proc.returncode, steps.read_bytes().count(b"\n") if steps.exists() else 0))
    # both runs were killed mid-way (not finished before the kill), each after more steps were stored
    assert [rc for rc, _ in kills] == [-signal.SIGKILL] * 2, kills
    assert 6 <= kills[0][1] < kills[1][1] < ref_steps, (kills, ref_steps)
    final = subprocess.run(cmd(out), env=_env(), capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    a, b = (json.loads((d / "summary.json").read_text()) for d in (tmp_path / "ref", out))
    for key in ("kept", "kept_first_right", "kept_first_wrong", "dropped", "judge", "mix"):
        assert a[key] == b[key], key
    assert (out / "sft.parquet").read_bytes() == (tmp_path / "ref" / "sft.parquet").read_bytes()


def test_judge_corrective_turn_asks_for_a_score(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    """Issue 19: after a judge reply that is not JSON, the corrective turn asks for the judge's
    ``{"score": n}`` (prompts/judge_fix.txt), not the teacher's ``{"reflection": ...}``: the
    scripted server answers a corrective turn with what it asks for, so a wrong one fails."""
    inp, answers = make_question_set(tmp_path / "data", 10)
    # never JSON to a first request; the JSON the corrective turn asks for after it
    srv = fake_server(answers=answers, bad_json_rate=1.0, json_on_correction=True)
    cfg = build_config(inp, tmp_path / "out", srv.base_url, judge=endpoint(srv.base_url), judge_threshold=1, json_retries=1)
    summary = build(cfg)
    assert summary["failed"] == {} and summary["judge"]["scored"] > 0
    assert summary["this_run"]["judge"]["completions"] == 2 * summary["judge"]["scored"]
    steps = [json.loads(x) for x in (tmp_path / "out" / "steps.jsonl").read_text().splitlines()]
    retries = [r for r in steps if r["step"] == "judge" and r["try"] == 1]
    assert retries and all(parse_judge_score(r["content"])[1] == "ok" for r in retries)


def test_scripted_server_answers_what_a_corrective_turn_asks_for() -> None:
    from srpo_data.offline.fake_endpoint import Script, scripted_reply
    from srpo_data.stage1.builder.steps import corrective_messages, judge_messages

    script = Script(answers={"s1": "7"})
    base = judge_messages("[q:s1] How many?", [], "<think>t</think> <answer>7</answer>", "7")
    as_judge = scripted_reply({"messages": corrective_messages(base, "about seven", "not_json", "judge")}, script)
    assert parse_judge_score(as_judge)[1] == "ok"
    # a judge asked for the teacher's object answers that object: no score
    as_teacher = scripted_reply({"messages": corrective_messages(base, "about seven", "not_json", "reflection")}, script)
    assert parse_judge_score(as_teacher) == (None, "no_score_field") and '"reflection"' in as_teacher
