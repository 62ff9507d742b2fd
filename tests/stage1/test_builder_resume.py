"""Kill and resume: the builder as a subprocess, SIGKILLed at random moments, then run to the end.

The final outputs must equal those of an uninterrupted run, no stored call may be made again,
and the step store must hold each key once.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from builder_helpers import make_question_set

N = 16
KILLS = 6
COUNTS = ("samples_in", "attempts", "reflections", "revisions", "kept", "kept_first_right", "kept_first_wrong", "dropped", "failed")


def _cmd(inp: Path, out: Path, url: str) -> list[str]:
    ep = f"{{base_url: '{url}', model: fake, concurrency: 4, timeout: 5, backoff_initial: 0.05}}"
    return [sys.executable, "-m", "srpo_data.build_reflections", "--input", str(inp), "--out", str(out),
            "--policy", ep, "--teacher", ep, "--no-progress"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _stored_response_ids(out: Path) -> set[str]:
    path = out / "steps.jsonl"
    if not path.exists():
        return set()
    ids = set()
    for line in path.read_bytes().splitlines():
        try:
            ids.add(json.loads(line)["response_id"].removeprefix("chatcmpl-"))
        except (ValueError, KeyError):
            pass  # a torn last line
    return ids


def _final_outputs(out: Path) -> dict[str, object]:
    summary = json.loads((out / "summary.json").read_text())
    return {
        "counts": {k: summary[k] for k in COUNTS},
        "parquet": (out / "sft.parquet").read_bytes(),
        "sharegpt": (out / "sharegpt.json").read_text(),
        "dataset_info": (out / "dataset_info.json").read_text(),
        "images": sorted(p.name for p in (out / "images").iterdir()),
    }


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", N)
    # Fixed latency so that a run lasts long enough to be killed in the middle of its calls.
    srv = fake_server(answers=answers, delay=0.15)
    env = _env()

    ref = subprocess.run(_cmd(inp, tmp_path / "ref", srv.base_url), env=env, capture_output=True, text=True, timeout=120)
    assert ref.returncode == 0, ref.stderr
    expected = _final_outputs(tmp_path / "ref")
    assert expected["counts"]["kept"] > 0  # type: ignore[index]

    out = tmp_path / "killed"
    rng = random.Random(1234)
    kills = 0
    for _ in range(KILLS):
        stored_before = _stored_response_ids(out)
        n_log = len(srv.log)
        # Kill after a random number of newly stored steps plus a random jitter, so that kills
        # land between calls, during store writes and during output writing alike.
        target = len(stored_before) + rng.randint(1, 10)
        jitter = rng.uniform(0.0, 0.2)
        proc = subprocess.Popen(_cmd(inp, out, srv.base_url), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and len(_stored_response_ids(out)) < target and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(jitter)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        # No call whose result was stored before this start was made again.
        asked = {digest for _, digest, _, _ in srv.log[n_log:]}
        assert not (asked & stored_before)
    assert kills >= 3, "too few runs were actually killed to test anything"

    stored_before = _stored_response_ids(out)
    n_log = len(srv.log)
    final = subprocess.run(_cmd(inp, out, srv.base_url), env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert not ({d for _, d, _, _ in srv.log[n_log:]} & stored_before)
    assert _final_outputs(out) == expected

    lines = (out / "steps.jsonl").read_bytes().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert len(keys) == len(set(keys)), "a step was stored twice"
    ref_keys = {json.loads(line)["key"] for line in (tmp_path / "ref" / "steps.jsonl").read_bytes().splitlines()}
    assert set(keys) == ref_keys


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_a_rerun_from_a_yaml_config_finishes(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", N)
    srv = fake_server(answers=answers, delay=0.2)
    ref = subprocess.run(_cmd(inp, tmp_path / "ref", srv.base_url), env=_env(), capture_output=True, text=True, timeout=120)
    assert ref.returncode == 0, ref.stderr

    out = tmp_path / "out"
    config = tmp_path / "run.yaml"
    ep = {"base_url": srv.base_url, "model": "fake", "concurrency": 4, "timeout": 5, "backoff_initial": 0.05}
    config.write_text(json.dumps({"input": str(inp), "out": str(out), "policy": ep, "teacher": ep, "progress": False}))
    cmd = [sys.executable, "-m", "srpo_data.build_reflections", "--config", str(config)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(_stored_response_ids(out)) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] and summary["outputs"] is None
    assert summary["not_finished"] > 0
    # Every stored line is whole: the calls in flight were finished and flushed.
    raw = (out / "steps.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    assert all(json.loads(line) for line in raw.splitlines())
    assert not (out / "sft.parquet").exists()

    again = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert _final_outputs(out) == _final_outputs(tmp_path / "ref")
