"""Unit tables for srpo_data.rl.rows and the pure make_row functions of srpo_data.rl.sources."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from PIL import Image

from data_lookalikes import jpeg_bytes, png_bytes
from srpo_data.rl.rows import (
    ImageOptions,
    SkipRow,
    build_rl_row,
    check_answer,
    clean_question,
    fit_within,
    load_image,
    rl_arrow_schema,
    unwrap_boxed,
)
from srpo_data.rl.sources import SOURCES, Generic, MMK12, SRPORL, ViRL39K, get_source, parse_chat_message


@pytest.mark.parametrize(
    "text,expected",
    [
        pytest.param("\\boxed{3}", "3", id="plain"),
        pytest.param(" \\boxed{30^\\circ} ", "30^\\circ", id="nested-braces-free"),
        pytest.param("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", id="nested-braces"),
        pytest.param("\\boxed{1} and \\boxed{2}", "\\boxed{1} and \\boxed{2}", id="two-boxes-unchanged"),
        pytest.param("x = \\boxed{1}", "x = \\boxed{1}", id="prefix-unchanged"),
        pytest.param("B", "B", id="no-box"),
    ],
)
def test_unwrap_boxed(text, expected):
    assert unwrap_boxed(text) == expected


@pytest.mark.parametrize(
    "w,h,limit,expected",
    [
        pytest.param(100, 100, 20000, (100, 100), id="already-fits"),
        pytest.param(200, 100, 5000, (100, 50), id="halved"),
        pytest.param(1000, 10, 100, (100, 1), id="thin"),
    ],
)
def test_fit_within(w, h, limit, expected):
    assert fit_within(w, h, limit) == expected
    assert expected[0] * expected[1] <= limit


@pytest.mark.parametrize(
    "question,n_images,expected",
    [
        pytest.param("<image>Find x.", 1, "Find x.", id="geo3k-placeholder"),
        pytest.param("Find x.", 1, "Find x.", id="no-placeholder"),
        pytest.param("<image>\n<image>\nCompare.", 2, "Compare.", id="two-placeholders"),
        pytest.param("  What?  ", 0, "What?", id="text-only"),
    ],
)
def test_clean_question(question, n_images, expected):
    assert clean_question(question, n_images) == expected


@pytest.mark.parametrize(
    "question,n_images,reason",
    [
        pytest.param(None, 1, "empty_question", id="none"),
        pytest.param(3, 1, "empty_question", id="number"),
        pytest.param(" ", 0, "empty_question", id="blank"),
        pytest.param("<image>Q", 2, "image_placeholder_mismatch", id="too-few"),
    ],
)
def test_clean_question_refuses(question, n_images, reason):
    with pytest.raises(SkipRow) as exc:
        clean_question(question, n_images)
    assert exc.value.reason == reason


@pytest.mark.parametrize(
    "answer,reason",
    [
        pytest.param(None, "missing_answer", id="none"),
        pytest.param("", "missing_answer", id="empty"),
        pytest.param(4, "non_string_answer", id="int"),
        pytest.param(["A"], "non_string_answer", id="list"),
    ],
)
def test_check_answer_refuses(answer, reason):
    with pytest.raises(SkipRow) as exc:
        check_answer(answer)
    assert exc.value.reason == reason


def test_skiprow_rejects_unknown_reason():
    with pytest.raises(ValueError, match="unknown skip reason"):
        SkipRow("oops")


@pytest.mark.parametrize(
    "value,fmt,size",
    [
        pytest.param(png_bytes((30, 20)), "PNG", (30, 20), id="png-bytes"),
        pytest.param({"bytes": jpeg_bytes((30, 20)), "path": "x.jpg"}, "JPEG", (30, 20), id="hf-image-dict-jpeg"),
        pytest.param(Image.new("RGB", (8, 9)), "PNG", (8, 9), id="pil-image"),
    ],
)
def test_load_image_keeps_png_jpeg(value, fmt, size):
    loaded = load_image(value, ImageOptions())
    assert (loaded.format, loaded.width, loaded.height) == (fmt, *size)
    if isinstance(value, bytes):
        assert loaded.data == value  # PNG/JPEG bytes kept byte for byte


def test_load_image_converts_other_formats_to_png():
    buf = io.BytesIO()
    Image.new("RGB", (12, 10)).save(buf, format="BMP")
    loaded = load_image(buf.getvalue(), ImageOptions())
    assert loaded.format == "PNG"
    assert Image.open(io.BytesIO(loaded.data)).format == "PNG"


def test_path_image_without_root_is_refused():
    with pytest.raises(SkipRow) as exc:
        load_image("img.png", ImageOptions(root=None))
    assert exc.value.reason == "path_escape"


def test_built_row_matches_arrow_schema():
    row = build_rl_row(
        question="<image>Find x.",
        answer="3",
        images=[png_bytes((20, 20))],
        data_source="d",
        index=4,
        split="test",
        extra={"id": 7, "subject": "math"},
    )
    table = pa.Table.from_pylist([row], schema=rl_arrow_schema(("subject",)))
    back = table.to_pylist()[0]
    assert back["extra_info"] == {
        "split": "test", "index": 4, "question": "Find x.", "answer": "3", "id": "7", "subject": "math",
    }
    assert back["prompt"][0]["content"].startswith("<image>Find x.")


def test_extra_cannot_overwrite_base_fields():
    with pytest.raises(ValueError, match="overwrite"):
        build_rl_row(question="q", answer="a", images=[], data_source="d", index=0, split="s", extra={"question": "x"})


@pytest.mark.parametrize(
    "message,reason",
    [
        pytest.param("{not json", "bad_example", id="invalid-json"),
        pytest.param('{"role": "user"}', "bad_example", id="not-a-list"),
        pytest.param([{"role": "user", "content": [{"type": "audio"}]}], "bad_example", id="unknown-item"),
    ],
)
def test_parse_chat_message_refuses(message, reason):
    with pytest.raises(SkipRow) as exc:
        parse_chat_message(message)
    assert exc.value.reason == reason


def test_parse_chat_message_collects_text_and_images():
    message = [
        {"role": "system", "content": "ignored"},
        {"role": "user", "content": [{"type": "image", "image": "file:///a.png"}, {"type": "text", "text": "Q1"}]},
        {"role": "user", "content": "Q2"},
    ]
    assert parse_chat_message(message) == ("Q1\nQ2", ["file:///a.png"])


# One example per source, in its own layout; make_row is pure (same input -> same row).
EXAMPLES = [
    pytest.param(MMK12(), {"id": "m1", "subject": "math", "question": "Q?", "answer": "\\boxed{2}",
                           "image": {"bytes": png_bytes((28, 28)), "path": None}}, "2", id="mmk12"),
    pytest.param(ViRL39K(), {"qid": "v1", "question": "<image>Q?", "answer": "\\boxed{B}", "category": "c",
                             "source": "s", "PassRate_32BTrained": 0.5, "PassRate_7BBase": None,
                             "image": [png_bytes((28, 28))]}, "B", id="virl39k"),
    pytest.param(SRPORL(), {"id": "s1", "answer": "5", "message": [
        {"role": "user", "content": [{"type": "image", "image": png_bytes((28, 28))}, {"type": "text", "text": "Q?"}]}]},
        "5", id="srpo"),
    pytest.param(Generic(question_key="q", answer_key="a", image_key="pic"),
                 {"q": "Q?", "a": "9", "pic": png_bytes((28, 28))}, "9", id="generic-custom-keys"),
]


@pytest.mark.parametrize("source,example,gold", EXAMPLES)
def test_make_row_is_pure_and_complete(source, example, gold):
    row = source.make_row(example, 3, "train")
    assert row == source.make_row(example, 3, "train")
    assert row["reward_model"]["ground_truth"] == gold
    assert row["extra_info"]["index"] == 3
    assert len(row["images"]) == row["prompt"][0]["content"].count("<image>") == 1
    pa.Table.from_pylist([row], schema=rl_arrow_schema(source.extra_keys))  # schema holds


def test_registry_lists_sources_and_rejects_unknown():
    assert set(SOURCES) == {"geometry3k", "mmk12", "srpo", "virl39k", "thinklite", "generic"}
    with pytest.raises(ValueError, match="geometry3k"):
        get_source("nope")
