"""recipe.srpo.reward_manager: the SRPO reward gets real token counts through verl's reward manager."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

import srpo_reward
from recipe.srpo.compose import compose
from recipe.srpo.reward_manager import SRPORewardManager, token_counts, with_token_counts
from srpo_reward.length import TOKEN_COUNTS_KEY

WELL_FORMED = (
    "<think>First I add the two sides and get 5.</think> <answer>5</answer> "
    "<reflection>I added instead of subtracting; the difference is what was asked, so it is 1.</reflection> "
    "<think>Subtracting gives 1.</think> <answer>1</answer>"
)


@pytest.fixture(scope="module")
def tokenizer(tiny_qwen_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_qwen_dir))


def test_token_counts_use_the_tokenizer(tokenizer):
    counts = token_counts(tokenizer, WELL_FORMED)
    parsed = srpo_reward.parse_response(WELL_FORMED)
    assert counts == {
        "total": len(tokenizer.encode(WELL_FORMED, add_special_tokens=False)),
        "first_attempt": len(tokenizer.encode(parsed.first_attempt, add_special_tokens=False)),
    }
    assert token_counts(tokenizer, "no format") is None


def test_valid_length_given_by_the_manager_is_l(tokenizer):
    from recipe.srpo.reward_manager import VALID_TOKENS_KEY

    info = with_token_counts(tokenizer, {"index": 1, VALID_TOKENS_KEY: 999}, WELL_FORMED)
    assert info[TOKEN_COUNTS_KEY]["total"] == 999 and VALID_TOKENS_KEY not in info
    assert info[TOKEN_COUNTS_KEY]["first_attempt"] == token_counts(tokenizer, WELL_FORMED)["first_attempt"]


def test_with_token_counts_copies_the_shared_dict(tokenizer):
    shared = {"index": 3, TOKEN_COUNTS_KEY: {"total": 1, "first_attempt": 1}}  # a stale count of another rollout
    info = with_token_counts(tokenizer, shared, WELL_FORMED)
    assert info is not shared and shared[TOKEN_COUNTS_KEY] == {"total": 1, "first_attempt": 1}
    assert info[TOKEN_COUNTS_KEY] == token_counts(tokenizer, WELL_FORMED)
    assert TOKEN_COUNTS_KEY not in with_token_counts(tokenizer, shared, "malformed")


def test_recipe_config_loads_the_manager_and_the_length_term_is_in_tokens(tiny_qwen_dir, tokenizer):
    from verl import DataProto
    from verl.trainer.ppo.reward import load_reward_manager

    cfg = compose("srpo_trainer", [f"actor_rollout_ref.model.path={tiny_qwen_dir}"])
    kwargs = dict(cfg.reward.custom_reward_function.reward_kwargs)
    manager = load_reward_manager(cfg, tokenizer)
    assert isinstance(manager, SRPORewardManager)

    ids = tokenizer.encode(WELL_FORMED, add_special_tokens=False)
    prompt = tokenizer.encode("question", add_special_tokens=False)
    data = DataProto.from_dict(
        tensors={
            "prompts": torch.tensor([prompt]),
            "responses": torch.tensor([ids]),
            "attention_mask": torch.ones(1, len(prompt) + len(ids), dtype=torch.long),
        },
        non_tensors={
            "data_source": np.array(["hiyouga/geometry3k"], dtype=object),
            "reward_model": np.array([{"ground_truth": "1"}], dtype=object),
            "extra_info": np.array([{"index": 0}], dtype=object),
        },
    )

    async def score():
        manager.loop = asyncio.get_running_loop()
        return await manager.run_single(data)

    out = asyncio.run(score())
    counts = token_counts(tokenizer, WELL_FORMED, total=len(ids))  # L: the valid response tokens
    assert out["reward_extra_info"]["len_ratio"] == pytest.approx(counts["total"] / counts["first_attempt"])
    approx = srpo_reward.compute_score("hiyouga/geometry3k", WELL_FORMED, "1", {"index": 0}, **kwargs)
    tokens = srpo_reward.compute_score("hiyouga/geometry3k", WELL_FORMED, "1",
                                       {"index": 0, TOKEN_COUNTS_KEY: counts}, **kwargs)
    assert out["reward_score"] == pytest.approx(tokens["score"])
    assert approx["len_ratio"] != tokens["len_ratio"]  # the tiny tokenizer is not the approx_tokens unit
