"""End to end: each source layout -> parquet -> verl's own RLHFDataset with the tiny model."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from srpo_data.rl import prepare_rl
from srpo_data.rl.prepare_rl import EXIT_OK, EXIT_TOO_MANY_DROPPED, EXIT_USAGE, report_path
from srpo_reward.prompts import render_prompt

from data_lookalikes import (
    bomb_png,
    load_with_verl,
    make_generic_csv,
    make_generic_jsonl,
    make_geometry3k,
    make_geometry3k_disk,
    make_mmk12,
    make_srpo,
    make_thinklite,
    make_virl39k,
    png_bytes,
)

# id, source, builder, extra CLI args, expected rows, expected ground truths, expected data_source
LAYOUTS = [
    pytest.param(
        "geometry3k", make_geometry3k, ["--split", "train"], 3, ["3", "4\\sqrt{2}", "12.5"], "hiyouga/geometry3k",
        id="geometry3k-hub-parquet-folder",
    ),
    pytest.param(
        "geometry3k", make_geometry3k_disk, ["--split", "test"], 1, ["5"], "hiyouga/geometry3k",
        id="geometry3k-save_to_disk-jpeg",
    ),
    pytest.param("mmk12", make_mmk12, [], 2, ["2", "B"], "FanqingM/MMK12", id="mmk12-parquet-file"),
    pytest.param("srpo", make_srpo, [], 3, ["0", "2", "4"], "srpo_rl", id="srpo-mm-eureka-jsonl"),
    pytest.param("virl39k", make_virl39k, [], 3, ["3", "B", "30^\\circ"], "TIGER-Lab/ViRL39K", id="virl39k-multi-image"),
    pytest.param("thinklite", make_thinklite, [], 2, ["2", "40"], "russwang/ThinkLite-VL", id="thinklite"),
    pytest.param("generic", make_generic_jsonl, [], 2, ["24", "A"], "generic", id="generic-jsonl"),
    pytest.param(
        "generic",
        make_generic_csv,
        ["--question-key", "prompt_text", "--answer-key", "gold", "--image-key", "picture", "--id-key", "qid"],
        1,
        ["5"],
        "generic",
        id="generic-csv-custom-columns",
    ),
]


def _run(source: str, input_path: Path, output: Path, *extra: str) -> int:
    return prepare_rl.main(["--source", source, "--input", str(input_path), "--output", str(output), "--no-progress", *extra])


def _sizes(images: list[dict]) -> list[tuple[int, int]]:
    return [Image.open(io.BytesIO(img["bytes"])).size for img in images]


@pytest.mark.parametrize("source,builder,args,n_rows,golds,data_source", LAYOUTS)
def test_layout_converts_and_loads_in_verl(
    tmp_path, tiny_qwen_dir, tiny_processor, length_counter, source, builder, args, n_rows, golds, data_source
):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    input_path = builder(tmp_path / "in")
    out = tmp_path / "out" / "rl.parquet"
    assert _run(source, input_path, out, *args) == EXIT_OK

    rows = pq.read_table(out).to_pylist()
    assert len(rows) == n_rows
    assert [r["reward_model"] for r in rows] == [{"style": "rule", "ground_truth": g} for g in golds]
    for i, row in enumerate(rows):
        assert row["data_source"] == data_source
        assert row["ability"] == "math"
        assert row["extra_info"]["index"] == i
        assert row["extra_info"]["split"] == (args[1] if args[:1] == ["--split"] else "train")
        content = row["prompt"][0]["content"]
        n_images = len(row["images"])
        assert n_images >= 1
        assert content.startswith("<image>" * n_images)
        assert content.count("<image>") == n_images
        assert content[len("<image>") * n_images :] == render_prompt(row["extra_info"]["question"])
        for img in row["images"]:
            assert Image.open(io.BytesIO(img["bytes"])).format in ("PNG", "JPEG")
    assert json.loads("[" + ",".join(report_path(out).read_text().splitlines()) + "]") == []

    dataset, config = load_with_verl(out, tiny_qwen_dir, tmp_path / "verl_cache")
    assert len(dataset) == n_rows  # verl's own length filter drops rows it cannot process
    image_pad = tiny_processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    for i in range(len(dataset)):
        item = dataset[i]
        messages = item["raw_prompt"]
        images, _, _ = RLHFDataset._process_multi_modal_info(messages, 14, config)
        text = tiny_processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = tiny_processor(text=[text], images=images, return_tensors="pt")
        per_image = [int(g.prod()) // 4 for g in inputs["image_grid_thw"]]
        sizes = _sizes(rows[i]["images"])
        assert per_image == [length_counter.image_tokens(w, h) for w, h in sizes]
        assert int((inputs["input_ids"] == image_pad).sum()) == sum(per_image)
        assert inputs["input_ids"].shape[1] == length_counter.count(rows[i]["prompt"][0]["content"], sizes)


def test_virl39k_keeps_its_metadata(tmp_path):
    out = tmp_path / "v.parquet"
    assert _run("virl39k", make_virl39k(tmp_path / "in"), out) == EXIT_OK
    rows = pq.read_table(out).to_pylist()
    assert rows[1]["extra_info"]["id"] == "q-1"
    assert rows[1]["extra_info"]["category"] == "Tables/Diagrams/Charts"
    assert rows[1]["extra_info"]["PassRate_32BTrained"] == "0.25"
    assert rows[1]["extra_info"]["PassRate_7BBase"] is None
    assert rows[1]["extra_info"]["answer"] == "\\boxed{B}"  # raw answer kept beside the unwrapped gold
    assert _sizes(rows[1]["images"]) == [(448, 448), (300, 200)]  # order of the image list kept


def test_limit_and_split_recorded(tmp_path):
    out = tmp_path / "g.parquet"
    assert _run("geometry3k", make_geometry3k(tmp_path / "in"), out, "--split", "train", "--limit", "2") == EXIT_OK
    rows = pq.read_table(out).to_pylist()
    assert [r["extra_info"]["index"] for r in rows] == [0, 1]


def test_max_pixels_downscales(tmp_path):
    out = tmp_path / "g.parquet"
    assert _run("geometry3k", make_geometry3k(tmp_path / "in"), out, "--split", "train", "--max-pixels", "10000") == EXIT_OK
    for row in pq.read_table(out).to_pylist():
        for w, h in _sizes(row["images"]):
            assert w * h <= 10000


def test_workers_give_same_output(tmp_path):
    input_path = make_virl39k(tmp_path / "in")
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    assert _run("virl39k", input_path, one) == EXIT_OK
    assert _run("virl39k", input_path, two, "--workers", "2") == EXIT_OK
    assert pq.read_table(one).to_pylist() == pq.read_table(two).to_pylist()


# --- prompt length against the tiny model ----------------------------------------------


def _text_only_tokens(counter, out: Path) -> int:
    """Prompt tokens of the first row without its image pads."""
    row = pq.read_table(out).to_pylist()[0]
    n_images = len(row["images"])
    return counter.text_tokens(row["prompt"][0]["content"], n_images) - n_images


@pytest.mark.parametrize(
    "mode,expected_written,expected_report",
    [
        pytest.param("drop", 1, [("dropped", "prompt_too_long")], id="drop"),
        pytest.param("resize", 2, [("resized", None)], id="resize"),
    ],
)
def test_max_prompt_length(tmp_path, tiny_qwen_dir, length_counter, mode, expected_written, expected_report):
    """100x80 (12 image tokens) fits, 448x448 (256 tokens) does not, at text + 100 tokens."""
    input_path = make_geometry3k(tmp_path / "in")
    probe = tmp_path / "probe.parquet"
    assert _run("geometry3k", input_path, probe, "--split", "train", "--limit", "2") == EXIT_OK
    budget = _text_only_tokens(length_counter, probe) + 100

    out = tmp_path / "rl.parquet"
    code = _run(
        "geometry3k", input_path, out, "--split", "train", "--limit", "2",
        "--max-prompt-length", str(budget), "--model", str(tiny_qwen_dir), "--on-too-long", mode,
    )
    assert code == EXIT_OK
    rows = pq.read_table(out).to_pylist()
    assert len(rows) == expected_written
    report = [json.loads(line) for line in report_path(out).read_text().splitlines()]
    assert [(r["action"], r.get("reason")) for r in report] == expected_report
    assert report[0]["index"] == 1
    for row in rows:
        assert length_counter.count(row["prompt"][0]["content"], _sizes(row["images"])) <= budget
    dataset, _ = load_with_verl(out, tiny_qwen_dir, tmp_path / "cache", max_prompt_length=budget)
    assert len(dataset) == expected_written  # verl would filter nothing more


# --- bad input ---------------------------------------------------------------------------


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def generic_dir(tmp_path):

    root = tmp_path / "set"
    (root / "img").mkdir(parents=True)
    (root / "img" / "ok.png").write_bytes(png_bytes((64, 48)))
    full = png_bytes((200, 200))
    (root / "img" / "truncated.png").write_bytes(full[: len(full) // 2])
    (root / "img" / "garbage.png").write_bytes(b"this is not an image at all")
    (root / "img" / "bomb.png").write_bytes(bomb_png())
    (root / "img" / "big.png").write_bytes(png_bytes((300, 300)))
    (tmp_path / "outside.png").write_bytes(png_bytes((10, 10)))
    (root / "img" / "link.png").symlink_to(tmp_path / "outside.png")
    return root


GOOD = {"id": "good", "question": "What is shown?", "answer": "7", "image": "img/ok.png"}

# id, bad row (merged over GOOD), extra CLI args, expected skip reason
BAD_ROWS = [
    pytest.param({"image": "img/missing.png"}, [], "missing_image", id="missing-file"),
    pytest.param({"image": "img/truncated.png"}, [], "unreadable_image", id="truncated-png"),
    pytest.param({"image": "img/garbage.png"}, [], "unreadable_image", id="not-an-image"),
    pytest.param({"image": "img/bomb.png"}, [], "image_too_large", id="decompression-bomb-header"),
    pytest.param({"image": "img/big.png"}, ["--pixel-limit", "50000"], "image_too_large", id="over-user-pixel-limit"),
    pytest.param({"image": "../outside.png"}, [], "path_escape", id="dotdot-escape"),
    pytest.param({"image": "__ABS_OUTSIDE__"}, [], "path_escape", id="absolute-outside"),
    pytest.param({"image": "img/link.png"}, [], "path_escape", id="symlink-outside"),
    pytest.param({"answer": None}, [], "missing_answer", id="answer-null"),
    pytest.param({"answer": "   "}, [], "missing_answer", id="answer-blank"),
    pytest.param({"answer": 5}, [], "non_string_answer", id="answer-number"),
    pytest.param({"question": ""}, [], "empty_question", id="question-empty"),
    pytest.param({"question": "<image>"}, [], "empty_question", id="question-only-placeholder"),
    pytest.param({"question": "<image><image>Two?"}, [], "image_placeholder_mismatch", id="placeholder-mismatch"),
    pytest.param({"image": None, "images": [None]}, [], "missing_image", id="null-image-entry"),
]


@pytest.mark.parametrize("bad,args,reason", BAD_ROWS)
def test_bad_row_is_skipped_and_reported(tmp_path, generic_dir, bad, args, reason, capsys):
    bad_row = {**GOOD, "id": "bad", **bad}
    if bad_row.get("image") == "__ABS_OUTSIDE__":
        bad_row["image"] = str(tmp_path / "outside.png")
    if "images" in bad:
        bad_row.pop("image")
    data = _write_jsonl(generic_dir / "data.jsonl", [GOOD, bad_row])
    out = tmp_path / "out.parquet"
    assert _run("generic", data, out, *args) == EXIT_OK
    rows = pq.read_table(out).to_pylist()
    assert [r["extra_info"]["id"] for r in rows] == ["good"]
    report = [json.loads(line) for line in report_path(out).read_text().splitlines()]
    assert len(report) == 1
    assert report[0]["reason"] == reason
    assert report[0]["index"] == 1
    assert report[0]["id"] == "bad"
    assert report[0]["action"] == "dropped"
    assert f"{reason} 1" in capsys.readouterr().out  # closing summary counts it


def test_all_rows_dropped_is_an_error(tmp_path, generic_dir):
    data = _write_jsonl(generic_dir / "data.jsonl", [{**GOOD, "answer": None}, {**GOOD, "image": "img/missing.png"}])
    out = tmp_path / "out.parquet"
    assert _run("generic", data, out) == EXIT_TOO_MANY_DROPPED
    assert not out.exists()
    assert len(report_path(out).read_text().splitlines()) == 2


@pytest.mark.parametrize(
    "share,expected",
    [
        pytest.param("0.25", EXIT_TOO_MANY_DROPPED, id="half-dropped-over-quarter"),
        pytest.param("0.5", EXIT_OK, id="half-dropped-at-half"),
        pytest.param(None, EXIT_OK, id="default-allows-some"),
    ],
)
def test_max_drop_share(tmp_path, generic_dir, share, expected):
    data = _write_jsonl(generic_dir / "data.jsonl", [GOOD, {**GOOD, "answer": None}])
    out = tmp_path / "out.parquet"
    args = [] if share is None else ["--max-drop-share", share]
    assert _run("generic", data, out, *args) == expected
    assert out.exists() == (expected == EXIT_OK)


def test_existing_output_needs_overwrite(tmp_path, generic_dir):
    data = _write_jsonl(generic_dir / "data.jsonl", [GOOD])
    out = tmp_path / "out.parquet"
    out.write_bytes(b"precious")
    assert _run("generic", data, out) == EXIT_USAGE
    assert out.read_bytes() == b"precious"
    assert _run("generic", data, out, "--overwrite") == EXIT_OK
    assert pq.read_table(out).num_rows == 1


def test_interrupted_run_leaves_no_file(tmp_path, generic_dir, monkeypatch):
    data = _write_jsonl(generic_dir / "data.jsonl", [GOOD] * 200)
    out = tmp_path / "out" / "out.parquet"
    calls = {"n": 0}
    real = prepare_rl._convert_one

    def flaky(item):
        calls["n"] += 1
        if calls["n"] == 150:
            raise KeyboardInterrupt
        return real(item)

    monkeypatch.setattr(prepare_rl, "_convert_one", flaky)
    with pytest.raises(KeyboardInterrupt):
        _run("generic", data, out)
    assert calls["n"] == 150  # the writer had already flushed row groups
    assert list(out.parent.iterdir()) == []  # no output, no report, no temp file


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--source", "nope"], id="unknown-source"),
        pytest.param(["--source", "mmk12", "--question-key", "q"], id="column-flag-on-fixed-layout"),
        pytest.param(["--source", "generic", "--max-prompt-length", "100"], id="length-without-model"),
        pytest.param(["--source", "generic", "--max-drop-share", "1.5"], id="share-out-of-range"),
    ],
)
def test_usage_errors_exit_2(tmp_path, generic_dir, argv):
    data = _write_jsonl(generic_dir / "data.jsonl", [GOOD])
    with pytest.raises(SystemExit) as exc:
        prepare_rl.main([*argv, "--input", str(data), "--output", str(tmp_path / "o.parquet")])
    assert exc.value.code == EXIT_USAGE
    assert not (tmp_path / "o.parquet").exists()


def test_missing_input_exits_2(tmp_path, capsys):
    assert _run("generic", tmp_path / "nope.jsonl", tmp_path / "o.parquet") == EXIT_USAGE
    assert "does not exist" in capsys.readouterr().err
