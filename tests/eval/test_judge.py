"""The optional judge: extraction for untagged responses through a local OpenAI-compatible server,
the builder's endpoint config and client, an append-only cache that survives a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eval_lookalikes import eval_row, response, write_eval_parquet, write_jsonl
from judge_server import JudgeServer
from srpo_eval.judge import parse_reply
from srpo_eval.report import build_report, main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "reply,expected",
    [
        pytest.param("Extracted answer: B", "B", id="letter"),
        pytest.param("Sure.\nExtracted answer: 3.5", "3.5", id="after-chatter"),
        pytest.param('Extracted answer: "x^2"', "x^2", id="quotes"),
        pytest.param("Extracted answer: NONE", None, id="none"),
        pytest.param("", None, id="empty"),
    ],
)
def test_parse_reply(reply, expected):
    assert parse_reply(reply) == expected


@pytest.fixture
def data_and_runs(tmp_path):
    rows = [eval_row(f"q-{k}", "mathvista", "7", "integer", [], f"How many bars in figure {k}?", k) for k in range(6)]
    data = write_eval_parquet(tmp_path / "eval.parquet", rows)
    recs = [
        {"id": "q-0", "response": response("7", "7")},  # tagged: the judge is not asked
        {"id": "q-1", "response": "I count them one by one, so the answer is 7."},
        {"id": "q-2", "response": "Counting gives eight bars; the answer is 8."},
        {"id": "q-3", "response": "I cannot tell from the picture."},
        {"id": "q-4", "response": "Seven bars are visible, the answer is 7"},
        {"id": "q-5", "response": "so the answer is 7."},
    ]
    return data, write_jsonl(tmp_path / "base.jsonl", recs)


def judge_yaml(path: Path, base_url: str, concurrency: int = 4) -> Path:
    path.write_text(f"judge:\n  base_url: {base_url}\n  model: judge-test\n  temperature: 0\n  max_retries: 0\n"
                    f"  timeout: 30\n  concurrency: {concurrency}\n")
    return path


def test_judge_fills_untagged_answers_and_reports_them(data_and_runs, tmp_path):
    from srpo_eval.judge import Judge, load_judge_config

    data, run = data_and_runs
    with JudgeServer() as srv:
        cfg = load_judge_config(judge_yaml(tmp_path / "judge.yaml", srv.base_url))
        judge = Judge(cfg, tmp_path / "cache.jsonl")
        report = build_report([run], [data], tmp_path / "out", plots=False, n_boot=100, judge=judge)
        assert srv.requests == 5  # q-0 has its <answer>
        # a second run against the same endpoint asks nothing: every reply is in the cache
        again = Judge(load_judge_config(judge_yaml(tmp_path / "judge-again.yaml", srv.base_url)), tmp_path / "cache.jsonl")
        report_again = build_report([run], [data], tmp_path / "out-again", plots=False, n_boot=100, judge=again)
        assert srv.requests == 5
        assert report_again["runs"][0]["overall"] == report["runs"][0]["overall"]
    o = report["runs"][0]["overall"]
    assert o["acc_final"] == pytest.approx(4 / 6)  # q-0, q-1, q-4, q-5
    assert o["reflection"]["judged"] == 4 and o["reflection"]["no_answer"] == 1
    samples = [json.loads(x) for x in (tmp_path / "out" / "samples-base.jsonl").read_text().splitlines()]
    assert [s["answer_source"] for s in samples] == ["tags", "judge", "judge", "none", "judge", "judge"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Judge for `base`: `judge-test`" in md and "4 answers extracted" in md
    # another endpoint (another base_url: another fingerprint in the cache) is asked again
    with JudgeServer() as srv2:
        judge2 = Judge(load_judge_config(judge_yaml(tmp_path / "judge2.yaml", srv2.base_url)), tmp_path / "cache.jsonl")
        build_report([run], [data], tmp_path / "out2", plots=False, n_boot=100, judge=judge2)
        assert srv2.requests == 5


def test_without_judge_untagged_is_wrong(data_and_runs, tmp_path):
    data, run = data_and_runs
    o = build_report([run], [data], tmp_path / "out", plots=False, n_boot=100)["runs"][0]["overall"]
    assert o["acc_final"] == pytest.approx(1 / 6)


def test_fatal_status_stops_with_exit_2(data_and_runs, tmp_path, capsys):
    data, run = data_and_runs
    with JudgeServer(status=401) as srv:
        y = judge_yaml(tmp_path / "j.yaml", srv.base_url)
        assert main([str(run), "--data", str(data), "--out", str(tmp_path / "o"), "--no-plots", "--judge", str(y)]) == 2
    assert "judge endpoint refused" in capsys.readouterr().err


@pytest.mark.slow
def test_judge_resumes_after_a_kill(data_and_runs, tmp_path):
    """SIGKILL the report mid-way: the cache keeps what was answered, the rerun asks only the rest."""
    data, run = data_and_runs
    cache = tmp_path / "cache.jsonl"
    with JudgeServer(delay=0.6) as srv:
        y = judge_yaml(tmp_path / "j.yaml", srv.base_url, concurrency=1)
        cmd = [sys.executable, "-m", "srpo_eval.report", str(run), "--data", str(data), "--out", str(tmp_path / "o"),
               "--no-plots", "--bootstrap", "50", "--judge", str(y), "--judge-cache", str(cache)]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not cache.exists() or len(cache.read_text().splitlines()) < 2):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kept = len(cache.read_text().splitlines())
        assert 2 <= kept < 5
        before = srv.requests
        srv.delay = 0.0
        assert main(cmd[3:]) == 0
        assert srv.requests - before == 5 - kept  # only the missing ones are asked again
    assert len(cache.read_text().splitlines()) == 5


def test_one_judge_counts_each_run_on_its_own(data_and_runs, tmp_path):
    """Issue 19: one Judge serves every run of a report; each run's judge line and summary
    block give that run's counts, not the totals of the runs before it."""
    from srpo_eval.judge import Judge, load_judge_config

    data, run = data_and_runs
    other = write_jsonl(tmp_path / "other.jsonl", [
        {"id": "q-0", "response": "the answer is 7"},  # untagged: the judge is asked
        {"id": "q-1", "response": response("7", "7")},
    ])
    with JudgeServer() as srv:
        judge = Judge(load_judge_config(judge_yaml(tmp_path / "judge.yaml", srv.base_url)), tmp_path / "cache.jsonl")
        report = build_report([run, other], [data], tmp_path / "out", plots=False, n_boot=50, judge=judge)
    first, second = (r["judge"] for r in report["runs"])
    assert (first["needed"], first["decided"], first["no_answer"]) == (5, 4, 1)
    assert (second["needed"], second["decided"], second["no_answer"]) == (1, 1, 0)
    # every counter is written, a 0 too (issue 28: `no_answer` was absent, not 0)
    from srpo_eval.judge import JUDGE_COUNTERS

    for block in (first, second):
        assert {*JUDGE_COUNTERS, "failed"} <= set(block), sorted(block)
    assert (second["cached"], second["asked"], second["failed"]) == (0, 1, 0)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [run["judge"]["no_answer"] for run in summary["runs"]] == [1, 0]
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Judge for `other`" in md
    line = next(x for x in md.splitlines() if x.startswith("Judge for `other`"))
    assert "1 responses without a usable `<answer>`, 1 answers extracted" in line
