"""The tiny Qwen3-VL through verl's RL prompt path (SRPODataset) and the data stage's token counting.

prepare_rl sizes prompts with ``srpo_data.rl.prompt_length`` so that verl's length filter drops
none at training time; with Qwen3-VL's patch 16 (one image token per 32x32 pixels) its image
token count must still equal what verl's dataset and the processor make of the same image.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _data import IN_PROCESS_FILTER, write_geo3k_parquet  # noqa: E402

from recipe.srpo.dataset import has_srpo_prompt  # noqa: E402


@pytest.fixture(scope="module")
def qwen3vl_cfg(tiny_qwen3vl_dir):
    from verl.utils.config import omega_conf_to_dataclass

    from recipe.srpo.dry_run import GRPO_CONFIG, compose

    return omega_conf_to_dataclass(compose(GRPO_CONFIG, [f"actor_rollout_ref.model.path={tiny_qwen3vl_dir}"])
                                   .actor_rollout_ref.model)


def _image_tokens(tmp_path, model_cfg, size, *overrides) -> tuple[int, int]:
    """(dataset's image_patch_size, <|image_pad|> tokens of a one-image row through SRPODataset + processor)."""
    from verl.trainer.ppo.utils import create_rl_dataset
    from verl.utils.tokenizer import build_multimodal_processor_inputs

    from recipe.srpo.dataset import SRPODataset
    from recipe.srpo.dry_run import GRPO_CONFIG, compose

    processor = model_cfg.processor
    path = write_geo3k_parquet(tmp_path / "train.parquet", rows=1, image_size=size)
    cfg = compose(GRPO_CONFIG, [f"data.train_files={path}", "data.shuffle=false", IN_PROCESS_FILTER, *overrides])
    ds = create_rl_dataset([str(path)], cfg.data, model_cfg.tokenizer, processor, max_samples=1)
    assert isinstance(ds, SRPODataset)
    messages = ds[0]["raw_prompt"]
    assert has_srpo_prompt(messages[-1]["content"][-1]["text"])
    images, videos, audios = type(ds)._process_multi_modal_info(messages, ds.image_patch_size, cfg.data)
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text.endswith("<|im_start|>assistant\n")  # the Instruct template: no <think> prefill
    inputs = build_multimodal_processor_inputs(processor, text=[text], images=images, videos=videos, audio=audios)
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    return ds.image_patch_size, int((inputs["input_ids"][0] == pad).sum())


# (width, height) of the row's image -> <|image_pad|> tokens: Qwen's resize to multiples of 32, then
# at most the tiny processor's 256 tokens
@pytest.mark.parametrize("size, tokens", [((100, 80), 6), ((300, 200), 54), ((1024, 1024), 256)],
                         ids=["100x80", "300x200", "1024x1024-capped"])
def test_rl_row_through_verl_matches_the_data_stage_count(tmp_path, qwen3vl_cfg, size, tokens):
    from srpo_data.rl.prompt_length import PromptLengthCounter

    # data.image_patch_size=16 as the Qwen3-VL run scripts pass it (IMAGE_PATCH)
    assert _image_tokens(tmp_path, qwen3vl_cfg, size, "data.image_patch_size=16") == (16, tokens)
    assert PromptLengthCounter(qwen3vl_cfg.processor).image_tokens(*size) == tokens


def test_verl_default_patch_miscounts_qwen3vl_images(tmp_path, qwen3vl_cfg):
    # verl's RL data config says image_patch_size 14: 100x80 is resized to 112x84 (multiples of 28), which
    # the processor rounds to 12 tokens, not the 6 the rollout (patch 16 from the processor) gets
    assert _image_tokens(tmp_path, qwen3vl_cfg, (100, 80)) == (14, 12)


def _dry_grpo(model_dir, *extra: str) -> str:
    import io

    from recipe.srpo import dry_run

    out = io.StringIO()
    dry_run.run(["grpo", "--", f"actor_rollout_ref.model.path={model_dir}", "data.train_files=/not/read.parquet",
                 "data.val_files=/not/read.parquet", "trainer.nnodes=1", "trainer.n_gpus_per_node=8", *extra], out=out)
    return out.getvalue()


def test_grpo_dry_run_refuses_verls_default_patch_for_qwen3vl(tiny_qwen3vl_dir):
    out = _dry_grpo(tiny_qwen3vl_dir)
    fails = [line for line in out.splitlines() if line.startswith("[FAIL]")]
    assert len(fails) == 1 and fails[0].startswith("[FAIL] grpo: image patch -- data.image_patch_size=14 but the "
                                                   "model's processor has patch size 16"), out
    assert "Set data.image_patch_size=16 (IMAGE_PATCH=16 in the run scripts)" in fails[0]


@pytest.mark.parametrize("model, extra", [("tiny_qwen3vl_dir", ["data.image_patch_size=16"]), ("tiny_qwen_dir", [])],
                         ids=["qwen3vl-16", "qwen25vl-default-14"])
def test_grpo_dry_run_accepts_the_model_patch(request, model, extra):
    out = _dry_grpo(request.getfixturevalue(model), *extra)
    assert "[  OK] grpo: image patch -- data.image_patch_size=" in out and "= the processor's patch size" in out
    assert "[FAIL] grpo: RL data" in out  # the next checks run (and stop at the data files, not read here)
