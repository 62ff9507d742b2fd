"""Defects of issue 12, each with the test that fails without its fix."""

from __future__ import annotations

import email.utils
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from builder_helpers import build_config, make_question_set
from srpo_data.stage1.build_reflections import main as cli_main
from srpo_data.stage1.builder import steps
from srpo_data.stage1.builder.client import CircuitBreaker, _retry_after_seconds, excerpt, redact
from srpo_data.stage1.builder.inputs import BadRow, iter_samples
from srpo_data.stage1.builder.pipeline import valid_step_record
from srpo_data.stage1.builder.run import build
from srpo_data.stage1.builder.store import JsonlStore

COUNTS = ("samples_in", "attempts", "reflections", "revisions", "kept", "kept_first_right", "kept_first_wrong", "dropped", "failed")
#: An OpenAI-style project key (164 characters).
LONG_SECRET = "sk-proj-" + "".join("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"[(i * 7) % 64] for i in range(156))


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _pieces(secret: str, n: int = 8) -> set[str]:
    return {secret[i : i + n] for i in range(len(secret) - n + 1)}


# ---------------------------------------------------------------- the key leaked in part
@pytest.mark.parametrize(
    "text, secret, leaked",
    [
        pytest.param("x" * 190 + LONG_SECRET, LONG_SECRET, False, id="straddles-the-cut"),
        pytest.param("key=" + LONG_SECRET[:20] + " (cut by a proxy)", LONG_SECRET, False, id="first-20-chars"),
        pytest.param("tail " + LONG_SECRET[-8:], LONG_SECRET, False, id="last-8-chars"),
        pytest.param("bearer " + LONG_SECRET[5:12], LONG_SECRET, True, id="7-chars-are-not-a-secret-part"),
        pytest.param("abc" + "sk-short" + "def", "sk-short", False, id="short-whole-secret"),
    ],
)
def test_excerpt_redacts_before_cutting_and_redacts_parts(text: str, secret: str, leaked: bool) -> None:
    out = excerpt(text, [secret])
    assert len(out) <= 200
    assert any(p in out for p in _pieces(secret, min(8, len(secret)))) == leaked or (leaked and secret[5:12] in out)
    assert secret not in redact(text, [secret])


def test_long_key_echoed_by_a_401_never_leaks_in_part(tmp_path: Path, fake_server, monkeypatch, capsys, caplog) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 3)
    srv = fake_server(answers=answers, api_key="sk-the-right-one", echo_auth=True)
    monkeypatch.setenv("SRPO_TEST_KEY", LONG_SECRET)
    caplog.set_level(logging.DEBUG)
    ep = f"{{base_url: '{srv.base_url}', model: fake, api_key_env: SRPO_TEST_KEY, max_retries: 0}}"
    out = tmp_path / "out"
    assert cli_main(["--input", str(inp), "--out", str(out), "--policy", ep, "--teacher", ep, "--no-progress"]) == 2
    captured = capsys.readouterr()
    texts = [captured.out, captured.err, caplog.text] + [p.read_text() for p in out.rglob("*") if p.suffix in (".json", ".jsonl")]
    assert "http_401" in captured.err
    for text in texts:
        assert not [p for p in _pieces(LONG_SECRET) if p in text]


# ---------------------------------------------------------------- a bad reply poisoned the store
def test_content_that_is_not_a_string_is_a_retried_failure(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 10)
    clean = build(build_config(inp, tmp_path / "clean", fake_server(answers=answers).base_url))
    srv = fake_server(answers=answers, fault_rate=0.3, faults=("bad_content",), seed=5)
    summary = build(build_config(inp, tmp_path / "out", srv.base_url, endpoint={"max_retries": 12}))
    assert summary["complete"] and not summary["internal_errors"]
    assert {k: summary[k] for k in COUNTS} == {k: clean[k] for k in COUNTS}
    errors = summary["this_run"]["policy"]["errors"] | summary["this_run"]["teacher"]["errors"]
    assert set(errors) == {"bad_body"}
    assert all(isinstance(r["content"], str) for r in _lines(tmp_path / "out" / "steps.jsonl"))


