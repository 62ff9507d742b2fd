"""Small parquet files in the layouts the recipe reads (built offline for the recipe's tests).

- ``write_geo3k_parquet``: the layout of verl's own ``examples/data_preprocess/geo3k.py``
  (a user's existing RL parquet: plain prompt, ``extra_info.question``), which
  ``SRPODataset`` must turn into SRPO prompts on the fly;
- ``write_sft_parquet``: verl's multi-turn SFT layout (``messages`` + ``images``) with
  five-block SRPO targets, as ``srpo_data.build_reflections`` writes it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from srpo_data.offline.demo import png_bytes, srpo_target, write_builder_sft, write_raw_geometry3k  # noqa: F401
from srpo_data.offline.demo import problem as _problem
from srpo_reward.prompts import render_prompt

# verl's overlong-prompt filter in the loading process: the GPU config's worker pool (datasets forks it)
# deadlocked in test processes that had already used the tokenizer.
IN_PROCESS_FILTER = "data.filter_overlong_prompts_workers=null"

GEO3K_INSTRUCTION = (
    "You FIRST think about the reasoning process as an internal monologue and then provide the final answer. "
    "The reasoning process MUST BE enclosed within <think> </think> tags. The final answer MUST BE put in \\boxed{}."
)


def write_geo3k_parquet(
    path: Path, rows: int, split: str = "train", image_size: tuple[int, int] = (56, 56),
    sizes: list[int] | None = None,
) -> Path:
    """``sizes``: row i gets a square image of sizes[i] instead of ``image_size``."""
    records = []
    for i in range(rows):
        problem, answer = _problem(i)
        size = (sizes[i], sizes[i]) if sizes is not None else image_size
        records.append(
            {
                "data_source": "hiyouga/geometry3k",
                "prompt": [{"role": "user", "content": problem + " " + GEO3K_INSTRUCTION}],
                "images": [{"bytes": png_bytes(i, size), "path": None}],
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
        target = srpo_target(answer)
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


def write_raw_geometry3k_sizes(folder: Path, train_sizes: list[int], test_rows: int) -> Path:
    """hiyouga/geometry3k layout (prepare_rl's input) whose train row i has a square image of train_sizes[i]."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, sizes in (("train", train_sizes), ("test", [56] * test_rows)):
        rows = []
        for i, size in enumerate(sizes):
            question, answer = _problem(i)
            rows.append({"problem": question, "answer": answer, "id": f"{split}-{i}",
                         "images": [{"bytes": png_bytes(i, (size, size)), "path": None}]})
        pd.DataFrame(rows).to_parquet(folder / f"{split}-00000-of-00001.parquet")
    return folder

