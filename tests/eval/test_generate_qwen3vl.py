"""srpo_eval.generate on the tiny Qwen3-VL (the hf backend)."""

from __future__ import annotations

import json
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
