"""Converters on generated look-alikes of the four benchmarks' public layouts."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from srpo_eval import benchmarks as B
from srpo_eval.convert import convert, main
from srpo_reward.prompts import render_prompt

# (benchmark key in `releases`, --benchmark, image_root relative to the tmp dir or None,
#  {id: (ground_truth, answer_type, options, n_images)}, {skip reason: count})
CASES = [
    pytest.param(
        "mathvista", "mathvista", None,
        {
            "mathvista-1": ("B", "multiple_choice", ["larger than", "equal to", "smaller than"], 1),
            "mathvista-2": ("7", "integer", [], 1),
            "mathvista-3": ("1.2", "float", [], 1),
            "mathvista-4": ("C", "multiple_choice", ["7.5", "8", "8.5", "17"], 1),
        },
        {"bad_example": 1, "missing_image": 1},
        id="mathvista-testmini-text-answer-to-letter",
    ),
    pytest.param(
        "mathverse", "mathverse", None,
        {
            "mathverse-1": ("B", "multiple_choice", ["40°", "50°", "60°", "130°"], 1),
            "mathverse-2": ("\\frac{5}{2}", "expression", [], 1),
            "mathverse-3": ("14", "integer", [], 1),
        },
        {"missing_answer": 1},
        id="mathverse-testmini-choices-in-text",
    ),
    pytest.param(
        "mathvision", "mathvision", "MathVision",
        {
            "mathvision-1": ("C", "multiple_choice", ["A", "B", "C", "D", "E"], 1),
            "mathvision-2": ("12", "integer", [], 1),
            "mathvision-3": ("C", "multiple_choice", ["1", "2", "\\sqrt{2}", "3", "4"], 1),
        },
        {"path_escape": 1},
        id="mathvision-test-image-paths",
    ),
    pytest.param(
        "mmmu_pro", "mmmu_pro", None,
        {
            "mmmu_pro-test_Art_1": ("J", "multiple_choice", [f"option {c}" for c in "abcdefghij"], 2),
            "mmmu_pro-test_Math_2": ("B", "multiple_choice", ["1", "2", "3", "4"], 1),
        },
        {"bad_example": 1},
        id="mmmu-pro-standard-10-options",
    ),
    pytest.param(
        "mmmu_pro_vision", "mmmu_pro", None,
        {"mmmu_pro_vision-test_Art_1": ("D", "multiple_choice", [f"o{k}" for k in range(10)], 1)},
        {},
        id="mmmu-pro-vision",
    ),
]


@pytest.mark.parametrize("key,bench,image_root,expected,skips", CASES)
def test_convert_lookalike(releases, tmp_path, key, bench, image_root, expected, skips):
    out = tmp_path / f"{key}.parquet"
    root = releases["root"] / image_root if image_root else None
    summary = convert(bench, releases[key], out, image_root=root)
    assert summary["written"] == len(expected)
    assert summary["skipped_by_reason"] == skips
    rows = pq.read_table(out).to_pylist()
    got = {r["extra_info"]["id"]: r for r in rows}
    assert set(got) == set(expected)
    for qid, (gt, atype, options, n_images) in expected.items():
        r = got[qid]
        assert r["reward_model"] == {"style": "rule", "ground_truth": gt}
        assert r["extra_info"]["answer_type"] == atype
        assert r["extra_info"]["options"] == options
        assert len(r["images"]) == n_images and all(img["bytes"] for img in r["images"])
        content = r["prompt"][0]["content"]
        assert content.startswith("<image>" * n_images) and content.count("<image>") == n_images
        assert content[len("<image>") * n_images :] == render_prompt(r["extra_info"]["question"])
        assert r["data_source"] == r["extra_info"]["benchmark"] == qid.rsplit("-", 1)[0]
    if skips:
        listed = [json.loads(x) for x in (tmp_path / f"{key}.parquet.skipped.jsonl").read_text().splitlines()]
        assert sorted(x["reason"] for x in listed) == sorted(r for r, n in skips.items() for _ in range(n))


def test_multiple_choice_prompt_lists_options_and_mathvista_keeps_original_answer(releases, tmp_path):
    out = tmp_path / "mv.parquet"
    convert("mathvista", releases["mathvista"], out)
    row = {r["extra_info"]["id"]: r for r in pq.read_table(out).to_pylist()}["mathvista-1"]
    q = row["extra_info"]["question"]
    assert "(A) larger than\n(B) equal to\n(C) smaller than" in q
    assert row["extra_info"]["original_answer"] == "equal to"


def test_limit_overwrite_and_cli(releases, tmp_path, capsys):
    out = tmp_path / "mv.parquet"
    assert main(["--benchmark", "mathverse", "--input", str(releases["mathverse"]), "--output", str(out), "--limit", "2"]) == 0
    assert pq.read_metadata(out).num_rows == 2
    # an existing output is kept unless --overwrite
    assert main(["--benchmark", "mathverse", "--input", str(releases["mathverse"]), "--output", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["--benchmark", "mathverse", "--input", str(releases["mathverse"]), "--output", str(out), "--overwrite"]) == 0
    assert pq.read_metadata(out).num_rows == 3


def test_folder_with_several_configs_is_refused(releases, tmp_path):
    with pytest.raises(ValueError, match="several configs"):
        convert("mmmu_pro", releases["root"] / "MMMU_Pro", tmp_path / "x.parquet")


@pytest.mark.parametrize(
    "answer,options,expected",
    [
        pytest.param("B", ["x", "y"], "B", id="letter"),
        pytest.param("(B)", ["x", "y"], "B", id="parenthesised-letter"),
        pytest.param("C", ["x", "y"], None, id="letter-out-of-range"),
        pytest.param("y", ["x", "y"], "B", id="option-text"),
        pytest.param("Y", ["x", "y"], "B", id="option-text-case"),
        pytest.param("8", ["7.5", "8.0", "8.5"], "B", id="numeric-option"),
        pytest.param("z", ["x", "y"], None, id="not-an-option"),
    ],
)
def test_letter_of(answer, options, expected):
    assert B.letter_of(answer, options) == expected


@pytest.mark.parametrize(
    "question,expected",
    [
        pytest.param("Find it.\nChoices:\nA:1\nB:2\nC:3", ["1", "2", "3"], id="colon"),
        pytest.param("Find it.\nChoices:\n(A) 1\n(B) 2", ["1", "2"], id="parenthesised"),
        pytest.param("Find it.", [], id="none"),
        pytest.param("Find it.\nChoices:\nA:1\nC:3", ["1"], id="stops-at-gap"),
    ],
)
def test_mathverse_options(question, expected):
    assert B.mathverse_options(question) == expected


@pytest.mark.parametrize(
    "answer,expected",
    [
        pytest.param("12", "integer", id="int"),
        pytest.param("-3.5", "float", id="float"),
        pytest.param("1,000", "integer", id="thousands"),
        pytest.param("\\frac{1}{2}", "expression", id="latex"),
        pytest.param("y=2x+1", "expression", id="equation"),
    ],
)
def test_free_form_type(answer, expected):
    assert B.free_form_type(answer) == expected


@pytest.mark.slow
def test_converted_benchmarks_load_in_verl(releases, tmp_path, tiny_qwen_dir):
    """Every converted benchmark loads through verl 0.9.1's own RLHFDataset with the tiny model's processor."""
    from omegaconf import OmegaConf
    from verl.utils import hf_processor, hf_tokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    outs = []
    for key, bench, root in [
        ("mathvista", "mathvista", None),
        ("mathverse", "mathverse", None),
        ("mathvision", "mathvision", releases["root"] / "MathVision"),
        ("mmmu_pro", "mmmu_pro", None),
        ("mmmu_pro_vision", "mmmu_pro", None),
    ]:
        out = tmp_path / f"{key}.parquet"
        convert(bench, releases[key], out, image_root=root)
        outs.append(out)
    config = OmegaConf.create(
        # workers None: filter in this process (datasets 5 forks a pool even for 1 worker, which can deadlock)
        {"max_prompt_length": 4096, "filter_overlong_prompts": True, "filter_overlong_prompts_workers": None, "cache_dir": str(tmp_path / "cache")}
    )
    processor = hf_processor(str(tiny_qwen_dir))
    assert processor is not None  # None would mean verl silently drops every image
    dataset = RLHFDataset([str(o) for o in outs], hf_tokenizer(str(tiny_qwen_dir)), config, processor)
    rows = [r for o in outs for r in pq.read_table(o).to_pylist()]
    assert len(dataset) == len(rows) == 13
    for i, row in enumerate(rows):
        parts = dataset[i]["raw_prompt"][0]["content"]
        assert [p["type"] for p in parts] == ["image"] * len(row["images"]) + ["text"]
        assert parts[-1]["text"] == render_prompt(row["extra_info"]["question"])
        assert dataset[i]["extra_info"]["id"] == row["extra_info"]["id"]
