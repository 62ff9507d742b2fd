"""The builder against a fault-injecting OpenAI-compatible server of ours on loopback."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from srpo_data.stage1.build_reflections import main as cli_main
from srpo_data.stage1.builder.run import build

from builder_helpers import build_config, make_question_set

N = 12
COUNTS = ("samples_in", "attempts", "reflections", "revisions", "kept", "kept_first_right", "kept_first_wrong", "dropped", "failed")


def counts(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary[k] for k in COUNTS}


def sft_rows(out: Path) -> list[tuple[str, str]]:
    table = pq.read_table(out / "sft.parquet").to_pylist()
    return [(r["id"], json.dumps(r["messages"])) for r in table]


@pytest.fixture
def clean_run(tmp_path: Path, fake_server):  # type: ignore[no-untyped-def]
    """A run without faults: the reference every faulty run must reproduce."""
    inp, answers = make_question_set(tmp_path / "data", N)
    srv = fake_server(answers=answers)
    summary = build(build_config(inp, tmp_path / "clean", srv.base_url))
    assert summary["complete"] and summary["kept"] > 0 and summary["dropped_total"] > 0
    return inp, answers, summary, sft_rows(tmp_path / "clean")


@pytest.mark.slow
@pytest.mark.parametrize(
    "faults, error_key",
    [
        pytest.param(("429",), "http_429", id="429-retry-after"),
        pytest.param(("500",), "http_500", id="500"),
        pytest.param(("hang",), "timeout", id="hang-past-timeout"),
        pytest.param(("truncated",), "connection", id="truncated-body"),
        pytest.param(("not_json",), "bad_body", id="non-json-body"),
        pytest.param(("429", "500", "hang", "truncated", "not_json"), None, id="all-mixed"),
    ],
)
def test_transient_faults_change_nothing(tmp_path: Path, fake_server, clean_run, faults, error_key) -> None:  # type: ignore[no-untyped-def]
    inp, answers, clean_summary, clean_rows = clean_run
    srv = fake_server(answers=answers, fault_rate=0.3, faults=faults, hang_seconds=2.0, retry_after=0.05, seed=7)
    out = tmp_path / "faulty"
    # A short client timeout only where a hang must be cut (2 s hangs); elsewhere a generous one, so that a
    # loaded machine (an answer slower than 0.5 s) cannot add "timeout" to the errors of a 429 or 500 run.
    timeout = 0.5 if "hang" in faults else 10.0
    summary = build(build_config(inp, out, srv.base_url, endpoint={"timeout": timeout, "max_retries": 12}))
    assert summary["complete"]
    assert counts(summary) == counts(clean_summary)
    assert sft_rows(out) == clean_rows
    errors = {**summary["this_run"]["policy"]["errors"]}
    for k, v in summary["this_run"]["teacher"]["errors"].items():
        errors[k] = errors.get(k, 0) + v
    assert sum(errors.values()) > 0, "the server injected no fault"
    if error_key is not None:
        assert set(errors) == {error_key}


@pytest.mark.slow
def test_retry_after_is_honoured(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 8)
    srv = fake_server(answers=answers, fault_rate=0.4, faults=("429",), retry_after=0.4, seed=3)
    # Backoff alone would wait about 0.01-0.03 s: only Retry-After explains a 0.4 s gap.
    cfg = build_config(inp, tmp_path / "out", srv.base_url, endpoint={"backoff_initial": 0.01, "max_retries": 20})
    assert build(cfg)["complete"]
    throttled = [(t, d, ra) for t, d, status, ra in srv.log if status == "429"]
    assert throttled
    for t, digest, retry_after in throttled:
        later = [t2 for t2, d2, _, _ in srv.log if d2 == digest and t2 > t]
        assert later, "a throttled request was never retried"
        assert min(later) - t >= retry_after - 0.02


@pytest.mark.slow
def test_exhausted_retries_are_failures_then_retry_failed_completes(tmp_path: Path, fake_server, clean_run) -> None:  # type: ignore[no-untyped-def]
    inp, answers, clean_summary, clean_rows = clean_run
    srv = fake_server(answers=answers, fault_rate=0.5, faults=("500",), seed=11)
    out = tmp_path / "out"
    cfg = build_config(inp, out, srv.base_url, endpoint={"max_retries": 0})
    first = build(cfg)
    assert first["complete"] and first["failed_total"] > 0
    assert first["kept"] + first["dropped_total"] + first["failed_total"] == N
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert {f["reason"] for f in failures} == {"http_500"}
    assert len({f["sample_id"] for f in failures}) == first["failed_total"]
    assert all(f["detail"] and f["step"] in ("attempt", "reflection", "revision") for f in failures)

    assert all(f["transient"] for f in failures)

    # Transient failures stay retryable: a plain rerun against a healthy server (no
    # --retry-failed) finishes the job exactly like a clean run, and failures.jsonl empties.
    srv.script.fault_rate = 0.0
    done = build(cfg)
    assert counts(done) == counts(clean_summary)
    assert sft_rows(out) == clean_rows
    assert (out / "failures.jsonl").read_text() == ""

    # Nothing is left to do: a rerun makes no call at all.
    n_requests = len(srv.log)
    assert counts(build(cfg)) == counts(clean_summary)
    assert len(srv.log) == n_requests


@pytest.mark.slow
def test_permanent_failures_are_skipped_until_retry_failed(tmp_path: Path, fake_server, clean_run) -> None:  # type: ignore[no-untyped-def]
    inp, answers, clean_summary, clean_rows = clean_run
    srv = fake_server(answers=answers, bad_json_rate=1.0)
    out = tmp_path / "out"
    cfg = build_config(inp, out, srv.base_url, json_retries=0)
    first = build(cfg)
    assert first["failed"] and set(first["failed"]) == {"reflection:teacher_bad_json"}
    n_requests = len(srv.log)
    again = build(cfg)
    assert len(srv.log) == n_requests  # a teacher that never wrote JSON is not asked again
    assert counts(again) == counts(first)
    srv.script.bad_json_rate = 0.0
    done = build(cfg.model_copy(update={"retry_failed": True}))
    assert counts(done) == counts(clean_summary)
    assert sft_rows(out) == clean_rows


@pytest.mark.slow
@pytest.mark.parametrize(
    "bad_json_rate, json_retries",
    [
        pytest.param(1.0, 2, id="never-json-fails-after-3-calls"),
        pytest.param(1.0, 0, id="never-json-no-retry"),
    ],
)
def test_malformed_reflection_json_is_retried_then_a_failure(tmp_path: Path, fake_server, bad_json_rate: float, json_retries: int) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", N)
    srv = fake_server(answers=answers, bad_json_rate=bad_json_rate)
    summary = build(build_config(inp, tmp_path / "out", srv.base_url, json_retries=json_retries))
    reached = summary["attempts"] - sum(v for k, v in summary["dropped"].items() if k.startswith("attempt"))
    assert reached > 0
    assert summary["failed"] == {"reflection:teacher_bad_json": reached}
    assert summary["this_run"]["teacher"]["completions"] == reached * (json_retries + 1)
    assert summary["kept"] == 0


@pytest.mark.slow
def test_malformed_json_sometimes_is_recovered(tmp_path: Path, fake_server, clean_run) -> None:  # type: ignore[no-untyped-def]
    inp, answers, clean_summary, _ = clean_run
    srv = fake_server(answers=answers, bad_json_rate=0.3)
    summary = build(build_config(inp, tmp_path / "out", srv.base_url, json_retries=6))
    assert summary["failed_total"] == 0
    assert summary["kept"] == clean_summary["kept"]
    assert summary["this_run"]["teacher"]["completions"] > summary["reflections"]


SECRET = "sk-test-DO-NOT-LEAK-0123456789abcdef"


@pytest.mark.slow
@pytest.mark.parametrize(
    "server_key, exit_code",
    [
        pytest.param(SECRET, 0, id="right-key-faults-echo-the-header"),
        pytest.param("sk-another-key", 2, id="wrong-key-401-echoes-the-header"),
    ],
)
def test_api_key_never_appears(tmp_path: Path, fake_server, monkeypatch, capsys, caplog, server_key: str, exit_code: int) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 6)
    # A careless server that quotes the Authorization header in its error bodies.
    srv = fake_server(answers=answers, api_key=server_key, echo_auth=True, fault_rate=0.6, faults=("500", "429", "not_json"), retry_after=0.01)
    monkeypatch.setenv("SRPO_TEST_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    ep = f"{{base_url: '{srv.base_url}', model: fake, api_key_env: SRPO_TEST_KEY, max_retries: 1, backoff_initial: 0.01, timeout: 2}}"
    out = tmp_path / "out"
    code = cli_main(["--input", str(inp), "--out", str(out), "--policy", ep, "--teacher", ep, "--no-progress"])
    assert code == exit_code
    captured = capsys.readouterr()
    texts = [captured.out, captured.err, caplog.text]
    texts += [p.read_text(encoding="utf-8", errors="replace") for p in out.rglob("*") if p.is_file() and p.suffix in (".json", ".jsonl")]
    assert len(texts) >= 5
    for text in texts:
        assert SECRET not in text
    summary = json.loads((out / "summary.json").read_text())
    if exit_code == 0:
        assert summary["failed_total"] > 0  # error details were recorded (and redacted)
        failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
        # the server's random draws decide which faults exhaust the retries: bodies that quote
        # the header (500, 429) carry it redacted
        echoed = [f for f in failures if f["reason"] in ("http_500", "http_429")]
        assert all("***" in f["detail"] for f in echoed)
    else:
        assert "http_401" in summary["fatal_error"] and "***" in summary["fatal_error"]
