"""The stage-1 releases in their published layouts (look-alikes) to builder rows, and a build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from builder_helpers import build_config
from srpo_data.builder.inputs import BadRow, Sample, iter_samples
from srpo_data.builder.run import build
from srpo_data.stage1_sources import SourceSkip, iter_source, llava_cot_row, mathv360k_row, mulberry_row, sample_ids


def _img(path: Path, i: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (28, 28), (i * 31 % 256, 90, 10)).save(path)


def _gt(i: int) -> str:
    return "ABCDE"[i % 5] if i % 2 else str(20 + i)


def mulberry_release(root: Path, n: int) -> Path:
    """``mulberry_sft.json`` (LLaMA-Factory sharegpt) and images under the unpacked tar."""
    recs = []
    for i in range(n):
        rel = f"mulberry_images/geoqa/{i}.png"
        _img(root / rel, i)
        recs.append({
            "messages": [
                {"role": "user", "content": f"<image>[q:m{i}] What is the measure in figure {i}?"},
                {"role": "assistant", "content": f"### Image Description:\nA figure.\n\n### Rationales:\nAngles.\n\n"
                                                  f"### Let's think step by step.\n\n### Step 1:\nLook.\n\n### The final answer is: {_gt(i)}"},
            ],
            "images": [rel],
        })
    (root / "mulberry_sft.json").write_text(json.dumps(recs, indent=1))
    return root / "mulberry_sft.json"


def llava_cot_release(root: Path, n: int) -> Path:
    """``train.jsonl`` (``id``, ``image``, ``conversations``) and the unzipped image folder."""
    with (root / "train.jsonl").open("w") as fh:
        for i in range(n):
            rel = f"chartqa/train/png/{i}.png"
            _img(root / rel, i)
            answer = (f"<SUMMARY>I will read the chart.</SUMMARY>\n\n<CAPTION>A bar chart.</CAPTION>\n\n"
                      f"<REASONING>The bar shows it.</REASONING>\n\n<CONCLUSION>{_gt(i)}</CONCLUSION>")
            rec = {"id": f"chartqa_{i}", "image": rel,
                   "conversations": [{"from": "human", "value": f"[q:l{i}] Which value is highest? ({i})"},
                                     {"from": "gpt", "value": answer}]}
            fh.write(json.dumps(rec) + "\n")
    return root / "train.jsonl"


def mathv360k_release(root: Path, n: int) -> Path:
    """``train_samples_all_tuning.json`` (``id``, ``image``, ``conversations``) beside ``data_images/``."""
    recs = []
    for i in range(n):
        rel = f"TabMWP/images/{i}.png"
        _img(root / "data_images" / rel, i)
        recs.append({"id": f"tabmwp_{i}", "image": rel,
                     "conversations": [{"from": "human", "value": f"<image>\n[q:v{i}] How many are there? ({i})"},
                                       {"from": "gpt", "value": _gt(i)}]})
    (root / "train_samples_all_tuning.json").write_text(json.dumps(recs))
    return root / "train_samples_all_tuning.json"


RELEASES = {
    "mulberry": (mulberry_release, lambda root: root, "m"),
    "llava_cot": (llava_cot_release, lambda root: root, "l"),
    "mathv360k": (mathv360k_release, lambda root: root / "data_images", "v"),
}


@pytest.mark.parametrize(
    "reader, rec, expected",
    [
        pytest.param(mulberry_row, {"messages": [{"role": "user", "content": "<image>Q?"}, {"role": "assistant", "content": "s\n### The final answer is: 12"}], "images": ["a.png"]},
                     {"question": "Q?", "answer": "12", "images": ["a.png"]}, id="mulberry"),
        pytest.param(mulberry_row, {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "no final line"}], "images": []},
                     "no_final_answer", id="mulberry-no-final-answer"),
        pytest.param(mulberry_row, {"conversations": [], "images": []}, "bad_layout", id="mulberry-wrong-layout"),
        pytest.param(llava_cot_row, {"id": "x", "image": "a.png", "conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "<SUMMARY>s</SUMMARY><CONCLUSION> B </CONCLUSION>"}]},
                     {"question": "Q?", "answer": "B", "images": ["a.png"], "id": "x"}, id="llava-cot"),
        pytest.param(llava_cot_row, {"id": "x", "image": "a.png", "conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "just text"}]},
                     "no_conclusion", id="llava-cot-no-conclusion"),
        pytest.param(mathv360k_row, {"id": "y", "image": "IconQA/images/1.png", "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "7"}]},
                     {"question": "Q?", "answer": "7", "images": ["IconQA/images/1.png"], "id": "y"}, id="mathv360k"),
        pytest.param(mathv360k_row, {"id": "y", "conversations": [{"from": "human", "value": "Q?"}]}, "bad_layout", id="mathv360k-no-image"),
        pytest.param(mathv360k_row, {"id": "y", "image": "a.png", "conversations": [{"from": "human", "value": "Q?"}]}, "no_question_answer_pair", id="mathv360k-no-answer"),
    ],
)
def test_reader_rows(reader: Any, rec: dict[str, Any], expected: dict[str, Any] | str) -> None:
    got = reader(rec, 3)
    if isinstance(expected, str):
        assert isinstance(got, SourceSkip) and got.reason == expected
    else:
        assert isinstance(got, dict)
        assert {k: got[k] for k in expected} == expected


@pytest.mark.parametrize("source", sorted(RELEASES))
def test_release_look_alike_builds(tmp_path: Path, fake_server, source: str) -> None:  # type: ignore[no-untyped-def]
    make, image_root, tag = RELEASES[source]
    root = tmp_path / source
    root.mkdir()
    path = make(root, 8)
    items = list(iter_samples(path, image_dir=image_root(root), input_format=source))
    assert len(items) == 8 and all(isinstance(s, Sample) for s in items)
    assert all(s.data_source == source and len(s.images) == 1 for s in items if isinstance(s, Sample))
    answers = {f"{tag}{i}": _gt(i) for i in range(8)}
    srv = fake_server(answers=answers)
    cfg = build_config(path, tmp_path / "out", srv.base_url, input_format=source, image_dir=image_root(root))
    summary = build(cfg)
    assert summary["complete"] and summary["samples_in"] == 8 and summary["bad_input"] == {}
    assert summary["kept"] > 0


def test_sample_is_deterministic_and_independent_of_order(tmp_path: Path) -> None:
    path = mathv360k_release(tmp_path, 40)
    a = sample_ids(path, 10, seed=1)
    assert len(a) == 10 and a == sample_ids(path, 10, seed=1)
    assert a != sample_ids(path, 10, seed=2)
    recs = json.loads(path.read_text())
    reversed_path = tmp_path / "rev.json"
    reversed_path.write_text(json.dumps(recs[::-1]))
    ids = {r["id"] for r in iter_source(path, "mathv360k", sample=10, seed=1) if isinstance(r, dict)}
    ids_rev = {r["id"] for r in iter_source(reversed_path, "mathv360k", sample=10, seed=1) if isinstance(r, dict)}
    assert ids == ids_rev and len(ids) == 10


def test_sample_through_the_builder(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    path = mathv360k_release(tmp_path, 30)
    srv = fake_server(answers={f"v{i}": _gt(i) for i in range(30)})
    cfg = build_config(path, tmp_path / "out", srv.base_url, input_format="mathv360k", image_dir=tmp_path / "data_images", sample=12)
    summary = build(cfg)
    assert summary["samples_in"] == 12 and summary["complete"]


def test_a_missing_release_image_is_a_bad_row_by_id(tmp_path: Path) -> None:
    path = llava_cot_release(tmp_path, 3)
    (tmp_path / "chartqa/train/png/1.png").unlink()
    items = list(iter_samples(path, input_format="llava_cot"))
    assert isinstance(items[1], BadRow) and (items[1].reason, items[1].source_id) == ("missing_image", "chartqa_1")


def srpo_sft_release(root: Path, n: int, with_second_think: int = 0) -> Path:
    """The authors' released SFT data as LLaMA-Factory sharegpt; targets without the second <think>."""
    recs = []
    for i in range(n):
        rel = f"images/{i}.png"
        _img(root / rel, i)
        t2 = "<think>Checked again.</think> " if i < with_second_think else ""
        target = (f"<think>Reading figure {i}.</think> <answer>\\boxed{{{_gt(i + 1)}}}</answer> "
                  f"<reflection>I misread the scale; the second bar is taller.</reflection> {t2}<answer>\\boxed{{{_gt(i)}}}</answer>")
        recs.append({"messages": [{"role": "user", "content": f"<image>[q:r{i}] What does figure {i} show?"},
                                  {"role": "assistant", "content": target}], "images": [rel]})
    (root / "srpo_sft.json").write_text(json.dumps(recs))
    return root / "srpo_sft.json"


