"""The happy path against a real OpenAI-compatible server: ``transformers serve`` with the tiny
random-weight Qwen2.5-VL on CPU, offline, images sent as base64 data URLs.

Random weights write no ``<think>``/``<answer>`` blocks and no JSON, so nothing passes the filter:
the test checks the plumbing (requests reach the model with their image, completions and token
usage come back) and that the counts add up.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from builder_helpers import build_config, make_question_set
from srpo_data.builder.config import EndpointConfig
from srpo_data.builder.run import build

#: Seconds to wait for ``transformers serve`` to load the tiny model.
STARTUP_TIMEOUT = 180


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_tiny_qwen(tiny_qwen_dir: Path, tmp_path_factory) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent))
    assert exe is not None, "the transformers CLI is missing from the venv"
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HOME=str(log.parent / "hf"))
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [exe, "serve", str(tiny_qwen_dir), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
             "--dtype", "float32", "--default-seed", "0"],
            stdout=fh, stderr=subprocess.STDOUT, env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert proc.poll() is None, f"transformers serve exited: {log.read_text()[-2000:]}"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"transformers serve did not start: {log.read_text()[-2000:]}"
            time.sleep(0.5)
        yield f"{url}/v1", str(tiny_qwen_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _tiny(url: str, model: str) -> dict[str, object]:
    return dict(base_url=url, model=model, timeout=60.0, max_retries=2, concurrency=2, max_tokens=24, temperature=1.0)


def _expected_prompt_tokens(model: str, data: Path, i: int) -> int:
    import json

    from PIL import Image
    from transformers import AutoProcessor

    from srpo_data.builder.steps import attempt_messages

    rec = json.loads((data / "in.jsonl").read_text().splitlines()[i])
    text = attempt_messages(rec["question"], ["x"])[0]["content"][-1]["text"]
    image = Image.open(data / rec["images"][0]).convert("RGB")
    processor = AutoProcessor.from_pretrained(model)
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]
    ids = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    return len(ids[0]) if isinstance(ids[0], list) else len(ids)


@pytest.mark.slow
def test_policy_and_teacher_on_transformers_serve(tmp_path: Path, served_tiny_qwen) -> None:  # type: ignore[no-untyped-def]
    url, model = served_tiny_qwen
    inp, _ = make_question_set(tmp_path / "data", 3)
    cfg = build_config(inp, tmp_path / "out", url, endpoint=_tiny(url, model))
    summary = build(cfg)
    assert summary["complete"]
    assert summary["samples_in"] == summary["attempts"] == 3
    # Every sample reached an end, and each drop names the attempt's problem.
    assert summary["kept"] + summary["dropped_total"] + summary["failed_total"] == 3
    assert summary["kept"] == 0
    assert all(reason.startswith("attempt_") for reason in summary["dropped"])
    policy = summary["this_run"]["policy"]
    assert policy["completions"] == 3 and policy["errors"] == {}
    assert policy["completion_tokens"] > 0
    # The server counted exactly the tokens of our prompt with its image (so the image arrived).
    assert summary["tokens"]["policy"]["prompt_tokens"] == sum(_expected_prompt_tokens(model, inp.parent, i) for i in range(3))
    # A rerun replays the stored attempts: no new request.
    again = build(cfg)
    assert again["this_run"]["policy"]["requests"] == 0
    assert again["dropped"] == summary["dropped"]


@pytest.mark.slow
def test_teacher_on_transformers_serve_fails_json_with_a_reason(tmp_path: Path, served_tiny_qwen, fake_server) -> None:  # type: ignore[no-untyped-def]
    """A scripted policy reaches the reflection step; the real (random) teacher never writes JSON."""
    url, model = served_tiny_qwen
    inp, answers = make_question_set(tmp_path / "data", 4)
    policy_srv = fake_server(answers=answers, bad_format_rate=0.0)
    cfg = build_config(inp, tmp_path / "out", policy_srv.base_url, json_retries=1)
    cfg = cfg.model_copy(update={"teacher": EndpointConfig(**_tiny(url, model))})  # type: ignore[arg-type]
    summary = build(cfg)
    assert summary["complete"] and summary["attempts"] == 4
    assert summary["failed"] == {"reflection:teacher_bad_json": 4}
    teacher = summary["this_run"]["teacher"]
    assert teacher["completions"] == 4 * 2  # the first try and one retry per sample
    assert teacher["prompt_tokens"] > 0
    failures = (tmp_path / "out" / "failures.jsonl").read_text().splitlines()
    assert len(failures) == 4
