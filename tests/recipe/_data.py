"""Small parquet files in the layouts the recipe reads (built offline for the recipe's tests).

- ``write_geo3k_parquet``: the layout of verl's own ``examples/data_preprocess/geo3k.py``
  (a user's existing RL parquet: plain prompt, ``extra_info.question``), which
  ``SRPODataset`` must turn into SRPO prompts on the fly;
- ``write_sft_parquet``: verl's multi-turn SFT layout (``messages`` + ``images``) with
  five-block SRPO targets, as ``srpo_data.build_reflections`` writes it.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from PIL import Image

from srpo_reward.prompts import render_prompt

GEO3K_INSTRUCTION = (
    "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. "
    "The reasoning process MUST BE enclosed within <think> </think> tags. The final answer MUST BE put in \\boxed{}."
)


def png_bytes(i: int, size: tuple[int, int] = (56, 56)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, ((37 * i) % 256, (91 * i) % 256, 128)).save(buf, format="PNG")
    return buf.getvalue()


def _problem(i: int) -> tuple[str, str]:
    if i % 2:
        return f"<image>Which option is the angle {i}? A. {i} B. {i + 1} C. {i + 2}", "B"
    return f"<image>Find x if x = {i} + 2.", str(i + 2)


def write_geo3k_parquet(path: Path, rows: int, split: str = "train", image_size: tuple[int, int] = (56, 56)) -> Path:
    records = []
    for i in range(rows):
        problem, answer = _problem(i)
        records.append(
            {
                "data_source": "hiyouga/geometry3k",
                "prompt": [{"role": "user", "content": problem + " " + GEO3K_INSTRUCTION}],
                "images": [{"bytes": png_bytes(i, image_size), "path": None}],
                "ability": "math",
                "reward_model": {"style": "rule", "ground_truth": answer},
                "extra_info": {"split": split, "index": i, "answer": answer, "question": problem},
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records).to_parquet(path)
    return path


def write_sft_parquet(path: Path, rows: int, image_size: tuple[int, int] = (56, 56)) -> Path:
    records = []
    for i in range(rows):
        problem, answer = _problem(i)
        question = problem.replace("<image>", "")
        target = (
            f"<think> Work it out. </think> <answer> \\boxed{{{answer}}} </answer> "
            "<reflection> The steps check out. </reflection> "
            f"<think> Confirmed. </think> <answer> \\boxed{{{answer}}} </answer>"
        )
        records.append(
            {
                "messages": [
                    {"role": "user", "content": "<image>" + render_prompt(question)},
                    {"role": "assistant", "content": target},
                ],
                "images": [{"bytes": png_bytes(i, image_size), "path": None}],
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(records).to_parquet(path)
    return path


def write_raw_geometry3k(folder: Path, train_rows: int, test_rows: int) -> Path:
    """The public hiyouga/geometry3k layout (problem, answer, images), the input of srpo_data.prepare_rl."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train_rows), ("test", test_rows)):
        rows = []
        for i in range(n):
            problem, answer = _problem(i)
            rows.append({"problem": problem, "answer": answer, "images": [{"bytes": png_bytes(i), "path": None}],
                         "id": f"{split}-{i}"})
        pd.DataFrame(rows).to_parquet(folder / f"{split}-00000-of-00001.parquet")
    return folder


def write_builder_sft(out_dir: Path, rows: int) -> Path:
    """SFT data written by srpo_data.build_reflections' own writer (no endpoints: targets made here)."""
    from srpo_data.builder.inputs import Sample
    from srpo_data.builder.outputs import SFT_PARQUET, write_outputs

    kept = []
    for i in range(rows):
        problem, answer = _problem(i)
        question = problem.replace("<image>", "")
        sample = Sample(
            sample_id=f"s{i}", row=i, question=question, ground_truth=answer, images=(png_bytes(i),),
            sft_prompt=({"role": "user", "content": "<image>" + render_prompt(question)},),
            data_source="hiyouga/geometry3k",
        )
        target = (
            f"<think> Work it out. </think> <answer> \\boxed{{{answer}}} </answer> "
            "<reflection> The steps check out. </reflection> "
            f"<think> Confirmed. </think> <answer> \\boxed{{{answer}}} </answer>"
        )
        kept.append((sample, target, True))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_outputs(out_dir, kept, "srpo_test")
    return out_dir / SFT_PARQUET
