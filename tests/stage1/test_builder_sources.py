"""The stage-1 releases in their published layouts (look-alikes) to builder rows, and a build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from builder_helpers import build_config
from srpo_data.stage1.builder.inputs import BadRow, Sample, iter_samples
from srpo_data.stage1.builder.run import build
from srpo_data.stage1.sources import (
    SourceSkip, iter_source, llava_cot_row, mathv360k_row, mulberry_row, sample_ids, srpo_sft_row,
)


def _img(path: Path, i: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (28, 28), (i * 31 % 256, 90, 10)).save(path)


def _gt(i: int) -> str:
    return "ABCDE"[i % 5] if i % 2 else str(20 + i)


def _mulberry_final(i: int) -> str:
    """Mulberry's final answers: a letter with its value on multiple choice (``A: 57``), a value."""
    return f"{'ABCDE'[i % 5]}: {20 + i}" if i % 2 else str(20 + i)


def mulberry_release(root: Path, n: int) -> Path:
    """``mulberry_sft.json`` as Mulberry's ``comcts/code/data_construction.py`` writes it:
    ``messages`` (user ``'<image>' + question``, assistant ending ``### The final answer is:\\n X``)
    and ``images = data['image']``, ONE path as a string."""
    recs = []
    for i in range(n):
        rel = f"mulberry_images/geoqa/{i}.png"
        _img(root / rel, i)
        recs.append({
            "messages": [
                {"role": "user", "content": f"<image>Based on the image, directly select the correct answer for the following "
                                            f"question:\nQuestion: [q:m{i}] What is the measure in figure {i}?"},
                {"role": "assistant", "content": f"### Image Description:\nA figure.\n\n### Rationales:\nAngles.\n\n"
                                                  f"### Let's think step by step.\n\n### Step 1:\nLook.\n\n"
                                                  f"### The final answer is:\n{_mulberry_final(i)}"},
            ],
            "images": rel,
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
        # the gpt turn bare, or as a sentence (``The answer is 5``: the form of its CLEVR-Math part)
        answer = _gt(i) if i % 3 else f"The answer is {_gt(i)}"
        recs.append({"id": f"tabmwp_{i}", "image": rel,
                     "conversations": [{"from": "human", "value": f"<image>\n[q:v{i}] How many are there? ({i})"},
                                       {"from": "gpt", "value": answer}]})
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
        pytest.param(mathv360k_row, {"id": "y", "conversations": [{"from": "human", "value": "Q?"}]}, "no_question_answer_pair", id="mathv360k-no-image-no-answer"),
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


SRPO_SYSTEM = ("You are a reasoning expert. Given an image and a question, please generate two rounds of step-by-step "
               "reasoning: First, provide your initial chain of thought and answer. Then reflect on it, and finally, based on "
               "your reflection, give your final reasoning and answer.")


def srpo_sft_record(question: str, target: str, images: Any) -> dict[str, Any]:
    """One record as the authors' ``build_training_data_prompt`` (``utils/prompt_utils.py``) builds it."""
    rec: dict[str, Any] = {"messages": [{"role": "system", "content": SRPO_SYSTEM},
                                        {"role": "user", "content": f"Question:<question>{question}</question>\nImage: <image>\n"},
                                        {"role": "assistant", "content": target}]}
    if images is not None:
        rec["images"] = images
    return rec


def srpo_sft_release(root: Path, n: int, with_second_think: int = 0) -> Path:
    """The authors' released SFT data as LLaMA-Factory sharegpt; targets without the second <think>
    (``<think>cot</think>\\n<answer>a</answer>\\n<reflection>r</reflection>\\n<answer>gt</answer>``)."""
    recs = []
    for i in range(n):
        rel = f"images/{i}.png"
        _img(root / rel, i)
        t2 = "<think>Checked again.</think>\n" if i < with_second_think else ""
        target = (f"<think>Reading figure {i}.</think>\n<answer>\\boxed{{{_gt(i + 1)}}}</answer>\n"
                  f"<reflection>I misread the scale; the second bar is taller.</reflection>\n{t2}<answer>\\boxed{{{_gt(i)}}}</answer>")
        recs.append(srpo_sft_record(f"[q:r{i}] What does figure {i} show?", target, [rel]))
    (root / "srpo_sft.json").write_text(json.dumps(recs))
    return root / "srpo_sft.json"


def test_srpo_sft_importer_says_what_it_lacks(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from srpo_data.stage1.sources import inspect_srpo_sft, main

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


# ---------------------------------------------------------------- issue 19: the releases' real forms
def _mul(user: str, final: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": user},
                         {"role": "assistant", "content": f"### Step 1:\nLook.\n\n### The final answer is:\n{final}"}], **extra}


def _lv(human: str, gpt: str, **extra: Any) -> dict[str, Any]:
    return {"id": "z", "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}], **extra}


_TARGET = "<think>t</think>\n<answer>\\boxed{3}</answer>\n<reflection>r</reflection>\n<answer>\\boxed{4}</answer>"


@pytest.mark.parametrize(
    "reader, rec, expected",
    [
        # Mulberry-SFT (comcts/code/data_construction.py): images = data['image'], one path as a string
        pytest.param(mulberry_row, _mul("<image>Question: Find x.", "A: 57", images="geo3k/train/74/img_diagram.png"),
                     {"question": "Question: Find x.", "answer": "A: 57", "images": ["geo3k/train/74/img_diagram.png"]},
                     id="mulberry-images-string-letter-value"),
        pytest.param(mulberry_row, _mul("<image>Q?", "C", images=["a.png"]), {"answer": "C", "images": ["a.png"]}, id="mulberry-images-list"),
        pytest.param(mulberry_row, _mul("Q?", "7"), {"question": "Q?", "images": []}, id="mulberry-text-only-no-images-field"),
        pytest.param(mulberry_row, _mul("<image>Q?", "7", images=[]), "image_token_count_mismatch", id="mulberry-token-with-empty-images"),
        pytest.param(mulberry_row, _mul("<image>Q?", "7"), "image_token_count_mismatch", id="mulberry-token-without-images-field"),
        pytest.param(mulberry_row, _mul("<image>Q?", "7", images=["a.png", "b.png"]), "image_token_count_mismatch", id="mulberry-two-images-one-token"),
        pytest.param(mulberry_row, _mul("Q?", "7", images="a.png"), "image_token_count_mismatch", id="mulberry-image-without-token"),
        pytest.param(mulberry_row, _mul("<image>Q?", "7", images=""), "bad_layout", id="mulberry-empty-path"),
        pytest.param(mulberry_row, _mul("<image>Q?", "7", images=[3]), "bad_layout", id="mulberry-path-not-a-string"),
        # LLaVA-CoT-100k train.jsonl: one `image`, the text without <image>; a line without an image is a bad
        # record (the public loader skips such lines), with or without an <image> in its text
        pytest.param(llava_cot_row, _lv("Which is highest?", "<SUMMARY>s</SUMMARY><CONCLUSION>Tokyo</CONCLUSION>", image="chartqa/1.png"),
                     {"question": "Which is highest?", "answer": "Tokyo", "images": ["chartqa/1.png"]}, id="llava-cot-no-token"),
        pytest.param(llava_cot_row, _lv("How?", "<CONCLUSION>so</CONCLUSION>"), "missing_image", id="llava-cot-no-image"),
        pytest.param(llava_cot_row, _lv("<image>\nHow?", "<CONCLUSION>so</CONCLUSION>"), "missing_image", id="llava-cot-token-without-image"),
        pytest.param(llava_cot_row, _lv("<image>\n<image>\nHow?", "<CONCLUSION>so</CONCLUSION>", image="a.png"), "image_token_count_mismatch",
                     id="llava-cot-two-tokens-one-image"),
        pytest.param(llava_cot_row, _lv("<image>\nHow?", "<CONCLUSION>so</CONCLUSION>", image=["a.png"]), "bad_layout", id="llava-cot-image-list"),
        # MathV360K: `<image>\n` + question, the gpt value as the ground truth as written
        pytest.param(mathv360k_row, _lv("<image>\nHow many cubes are left?", "The answer is 5", image="CLEVR-Math/images/1.png"),
                     {"question": "How many cubes are left?", "answer": "The answer is 5"}, id="mathv360k-answer-is"),
        pytest.param(mathv360k_row, _lv("<image>\n<image>\nQ?", "5", image="a.png"), "image_token_count_mismatch", id="mathv360k-two-tokens-one-image"),
        # LLaVA-1.5's loader (MathV360K's trainer) trains a record without `image` as text-only; with an <image> it cannot
        pytest.param(mathv360k_row, _lv("How many?", "5"), {"question": "How many?", "images": []}, id="mathv360k-text-only"),
        pytest.param(mathv360k_row, _lv("<image>\nHow many?", "5"), "image_token_count_mismatch", id="mathv360k-token-without-image"),
        # the authors' SFT release (utils/prompt_utils.py build_training_data_prompt)
        pytest.param(srpo_sft_row, srpo_sft_record("Find the area.", _TARGET, ["img/1.png"]),
                     {"question": "Find the area.", "answer": "4", "images": ["img/1.png"], "release_target": "missing_second_think"},
                     id="srpo-sft-question-unwrapped"),
        pytest.param(srpo_sft_row, srpo_sft_record("Find the area.", _TARGET, "img/1.png"), {"images": ["img/1.png"]}, id="srpo-sft-images-string"),
        pytest.param(srpo_sft_row, srpo_sft_record("  ", _TARGET, ["img/1.png"]), "missing_question", id="srpo-sft-empty-question"),
        pytest.param(srpo_sft_row, srpo_sft_record("Find the area.", _TARGET, None), "image_token_count_mismatch", id="srpo-sft-no-images-field"),
        pytest.param(srpo_sft_row, {"messages": [{"role": "user", "content": "<image>Plain question?"}, {"role": "assistant", "content": _TARGET}],
                                    "images": ["a.png"]}, {"question": "Plain question?"}, id="srpo-sft-without-markup"),
    ],
)
def test_reader_rows_in_release_forms(reader: Any, rec: dict[str, Any], expected: dict[str, Any] | str) -> None:
    got = reader(rec, 5)
    if isinstance(expected, str):
        assert isinstance(got, SourceSkip) and got.reason == expected, got
    else:
        assert isinstance(got, dict), got
        assert {k: got[k] for k in expected} == expected


def test_srpo_sft_question_reaches_the_prompts_without_markup(tmp_path: Path, fake_server) -> None:  # type: ignore[no-untyped-def]
    """The SFT user turn and the revise prompt carry the question, not ``Question:<question>``."""
    import pyarrow.parquet as pq

    path = srpo_sft_release(tmp_path, 4)
    srv = fake_server(answers={f"r{i}": _gt(i) for i in range(4)}, revise_right_rate=1.0)
    summary = build(build_config(path, tmp_path / "out", srv.base_url, input_format="srpo_sft"))
    assert summary["kept"] == 4
    for row in pq.read_table(tmp_path / "out" / "sft.parquet").to_pylist():
        user = row["messages"][0]["content"]
        assert "<question>" not in user and "Question:" not in user and "What does figure" in user


@pytest.mark.parametrize("source", ["mulberry", "mathv360k"])
def test_release_gold_forms_grade_right_revisions_as_right(tmp_path: Path, fake_server, source: str) -> None:  # type: ignore[no-untyped-def]
    """Mulberry's ``A: 57`` and MathV360K's ``The answer is 5``: a policy that answers the value
    (``57``, ``5``) is right; no right revision is dropped as ``final_wrong``."""
    make, image_root, tag = RELEASES[source]
    root = tmp_path / source
    root.mkdir()
    path = make(root, 8)
    # the scripted policy answers the bare value (57) or letter, never the release's sentence
    answers = {f"{tag}{i}": (_mulberry_final(i).split(": ")[-1] if source == "mulberry" else _gt(i)) for i in range(8)}
    srv = fake_server(answers=answers, revise_right_rate=1.0, bad_format_rate=0.0)
    summary = build(build_config(path, tmp_path / "out", srv.base_url, input_format=source, image_dir=image_root(root)))
    assert summary["complete"] and summary["bad_input"] == {}
    assert summary["dropped"].get("final_wrong", 0) == 0
    assert summary["kept"] + summary["dropped"].get("reflection_quotes_ground_truth", 0) == 8


def _append_bad_record(path: Path, source: str) -> None:
    """One record the release's tooling would refuse: more ``<image>`` than images."""
    bad = {
        "mulberry": _mul("<image>Q?", "7", images=[]),
        "llava_cot": _lv("<image>\n<image>\nQ?", "<CONCLUSION>7</CONCLUSION>", image="a.png"),
        "mathv360k": _lv("<image>\nQ?", "7"),
        "srpo_sft": srpo_sft_record("Q?", _TARGET, None),
    }[source]
    if path.suffix == ".jsonl":
        with path.open("a") as fh:
            fh.write(json.dumps(bad) + "\n")
    else:
        recs = json.loads(path.read_text())
        path.write_text(json.dumps([*recs, bad]))


@pytest.mark.parametrize("source", [*sorted(RELEASES), "srpo_sft"])
def test_release_look_alikes_through_the_cli(tmp_path: Path, fake_server, source: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 19, done when: each release's look-alike in its real layout, plus one bad record,
    through ``python -m srpo_data.build_reflections`` with the judge and the 30/70 mix: every
    good record read, the bad one reported with its reason, the judge and the mix as documented."""
    from srpo_data.stage1.build_reflections import main

    root = tmp_path / source
    root.mkdir()
    if source == "srpo_sft":
        path, images, tag, n = srpo_sft_release(root, 12), root, "r", 12
    else:
        make, image_root, tag = RELEASES[source]
        path, images, n = make(root, 12), image_root(root), 12
    _append_bad_record(path, source)
    # a third of the teacher's and judge's first replies are not JSON; the corrective turns are answered
    srv = fake_server(answers={f"{tag}{i}": _gt(i) for i in range(n)}, right_rate=0.6, bad_json_rate=0.3, json_on_correction=True)
    ep = f"{{base_url: '{srv.base_url}', model: fake, timeout: 5, backoff_initial: 0.02}}"
    out = tmp_path / "out"
    argv = ["--input", str(path), "--input-format", source, "--image-dir", str(images), "--out", str(out),
            "--policy", ep, "--teacher", ep, "--judge", ep, "--judge-threshold", "1", "--target-first-right", "0.3",
            "--no-progress"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples_in"] == n + 1 and summary["bad_input"] == {"image_token_count_mismatch": 1}
    assert summary["failed_total"] == 0  # non-JSON teacher and judge replies were asked again and answered
    if source != "srpo_sft":  # the release's attempts are given: nothing for the judge to score
        assert summary["judge"]["scored"] > 0
    from srpo_data.stage1.builder.pipeline import mix_counts

    # the mix kept every sample of one side and the closest count of the other
    right, wrong, d = summary["kept_first_right"], summary["kept_first_wrong"], summary["dropped"].get("mix_balance", 0)
    assert summary["kept"] == right + wrong > 0
    assert (right, wrong) in (mix_counts(right + d, wrong, 0.3), mix_counts(right, wrong + d, 0.3)) or not (right and wrong)