def test_a_stored_record_without_string_content_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"
    good = {"key": "a", "content": "x", "finish_reason": "stop", "role": "policy"}
    path.write_text(json.dumps({**good, "key": "b", "content": [1]}) + "\n" + json.dumps(good) + "\n")
    store = JsonlStore(path, valid=valid_step_record)
    assert "a" in store and "b" not in store and store.invalid == 1
    store.close()


# ---------------------------------------------------------------- unreadable images
def _rl_parquet(path: Path, images: list[bytes]) -> Path:
    recs = [
        {
            "data_source": "t",
            "prompt": [{"role": "user", "content": f"<image>[q:s{i}] q{i}?"}],
            "images": [{"bytes": b}],
            "reward_model": {"style": "rule", "ground_truth": "3"},
            "extra_info": {"question": f"[q:s{i}] q{i}?", "index": f"rl-{i}"},
        }
        for i, b in enumerate(images)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(recs).to_parquet(path)
    return path


def _png(colour: int = 9) -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (colour, 2, 3)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"definitely not an image", id="garbage"),
        pytest.param(_png()[:40], id="truncated-png"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"\0" * 30, id="png-magic-only"),
    ],
)
def test_unreadable_image_is_a_bad_row_by_id(tmp_path: Path, fake_server, data: bytes) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 4)
    (tmp_path / "data" / "img1.png").write_bytes(data)
    srv = fake_server(answers=answers)
    summary = build(build_config(inp, tmp_path / "out", srv.base_url))
    assert summary["complete"] and summary["bad_input"] == {"unreadable_image": 1}
    (bad,) = _lines(tmp_path / "out" / "bad_input.jsonl")
    assert bad["source_id"] == "row1" and bad["reason"] == "unreadable_image" and "img1.png" in bad["detail"]

    rl = _rl_parquet(tmp_path / "rl" / "rl.parquet", [_png(1), data, _png(2)])
    items = list(iter_samples(rl))
    assert isinstance(items[1], BadRow) and (items[1].reason, items[1].source_id) == ("unreadable_image", "rl-1")
    summary = build(build_config(rl, tmp_path / "out_rl", srv.base_url))
    assert summary["complete"] and summary["bad_input"] == {"unreadable_image": 1}
    assert [b["source_id"] for b in _lines(tmp_path / "out_rl" / "bad_input.jsonl")] == ["rl-1"]


# ---------------------------------------------------------------- bad and dropped rows listed
def test_bad_and_dropped_rows_are_listed_with_their_reason(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 12)
    with inp.open("a") as fh:
        fh.write(json.dumps({"id": "no-image", "question": "q", "answer": "1", "images": ["nope.png"]}) + "\n")
    summary = build(build_config(inp, tmp_path / "out", fake_server(answers=answers).base_url))
    assert summary["dropped_total"] > 0
    bad = _lines(tmp_path / "out" / "bad_input.jsonl")
    assert bad == [{"row": 12, "source_id": "no-image", "reason": "missing_image", "detail": ""}]
    dropped = _lines(tmp_path / "out" / "dropped.jsonl")
    assert len(dropped) == summary["dropped_total"]
    by_reason: dict[str, int] = {}
    for d in dropped:
        by_reason[d["reason"]] = by_reason.get(d["reason"], 0) + 1
        assert d["source_id"].startswith("row")
    assert by_reason == summary["dropped"]


# ---------------------------------------------------------------- failures.jsonl is current
def test_failures_file_states_the_current_failures(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 10)
    srv = fake_server(answers=answers, bad_json_rate=1.0)
    out = tmp_path / "out"
    cfg = build_config(inp, out, srv.base_url, json_retries=0)
    first = build(cfg)
    failed = first["failed_total"]
    assert failed > 0 and len(_lines(out / "failures.jsonl")) == failed
    # failing again under --retry-failed lists each sample once
    again = build(cfg.model_copy(update={"retry_failed": True}))
    assert again["failed_total"] == failed
    lines = _lines(out / "failures.jsonl")
    assert len(lines) == failed == len({f["sample_id"] for f in lines})
    # recovered samples leave the file
    srv.script.bad_json_rate = 0.0
    done = build(cfg.model_copy(update={"retry_failed": True}))
    assert done["failed_total"] == 0
    assert _lines(out / "failures.jsonl") == []


