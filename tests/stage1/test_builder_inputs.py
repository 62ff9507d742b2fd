"""Input rows: JSONL with an image folder, bad rows with reasons, duplicates, image URLs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from builder_helpers import build_config, make_question_set
from srpo_data.stage1.builder.inputs import BadRow, Sample, iter_samples
from srpo_data.stage1.builder.pipeline import image_urls
from srpo_data.stage1.builder.run import build


def _write(tmp_path: Path, rows: list[object]) -> Path:
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "ok.png")
    (tmp_path / "outside.png").write_bytes(b"")
    path = tmp_path / "sub" / "in.jsonl"
    path.parent.mkdir()
    (path.parent / "ok.png").write_bytes((tmp_path / "ok.png").read_bytes())
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize(
    "row, reason",
    [
        pytest.param({"question": "q?", "answer": "3", "images": ["ok.png"]}, None, id="ok"),
        pytest.param({"question": "q?", "answer": 3, "image": "ok.png"}, None, id="numeric-answer-single-image"),
        pytest.param({"question": "", "answer": "3", "images": ["ok.png"]}, "missing_question", id="empty-question"),
        pytest.param({"question": "q?", "images": ["ok.png"]}, "missing_ground_truth", id="no-answer"),
        pytest.param({"question": "q?", "answer": "3", "images": ["nope.png"]}, "missing_image", id="missing-image"),
        pytest.param({"question": "q?", "answer": "3", "images": ["../outside.png"]}, "image_outside_folder", id="path-escape"),
        pytest.param({"question": "q?", "answer": "3", "images": [3]}, "bad_image_field", id="image-not-a-path"),
        pytest.param("{not json", "bad_json", id="broken-line"),
    ],
)
def test_jsonl_rows(tmp_path: Path, row: object, reason: str | None) -> None:
    (item,) = list(iter_samples(_write(tmp_path, [row])))
    if reason is None:
        assert isinstance(item, Sample) and len(item.images) == 1
        assert item.sft_prompt[0]["content"].startswith("<image>")
    else:
        assert isinstance(item, BadRow) and item.reason == reason


def test_sample_id_is_content_based(tmp_path: Path) -> None:
    path = _write(tmp_path, [{"question": "q?", "answer": "3", "images": ["ok.png"]}, {"id": "other", "question": "q?", "answer": "3", "images": ["ok.png"]},
                             {"question": "q2?", "answer": "3", "images": ["ok.png"]}])
    a, b, c = list(iter_samples(path))
    assert isinstance(a, Sample) and isinstance(b, Sample) and isinstance(c, Sample)
    assert a.sample_id == b.sample_id != c.sample_id


@pytest.mark.parametrize(
    "prefix, expected_start",
    [
        pytest.param(None, "data:image/png;base64,", id="base64-data-url"),
        pytest.param("https://cdn.example/imgs/", "https://cdn.example/imgs/ok.png", id="url-prefix"),
    ],
)
def test_image_urls(tmp_path: Path, prefix: str | None, expected_start: str) -> None:
    (item,) = list(iter_samples(_write(tmp_path, [{"question": "q?", "answer": "3", "images": ["ok.png"]}])))
    assert isinstance(item, Sample)
    (url,) = image_urls(item, prefix)
    assert url.startswith(expected_start)


def test_bad_rows_and_duplicates_are_counted(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    inp, answers = make_question_set(tmp_path / "data", 4)
    lines = inp.read_text().splitlines()
    inp.write_text("\n".join([*lines, lines[0], json.dumps({"question": "q", "answer": ""})]) + "\n")
    srv = fake_server(answers=answers)
    summary = build(build_config(inp, tmp_path / "out", srv.base_url))
    assert summary["samples_in"] == 6
    assert summary["duplicates"] == 1
    assert summary["bad_input"] == {"missing_ground_truth": 1}
    assert summary["attempts"] == 4


@pytest.mark.parametrize(
    "image, reason",
    [
        pytest.param({"bytes": None, "path": "ok.png"}, None, id="path-inside-folder"),
        pytest.param({"bytes": None, "path": "nope.png"}, "missing_image", id="missing-path"),
        pytest.param({"bytes": None, "path": "../outside.png"}, "image_outside_folder", id="path-escape"),
    ],
)
def test_rl_parquet_image_paths(tmp_path: Path, image: dict, reason: str | None) -> None:
    import pandas as pd

    _write(tmp_path, [])  # ok.png in tmp_path/sub, outside.png in tmp_path
    rec = {
        "data_source": "t",
        "prompt": [{"role": "user", "content": "<image>q?"}],
        "images": [image],
        "reward_model": {"style": "rule", "ground_truth": "3"},
        "extra_info": {"question": "q?", "index": 0},
    }
    path = tmp_path / "sub" / "rl.parquet"
    pd.DataFrame([rec]).to_parquet(path)
    (item,) = list(iter_samples(path))
    if reason is None:
        assert isinstance(item, Sample) and item.images[0] == (tmp_path / "ok.png").read_bytes()
    else:
        assert isinstance(item, BadRow) and item.reason == reason
