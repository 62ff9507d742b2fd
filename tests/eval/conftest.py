"""Fixtures of the eval tests; the look-alike builders live in ``eval_lookalikes.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from eval_lookalikes import write_mathverse, write_mathvision, write_mathvista, write_mmmu_pro
from srpo_eval.convert import convert


@pytest.fixture
def releases(tmp_path: Path) -> dict[str, Path]:
    """Look-alike local copies of the four releases; returns the --input of each."""
    std, vis = write_mmmu_pro(tmp_path)
    return {
        "mathvista": write_mathvista(tmp_path),
        "mathverse": write_mathverse(tmp_path),
        "mathvision": write_mathvision(tmp_path),
        "mmmu_pro": std,
        "mmmu_pro_vision": vis,
        "root": tmp_path,
    }


@pytest.fixture
def eval_parquet(releases, tmp_path) -> Path:
    """MMMU-Pro look-alike (first row has two images) converted to an eval parquet."""
    out = tmp_path / "mmmu.parquet"
    convert("mmmu_pro", releases["mmmu_pro"], out)
    return out