# ---------------------------------------------------------------- one digest per step
def test_editing_one_prompt_redoes_only_the_steps_that_used_it(tmp_path: Path, fake_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 10)
    srv = fake_server(answers=answers)
    cfg = build_config(inp, tmp_path / "out", srv.base_url)
    first = build(cfg)
    prompts = tmp_path / "prompts"
    shutil.copytree(steps.PROMPT_DIR, prompts)
    with (prompts / "revise.txt").open("a") as fh:
        fh.write("\nBe brief.\n")
    monkeypatch.setattr(steps, "PROMPT_DIR", prompts)
    steps.load_prompt.cache_clear()
    try:
        again = build(cfg)
    finally:
        steps.load_prompt.cache_clear()
    assert again["this_run"]["teacher"]["requests"] == 0
    assert again["this_run"]["policy"]["requests"] == first["revisions"]
    assert again["kept"] == first["kept"]


# ---------------------------------------------------------------- corrective turn
def test_non_json_reflection_is_retried_with_a_corrective_turn(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 10)
    # Never JSON to the same request; always JSON once the builder says what was wrong.
    srv = fake_server(answers=answers, bad_json_rate=1.0, json_on_correction=True)
    summary = build(build_config(inp, tmp_path / "out", srv.base_url, json_retries=1))
    assert summary["failed_total"] == 0 and summary["reflections"] > 0
    assert summary["this_run"]["teacher"]["completions"] == 2 * summary["reflections"]


# ---------------------------------------------------------------- outages
@pytest.mark.parametrize(
    "headers, expected",
    [
        pytest.param({"retry-after": "7"}, 7.0, id="delta-seconds"),
        pytest.param({"retry-after-ms": "250"}, 0.25, id="ms"),
        pytest.param({"retry-after": email.utils.formatdate(1_000_030, usegmt=True)}, 30.0, id="http-date"),
        pytest.param({"retry-after": email.utils.formatdate(999_000, usegmt=True)}, 0.0, id="http-date-in-the-past"),
        pytest.param({"retry-after": "soon"}, None, id="garbage"),
    ],
)
def test_retry_after_forms(headers: dict[str, str], expected: float | None) -> None:
    assert _retry_after_seconds(headers, now=1_000_000.0) == expected


def test_circuit_breaker_opens_when_most_tries_fail() -> None:
    br = CircuitBreaker(window=4, threshold=0.75, cooldown=10.0, cooldown_max=40.0)
    for ok in (True, False, False, True):
        br.record(ok)
    assert not br.is_open
    for ok in (False, False, False):
        br.record(ok)
    assert br.is_open and br.tripped and br.trips == 1 and br.cooldown == 20.0
    br.record(False)  # a try sent before the trip changes nothing
    assert br.trips == 1
    br.open_until = 0.0  # the cooldown is over: half-open, a failed probe reopens it at once
    br.record(False)
    assert br.is_open and br.trips == 2 and br.cooldown == 40.0
    br.open_until = 0.0
    br.record(True)  # a probe succeeded: closed
    assert not br.is_open and not br.tripped and br.cooldown == 10.0


def test_an_outage_pauses_admission_and_leaves_samples_retryable(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 12)
    srv = fake_server(answers=answers, fault_rate=1.0, faults=("500",))
    ep = {"max_retries": 1, "breaker_window": 4, "breaker_cooldown": 0.3, "concurrency": 2}
    cfg = build_config(inp, tmp_path / "out", srv.base_url, endpoint=ep, max_in_flight=2)
    down = build(cfg)
    assert down["this_run"]["policy"]["breaker_trips"] >= 1 and down["paused_for_outage_seconds"] > 0
    assert down["failed_total"] > 0
    assert all(f["transient"] for f in _lines(tmp_path / "out" / "failures.jsonl"))
    # the endpoint is back: a plain rerun (no --retry-failed) finishes every sample
    srv.script.fault_rate = 0.0
    up = build(cfg)
    assert up["failed_total"] == 0 and up["kept"] + up["dropped_total"] == 12
    assert _lines(tmp_path / "out" / "failures.jsonl") == []
