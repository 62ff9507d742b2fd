"""SRPODataset / SRPOSFTDataset: the SRPO prompt and the image cap applied through verl's own loaders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _data import GEO3K_INSTRUCTION, IN_PROCESS_FILTER, write_geo3k_parquet, write_sft_parquet  # noqa: E402

from recipe.srpo.dataset import apply_srpo_prompt, cap_image_pixels, has_srpo_prompt, question_of  # noqa: E402
from srpo_reward import render_prompt  # noqa: E402

GEO = "<image>Find x. " + GEO3K_INSTRUCTION


@pytest.mark.parametrize(
    "messages, extra_info, expected_user",
    [
        pytest.param(
            [{"role": "user", "content": GEO}], {"question": "<image>Find x."},
            "<image>" + render_prompt("Find x."), id="geo3k-row-uses-extra_info-question",
        ),
        pytest.param(
            [{"role": "user", "content": "<image>What is 2+2?"}], None,
            "<image>" + render_prompt("What is 2+2?"), id="no-extra-info-uses-user-text",
        ),
        pytest.param(
            [{"role": "user", "content": "<image>Compare <image> these."}], {},
            "<image><image>" + render_prompt("Compare  these."), id="two-images-kept-in-front",
        ),
        pytest.param(
            [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "<image>Q?"}], {"question": "Q?"},
            "<image>" + render_prompt("Q?"), id="system-turn-kept",
        ),
        pytest.param(
            [{"role": "user", "content": "<image>" + render_prompt("Already done?")}], {"question": "Other"},
            "<image>" + render_prompt("Already done?"), id="srpo-prompt-left-as-is",
        ),
    ],
)
def test_apply_srpo_prompt(messages, extra_info, expected_user):
    original = [dict(m) for m in messages]
    out = apply_srpo_prompt(messages, extra_info)
    assert out[-1] == {"role": "user", "content": expected_user}
    assert out[:-1] == messages[:-1]
    assert messages == original  # inputs are not mutated


def test_question_of_needs_a_user_turn():
    with pytest.raises(ValueError, match="no user turn"):
        question_of([{"role": "assistant", "content": "x"}], None)


def test_has_srpo_prompt():
    assert has_srpo_prompt(render_prompt("q"))
    assert not has_srpo_prompt(GEO)


@pytest.mark.parametrize(
    "images, cap, expected",
    [
        pytest.param([{"bytes": b"x"}], 100, [{"bytes": b"x", "max_pixels": 100}], id="dict-gets-cap"),
        pytest.param([{"bytes": b"x", "max_pixels": 9}], 100, [{"bytes": b"x", "max_pixels": 100}], id="cap-replaces"),
        pytest.param(["a.png"], 100, ["a.png"], id="path-untouched"),
        pytest.param([{"bytes": b"x"}], None, [{"bytes": b"x"}], id="no-cap"),
        pytest.param(None, 100, None, id="no-images"),
    ],
)
def test_cap_image_pixels(images, cap, expected):
    assert cap_image_pixels(images, cap) == expected


def test_cap_image_pixels_rejects_nonpositive():
    with pytest.raises(ValueError, match="max_image_pixels"):
        cap_image_pixels([{"bytes": b"x"}], 0)


@pytest.fixture(scope="module")
def tiny_model_cfg(tiny_qwen_dir):
    from verl.utils.config import omega_conf_to_dataclass

    from recipe.srpo.dry_run import GRPO_CONFIG, compose

    cfg = compose(GRPO_CONFIG, [f"actor_rollout_ref.model.path={tiny_qwen_dir}"])
    return omega_conf_to_dataclass(cfg.actor_rollout_ref.model)


def test_geo3k_parquet_through_verl_loader_gets_srpo_prompt(tmp_path, tiny_model_cfg):
    from verl.trainer.ppo.utils import create_rl_dataset

    from recipe.srpo.dataset import SRPODataset
    from recipe.srpo.dry_run import GRPO_CONFIG, compose

    path = write_geo3k_parquet(tmp_path / "train.parquet", rows=4)
    cfg = compose(GRPO_CONFIG, [f"data.train_files={path}", "data.shuffle=false", IN_PROCESS_FILTER])
    ds = create_rl_dataset([str(path)], cfg.data, tiny_model_cfg.tokenizer, tiny_model_cfg.processor, max_samples=4)
    assert isinstance(ds, SRPODataset) and len(ds) == 4
    item = ds[0]
    parts = item["raw_prompt"][-1]["content"]
    assert [p["type"] for p in parts] == ["image", "text"]
    assert parts[1]["text"] == render_prompt("Find x if x = 0 + 2.")
    assert GEO3K_INSTRUCTION not in parts[1]["text"]
    assert item["reward_model"]["ground_truth"] == "2"


def test_rl_image_cap_reaches_the_image(tmp_path, tiny_model_cfg):
    from verl.trainer.ppo.utils import create_rl_dataset

    from recipe.srpo.dry_run import GRPO_CONFIG, compose

    path = write_geo3k_parquet(tmp_path / "train.parquet", rows=1, image_size=(224, 224))
    sizes = {}
    for cap in ("null", "12544"):
        cfg = compose(GRPO_CONFIG, [f"data.max_image_pixels={cap}", "data.shuffle=false", IN_PROCESS_FILTER])
        ds = create_rl_dataset([str(path)], cfg.data, tiny_model_cfg.tokenizer, tiny_model_cfg.processor, max_samples=1)
        images, _, _ = type(ds)._process_multi_modal_info(ds[0]["raw_prompt"], ds.image_patch_size, cfg.data)
        sizes[cap] = images[0].size[0] * images[0].size[1]
    assert sizes["12544"] <= 12544 < sizes["null"]


def test_sft_dataset_caps_image_pixels(tmp_path, tiny_model_cfg):
    from verl.trainer.sft_trainer import create_sft_dataset

    from recipe.srpo.dataset import SRPOSFTDataset
    from recipe.srpo.dry_run import SFT_CONFIG, compose

    path = write_sft_parquet(tmp_path / "sft.parquet", rows=2, image_size=(224, 224))
    grids = {}
    for cap in ("null", "12544"):
        cfg = compose(SFT_CONFIG, [f"data.max_image_pixels={cap}"])
        ds = create_sft_dataset([str(path)], cfg.data, tiny_model_cfg.tokenizer, tiny_model_cfg.processor)
        assert isinstance(ds, SRPOSFTDataset)
        grid = ds[0]["multi_modal_inputs"]["image_grid_thw"][0]
        grids[cap] = int(grid[1] * grid[2]) * 14 * 14
    assert grids["12544"] <= 12544 < grids["null"]

