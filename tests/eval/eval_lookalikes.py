"""Small generated look-alikes of the four benchmarks' public layouts, and eval-parquet builders.

Column names and types follow the hub releases (see ``srpo_eval/benchmarks.py``):
image structs ``{"bytes", "path"}`` as ``datasets`` writes them, path-only images
next to the file, MMMU's options as a Python-literal string.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

IMAGE_STRUCT = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])


def png_bytes(color: str = "red", size: tuple[int, int] = (28, 28)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def image_struct(color: str = "red", path: str | None = None) -> dict[str, Any]:
    return {"bytes": png_bytes(color), "path": path}


# ---------------------------------------------------------------- MathVista
MATHVISTA_SCHEMA = pa.schema(
    [
        ("pid", pa.string()),
        ("question", pa.string()),
        ("image", pa.string()),
        ("decoded_image", IMAGE_STRUCT),
        ("choices", pa.list_(pa.string())),
        ("unit", pa.string()),
        ("precision", pa.float64()),
        ("answer", pa.string()),
        ("question_type", pa.string()),
        ("answer_type", pa.string()),
        (
            "metadata",
            pa.struct([("category", pa.string()), ("context", pa.string()), ("skills", pa.list_(pa.string()))]),
        ),
        ("query", pa.string()),
    ]
)


def mathvista_rows() -> list[dict[str, Any]]:
    meta = {"category": "math-targeted-vqa", "context": "function plot", "skills": ["algebraic reasoning"]}
    base = {"unit": None, "precision": None, "metadata": meta, "query": "Hint: ..."}
    return [
        # multiple choice: the answer is the TEXT of the right choice -> letter B
        {**base, "pid": "1", "question": "The derivative of f at x=2 is ____ that at x=5", "image": "images/1.jpg",
         "decoded_image": image_struct("red", "1.jpg"), "choices": ["larger than", "equal to", "smaller than"],
         "answer": "equal to", "question_type": "multi_choice", "answer_type": "text"},
        # free-form integer
        {**base, "pid": "2", "question": "How many bars are there?", "image": "images/2.jpg",
         "decoded_image": image_struct("blue", "2.jpg"), "choices": None, "answer": "7",
         "question_type": "free_form", "answer_type": "integer"},
        # free-form float with precision 1
        {**base, "pid": "3", "question": "What is the slope?", "image": "images/3.jpg",
         "decoded_image": image_struct("green", "3.jpg"), "choices": None, "precision": 1.0, "answer": "1.2",
         "question_type": "free_form", "answer_type": "float"},
        # numeric choices: answer "8.5" -> letter C
        {**base, "pid": "4", "question": "Which value is marked?", "image": "images/4.jpg",
         "decoded_image": image_struct("white", "4.jpg"), "choices": ["7.5", "8", "8.5", "17"], "answer": "8.5",
         "question_type": "multi_choice", "answer_type": "float"},
        # bad: the answer is not one of the choices
        {**base, "pid": "5", "question": "Pick one", "image": "images/5.jpg", "decoded_image": image_struct("black", "5.jpg"),
         "choices": ["yes", "no"], "answer": "maybe", "question_type": "multi_choice", "answer_type": "text"},
        # bad: no decoded image and the path does not exist
        {**base, "pid": "6", "question": "Where is it?", "image": "images/missing.jpg", "decoded_image": None,
         "choices": None, "answer": "3", "question_type": "free_form", "answer_type": "integer"},
    ]


def write_mathvista(root: Path) -> Path:
    data = root / "MathVista" / "data"
    data.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(mathvista_rows(), schema=MATHVISTA_SCHEMA), data / "testmini-00000-of-00001-725687bf7a18d64b.parquet")
    # the test split sits beside it and must not be picked up
    decoy = [{**mathvista_rows()[1], "pid": "999"}]
    pq.write_table(pa.Table.from_pylist(decoy, schema=MATHVISTA_SCHEMA), data / "test-00000-of-00002-6a611c71596db30f.parquet")
    return data


# ---------------------------------------------------------------- MathVerse
MATHVERSE_SCHEMA = pa.schema(
    [
        ("sample_index", pa.string()),
        ("problem_index", pa.string()),
        ("problem_version", pa.string()),
        ("question", pa.string()),
        ("image", IMAGE_STRUCT),
        ("answer", pa.string()),
        ("question_type", pa.string()),
        ("metadata", pa.struct([("split", pa.string()), ("source", pa.string()), ("subject", pa.string()), ("subfield", pa.string())])),
        ("query_wo", pa.string()),
        ("query_cot", pa.string()),
        ("question_for_eval", pa.string()),
    ]
)


def mathverse_rows() -> list[dict[str, Any]]:
    meta = {"split": "testmini", "source": "GeoQA", "subject": "Plane Geometry", "subfield": "Angle"}
    base = {"metadata": meta, "query_wo": "...", "query_cot": "...", "question_for_eval": "..."}
    return [
        {**base, "sample_index": "1", "problem_index": "1", "problem_version": "Text Dominant",
         "question": "As shown in the figure, angle 1 = 50 degrees. Find angle 2.\nChoices:\nA:40°\nB:50°\nC:60°\nD:130°",
         "image": image_struct("red"), "answer": "B", "question_type": "multi-choice"},
        {**base, "sample_index": "2", "problem_index": "2", "problem_version": "Text Lite",
         "question": "Find the area of the shaded region.", "image": image_struct("blue"), "answer": "\\frac{5}{2}",
         "question_type": "free-form"},
        # vision only: the question is in the diagram, the text is empty
        {**base, "sample_index": "3", "problem_index": "2", "problem_version": "Vision Only", "question": "",
         "image": image_struct("green"), "answer": "14", "question_type": "free-form"},
        # bad: no answer
        {**base, "sample_index": "4", "problem_index": "3", "problem_version": "Text Lite", "question": "Find x.",
         "image": image_struct("white"), "answer": "", "question_type": "free-form"},
    ]


def write_mathverse(root: Path) -> Path:
    d = root / "MathVerse"
    d.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(mathverse_rows(), schema=MATHVERSE_SCHEMA), d / "testmini.parquet")
    decoy = [{**mathverse_rows()[1], "sample_index": "999"}]
    pq.write_table(pa.Table.from_pylist(decoy, schema=MATHVERSE_SCHEMA), d / "testmini_text_only.parquet")
    return d


# --------------------------------------------------------------- MathVision
MATHVISION_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("question", pa.string()),
        ("options", pa.list_(pa.string())),
        ("image", pa.string()),
        ("decoded_image", IMAGE_STRUCT),
        ("answer", pa.string()),
        ("solution", pa.string()),
        ("level", pa.int64()),
        ("subject", pa.string()),
    ]
)


def mathvision_rows() -> list[dict[str, Any]]:
    return [
        {"id": "1", "question": "<image1>\nWhich shape comes next?", "options": ["A", "B", "C", "D", "E"],
         "image": "images/1.jpg", "decoded_image": image_struct("red", "1.jpg"), "answer": "C", "solution": None,
         "level": 2, "subject": "logic"},
        {"id": "2", "question": "How many dots are there? <image1>", "options": [], "image": "images/2.jpg",
         "decoded_image": None, "answer": "12", "solution": None, "level": 1, "subject": "counting"},
        {"id": "3", "question": "<image1>\nWhat is the length of AB?", "options": ["1", "2", "\\sqrt{2}", "3", "4"],
         "image": "images/3.jpg", "decoded_image": image_struct("green", "3.jpg"), "answer": "C", "solution": None,
         "level": 3, "subject": "metric geometry - length"},
        # bad: image path leaves the input folder
        {"id": "4", "question": "<image1>\nArea?", "options": [], "image": "../outside.png", "decoded_image": None,
         "answer": "\\frac{\\pi}{2}", "solution": None, "level": 4, "subject": "metric geometry - area"},
    ]


def write_mathvision(root: Path) -> Path:
    d = root / "MathVision"
    (d / "data").mkdir(parents=True)
    (d / "images").mkdir()
    # row 2 has only a path; it resolves against --image-root
    (d / "images" / "2.jpg").write_bytes(png_bytes("purple"))
    (root / "outside.png").write_bytes(png_bytes("black"))
    f = d / "data" / "test-00000-of-00001-3532b8d3f1b4047a.parquet"
    pq.write_table(pa.Table.from_pylist(mathvision_rows(), schema=MATHVISION_SCHEMA), f)
    return f


# ----------------------------------------------------------------- MMMU-Pro
def mmmu_standard_schema() -> pa.Schema:
    fields = [("id", pa.string()), ("question", pa.string()), ("options", pa.string()), ("explanation", pa.string())]
    fields += [(f"image_{k}", IMAGE_STRUCT) for k in range(1, 8)]
    fields += [("img_type", pa.string()), ("answer", pa.string()), ("topic_difficulty", pa.string()), ("subject", pa.string())]
    return pa.schema(fields)


def mmmu_standard_rows() -> list[dict[str, Any]]:
    ten = [f"option {c}" for c in "abcdefghij"]
    empty = {f"image_{k}": None for k in range(1, 8)}
    return [
        {**empty, "id": "test_Art_1", "question": "Which painting is older, <image 1> or <image 2>?", "options": repr(ten),
         "explanation": "", "image_1": image_struct("red"), "image_2": image_struct("blue"), "img_type": "['Paintings']",
         "answer": "J", "topic_difficulty": "Medium", "subject": "Art"},
        {**empty, "id": "test_Math_2", "question": "<image 1> What is the value of x?", "options": repr(["1", "2", "3", "4"]),
         "explanation": "", "image_1": image_struct("green"), "img_type": "['Diagrams']", "answer": "B",
         "topic_difficulty": "Easy", "subject": "Math"},
        # bad: options string is not a Python literal
        {**empty, "id": "test_Math_3", "question": "<image 1> Which?", "options": "[unquoted, list", "explanation": "",
         "image_1": image_struct("white"), "img_type": "['Diagrams']", "answer": "A", "topic_difficulty": "Easy", "subject": "Math"},
    ]


def write_mmmu_pro(root: Path) -> tuple[Path, Path]:
    d = root / "MMMU_Pro"
    std = d / "standard (10 options)"
    vis = d / "vision"
    std.mkdir(parents=True)
    vis.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(mmmu_standard_rows(), schema=mmmu_standard_schema()), std / "test-00000-of-00001.parquet")
    vschema = pa.schema([("id", pa.string()), ("image", IMAGE_STRUCT), ("options", pa.string()), ("answer", pa.string()), ("subject", pa.string())])
    vrows = [{"id": "test_Art_1", "image": image_struct("red"), "options": repr([f"o{k}" for k in range(10)]), "answer": "D", "subject": "Art"}]
    pq.write_table(pa.Table.from_pylist(vrows, schema=vschema), vis / "test-00000-of-00001.parquet")
    return std, vis


# ----------------------------------------------------- eval parquet (no images)
def eval_row(qid: str, bench: str, gt: str, answer_type: str, options: list[str], question: str, index: int) -> dict[str, Any]:
    """A verl RL row as srpo_eval.convert writes it (the report reads no image)."""
    from srpo_reward.prompts import render_prompt

    return {
        "data_source": bench,
        "prompt": [{"role": "user", "content": "<image>" + render_prompt(question)}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": gt},
        "extra_info": {"id": qid, "benchmark": bench, "answer_type": answer_type, "options": options, "index": index,
                       "split": "test", "question": question, "answer": gt},
    }


def write_eval_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def response(a1: str, a2: str, think1: str = "first reasoning", reflection: str = "check it", think2: str = "second reasoning") -> str:
    """A well-formed five-block SRPO response."""
    return (
        f"<think>{think1}</think> <answer>\\boxed{{{a1}}}</answer> <reflection>{reflection}</reflection> "
        f"<think>{think2}</think> <answer>\\boxed{{{a2}}}</answer>"
    )


def write_jsonl(path: Path, records: list[Any]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def run_vllm_generate(model_dir: Path, data: Path, out: Path, env: dict[str, str], cwd: Path) -> list[str]:
    """``python -m srpo_eval.generate --backend vllm`` on the MMMU-Pro look-alike (2 questions, the first with two
    images) as a user runs it; asserts both were generated by vLLM from ``model_dir``; returns the command."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "srpo_eval.generate", "--model", str(model_dir), "--data", str(data),
           "--out", str(out), "--backend", "vllm", "--max-new-tokens", "4", "--max-model-len", "2048",
           "--max-images", "2", "--batch-size", "2"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "2 generated, 0 already done, of 2 questions" in proc.stdout
    recs = read_jsonl(out)
    assert [r["id"] for r in recs] == ["mmmu_pro-test_Art_1", "mmmu_pro-test_Math_2"]
    for r in recs:
        assert r["source"] == "vllm" and r["model"] == str(model_dir) and isinstance(r["response"], str)
        assert 1 <= r["response_tokens"] <= 4 and r["finish_reason"] in ("stop", "length")
    return cmd
