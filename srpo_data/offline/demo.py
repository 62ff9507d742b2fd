"""A small offline demo workspace: the tiny Qwen2.5-VL, a geometry3k look-alike and SFT data.

    python -m srpo_data.offline.demo --out /tmp/srpo-demo [--family qwen3vl]

writes ``OUT/tiny-qwen`` (the random-weight model of :mod:`srpo_data.offline.tiny_qwen`, or with
``--family qwen3vl`` the Qwen3-VL of :mod:`srpo_data.offline.tiny_qwen3vl`) and, under
``OUT/data``, the inputs the run scripts expect with ``DATA_DIR=OUT/data``:
``raw/geometry3k`` (the public hiyouga/geometry3k parquet layout, input of
``srpo_data.prepare_rl``), ``sft/sft.parquet`` (SFT data written by the reflection
builder's own writer, with five-block targets made here instead of by endpoints) and
``reflection_builder.yaml`` (endpoint config for the builder; the dry run only validates
it).  Used by ``examples/cpu_dry_run.sh`` and the recipe's tests.  Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pandas as pd
from PIL import Image

from srpo_reward.prompts import render_prompt

BUILDER_YAML = (
    'policy: {base_url: "http://localhost:8000/v1", model: policy}\n'
    'teacher: {base_url: "http://localhost:8001/v1", model: teacher}\n'
)


def png_bytes(i: int, size: tuple[int, int] = (56, 56)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, ((37 * i) % 256, (91 * i) % 256, 128)).save(buf, format="PNG")
    return buf.getvalue()


def problem(i: int) -> tuple[str, str]:
    """(question with one ``<image>``, ground truth): odd rows multiple choice, even rows numbers."""
    if i % 2:
        return f"<image>Which option is the angle {i}? A. {i} B. {i + 1} C. {i + 2}", "B"
    return f"<image>Find x if x = {i} + 2.", str(i + 2)


def srpo_target(answer: str) -> str:
    return (
        f"<think> Work it out. </think> <answer> \\boxed{{{answer}}} </answer> "
        "<reflection> The steps check out. </reflection> "
        f"<think> Confirmed. </think> <answer> \\boxed{{{answer}}} </answer>"
    )


def write_raw_geometry3k(folder: Path, train_rows: int, test_rows: int, problems=None) -> Path:
    """The public hiyouga/geometry3k layout (problem, answer, images), the input of srpo_data.prepare_rl.

    ``problems(split, i) -> (question with one <image>, ground truth)``; default :func:`problem`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train_rows), ("test", test_rows)):
        rows = []
        for i in range(n):
            question, answer = problems(split, i) if problems else problem(i)
            rows.append({"problem": question, "answer": answer, "images": [{"bytes": png_bytes(i), "path": None}],
                         "id": f"{split}-{i}"})
        pd.DataFrame(rows).to_parquet(folder / f"{split}-00000-of-00001.parquet")
    return folder


def write_builder_sft(out_dir: Path, rows: int) -> Path:
    """SFT data written by srpo_data.build_reflections' own writer (no endpoints: targets made here)."""
    from srpo_data.stage1.builder.inputs import Sample
    from srpo_data.stage1.builder.outputs import SFT_PARQUET, write_outputs

    kept = []
    for i in range(rows):
        question, answer = problem(i)
        question = question.replace("<image>", "")
        sample = Sample(
            sample_id=f"s{i}", row=i, question=question, ground_truth=answer, images=(png_bytes(i),),
            sft_prompt=({"role": "user", "content": "<image>" + render_prompt(question)},),
            data_source="hiyouga/geometry3k",
        )
        kept.append((sample, srpo_target(answer), True))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_outputs(out_dir, kept, "srpo_demo")
    return out_dir / SFT_PARQUET


#: The model families a demo workspace can hold (``--family``; ``MODEL_FAMILY`` of the CPU scripts).
FAMILIES = ("qwen25vl", "qwen3vl")


def build_tiny_model(folder: Path, family: str = "qwen25vl") -> Path:
    """The tiny random-weight model of ``family``: Qwen2.5-VL (:mod:`.tiny_qwen`) or Qwen3-VL Instruct."""
    if family == "qwen25vl":
        from srpo_data.offline.tiny_qwen import build_tiny_qwen25vl

        return build_tiny_qwen25vl(folder)
    if family == "qwen3vl":
        from srpo_data.offline.tiny_qwen3vl import build_tiny_qwen3vl

        return build_tiny_qwen3vl(folder)
    raise ValueError(f"unknown model family {family!r}; use one of {', '.join(FAMILIES)}")


def build_demo(
    out: Path, train_rows: int = 128, test_rows: int = 8, sft_rows: int = 256, family: str = "qwen25vl"
) -> dict[str, Path]:
    out = Path(out)
    data = out / "data"
    paths = {
        "model": build_tiny_model(out / "tiny-qwen", family),
        "raw": write_raw_geometry3k(data / "raw/geometry3k", train_rows, test_rows),
        "sft": write_builder_sft(data / "sft", sft_rows),
        "builder_yaml": data / "reflection_builder.yaml",
        "data": data,
    }
    paths["builder_yaml"].write_text(BUILDER_YAML)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--train-rows", type=int, default=128)
    ap.add_argument("--test-rows", type=int, default=8)
    ap.add_argument("--sft-rows", type=int, default=256)
    ap.add_argument("--family", choices=FAMILIES, default="qwen25vl",
                    help="the tiny model in OUT/tiny-qwen: Qwen2.5-VL (default) or Qwen3-VL (Instruct template)")
    args = ap.parse_args(argv)
    paths = build_demo(args.out, args.train_rows, args.test_rows, args.sft_rows, args.family)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
