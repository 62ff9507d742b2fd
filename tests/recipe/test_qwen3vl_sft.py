"""Qwen3-VL through the SFT stage's dataset: image rows load, video rows are refused with a message.

verl 0.9.1's SFT dataset computes Qwen2-VL position ids for Qwen3-VL too; that matches for
images and crashes (IndexError) on a Qwen3-VL video, so SRPOSFTDataset refuses video rows first.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _data import write_sft_parquet  # noqa: E402

from recipe.srpo import dry_run  # noqa: E402
from recipe.srpo.dataset import QWEN3VL_SFT_VIDEO, has_video, is_qwen3vl_processor  # noqa: E402

TARGET = "<think>a</think> <answer>1</answer> <reflection>b</reflection> <think>c</think> <answer>1</answer>"


def _model_cfg(model_dir):
    from verl.utils.config import omega_conf_to_dataclass

    from recipe.srpo.dry_run import SFT_CONFIG, compose

    return omega_conf_to_dataclass(compose(SFT_CONFIG, [f"model.path={model_dir}"]).model)


def _dataset(path, model_cfg):
    from verl.trainer.sft_trainer import create_sft_dataset

    from recipe.srpo.dry_run import SFT_CONFIG, compose

    cfg = compose(SFT_CONFIG, [f"data.train_files={path}"])
    return create_sft_dataset([str(path)], cfg.data, model_cfg.tokenizer, model_cfg.processor)


def _write_video_sft(path: Path, rows: int, column: bool) -> Path:
    """SFT rows with a <video> placeholder (and, with ``column``, a videos column as verl reads one)."""
    records = []
    for _ in range(rows):
        record = {"messages": [{"role": "user", "content": "<video>What happens?"},
                               {"role": "assistant", "content": TARGET}]}
        if column:
            record["videos"] = [{"video": "/data/clip.mp4"}]
        records.append(record)
    pd.DataFrame(records).to_parquet(path)
    return path


@pytest.fixture(scope="module")
def qwen3vl_cfg(tiny_qwen3vl_dir):
    return _model_cfg(tiny_qwen3vl_dir)


def test_image_rows_load_with_qwen3vl_position_ids(tmp_path, qwen3vl_cfg):
    ds = _dataset(write_sft_parquet(tmp_path / "sft.parquet", rows=2, image_size=(64, 64)), qwen3vl_cfg)
    item = ds[0]
    grid = item["multi_modal_inputs"]["image_grid_thw"]
    image_pad = qwen3vl_cfg.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((item["input_ids"] == image_pad).sum()) == int(grid.prod()) // 4  # 64x64 -> 2x2 tokens
    assert item["position_ids"].shape[-1] == item["input_ids"].shape[-1]
    assert int(item["loss_mask"].sum()) > 0


@pytest.mark.parametrize("column", [True, False], ids=["videos-column", "placeholder-only"])
def test_video_rows_are_refused_for_qwen3vl(tmp_path, qwen3vl_cfg, column):
    ds = _dataset(_write_video_sft(tmp_path / "video.parquet", rows=1, column=column), qwen3vl_cfg)
    with pytest.raises(ValueError) as exc:
        ds[0]
    assert str(exc.value) == QWEN3VL_SFT_VIDEO
    assert "Drop the video rows from the SFT data" in str(exc.value)


@pytest.mark.parametrize(
    "example, expected",
    [
        pytest.param({"messages": [{"role": "user", "content": "<image>x"}], "images": [1]}, False, id="image-row"),
        pytest.param({"messages": [{"role": "user", "content": "x"}], "videos": []}, False, id="empty-videos"),
        pytest.param({"messages": [{"role": "user", "content": "x"}], "videos": ["a.mp4"]}, True, id="videos"),
        pytest.param({"messages": [{"role": "user", "content": "<video>x"}]}, True, id="placeholder"),
        pytest.param({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}, False,
                     id="list-content"),
    ],
)
def test_has_video(example, expected):
    assert has_video(example, "videos", "messages") is expected


def test_only_qwen3vl_processors_refuse_videos(tiny_qwen_dir, qwen3vl_cfg):
    assert is_qwen3vl_processor(qwen3vl_cfg.processor)
    assert not is_qwen3vl_processor(_model_cfg(tiny_qwen_dir).processor)  # Qwen2.5-VL: verl's own path
    assert not is_qwen3vl_processor(None)


def test_sft_dry_run_names_the_video_refusal(tmp_path, tiny_qwen3vl_dir):
    path = _write_video_sft(tmp_path / "video.parquet", rows=8, column=True)
    out = io.StringIO()
    code = dry_run.run(["sft", "--", f"model.path={tiny_qwen3vl_dir}", f"data.train_files={path}",
                        "data.train_batch_size=8", "trainer.nnodes=1", "trainer.n_gpus_per_node=8"], out=out)
    text = out.getvalue()
    assert code == 1, text
    assert "[  OK] sft: chat template" in text
    assert "[FAIL] sft: SFT rows -- ValueError: an SFT row has a video and the model is Qwen3-VL" in text