def test_srpo_sft_importer_says_what_it_lacks(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from srpo_data.stage1_sources import inspect_srpo_sft, main

    path = srpo_sft_release(tmp_path, 6, with_second_think=2)
    assert inspect_srpo_sft(path) == {"records": 6, "five_blocks": 2, "missing_second_think": 4, "unparsable": 0, "bad_layout": 0}
    assert main(["inspect", str(path)]) == 0
    assert "4 of 6 targets lack the second <think>" in capsys.readouterr().err


def test_srpo_sft_is_completed_with_the_revise_step_only(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    import pyarrow.parquet as pq

    from srpo_reward.format import parse_response

    path = srpo_sft_release(tmp_path, 8)
    srv = fake_server(answers={f"r{i}": _gt(i) for i in range(8)}, revise_right_rate=1.0)
    summary = build(build_config(path, tmp_path / "out", srv.base_url, input_format="srpo_sft"))
    assert summary["complete"] and summary["samples_in"] == 8
    assert summary["attempts"] == 0 and summary["reflections"] == 0 and summary["revisions"] == 8
    assert summary["this_run"]["teacher"]["requests"] == 0
    assert summary["this_run"]["policy"]["requests"] == 8
    assert summary["kept"] > 0
    for row in pq.read_table(tmp_path / "out" / "sft.parquet").to_pylist():
        target = row["messages"][-1]["content"]
        assert parse_response(target).ok and target.count("<think>") == 2
        assert "I misread the scale" in target
