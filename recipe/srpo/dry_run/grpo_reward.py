"""GRPO dry-run checks of the reward: verl's loader and reward manager, synthetic rollouts scored through it."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from recipe.srpo.checks import ConfigError
from recipe.srpo.dry_run.common import quiet

def reward_manager(cfg: DictConfig, tokenizer: Any) -> tuple[Any, Callable[..., Any]]:
    from verl.trainer.ppo.reward import get_custom_reward_fn, load_reward_manager, resolve_reward_manager_cls

    fn = get_custom_reward_fn(cfg)
    if fn is None:
        raise ConfigError(
            "reward.custom_reward_function.path is empty: verl would use its default scorer. "
            "Set reward.custom_reward_function.path=pkg://srpo_reward"
        )
    resolve_reward_manager_cls(cfg)
    with quiet():
        manager = load_reward_manager(cfg, tokenizer)
    return manager, fn


def synthetic_responses(ground_truth: str) -> dict[str, str]:
    """A fixed-by-reflection response and a malformed one, built from a row's ground truth."""
    gt = ground_truth.strip()
    if re.fullmatch(r"[A-Ea-e]", gt):
        wrong = "B" if gt.upper() != "B" else "C"
    else:
        wrong = "-987654321" if gt != "-987654321" else "123456789"
    fixed = (
        f"<think> First try. </think> <answer> \\boxed{{{wrong}}} </answer> "
        "<reflection> The first answer used the wrong relation; redo the computation. </reflection> "
        f"<think> Recomputed carefully. </think> <answer> \\boxed{{{gt}}} </answer>"
    )
    malformed = f"<answer> \\boxed{{{gt}}} </answer>"
    return {"fixed": fixed, "malformed": malformed}


def rollout_ids(tokenizer: Any, response: str) -> list[int]:
    """A synthetic rollout's response tokens as the policy would end them (with its eos token)."""
    return tokenizer(response + (tokenizer.eos_token or ""), add_special_tokens=False)["input_ids"]


def score_with_manager(manager: Any, tokenizer: Any, prompt_text: str, response: str, sample: dict) -> dict:
    """One response through verl's reward manager, as its reward loop calls it (a one-row DataProto)."""
    import numpy as np
    import torch
    from verl import DataProto

    prompt_ids = tokenizer(prompt_text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    response_ids = torch.tensor([rollout_ids(tokenizer, response)])
    attention = torch.ones(1, prompt_ids.shape[1] + response_ids.shape[1], dtype=torch.long)
    data = DataProto.from_dict(
        tensors={"prompts": prompt_ids, "responses": response_ids, "attention_mask": attention},
        non_tensors={
            "data_source": np.array([sample["data_source"]], dtype=object),
            "reward_model": np.array([{"ground_truth": sample["ground_truth"]}], dtype=object),
            "extra_info": np.array([dict(sample["extra_info"])], dtype=object),
        },
    )
    out = manager.loop.run_until_complete(manager.run_single(data))
    return {"reward_score": float(out["reward_score"]), **out["reward_extra_info"]}


def check_scoring(cfg: DictConfig, manager: Any, tokenizer: Any, samples: list[dict], kwargs: dict) -> str:
    import srpo_reward

    from recipe.srpo.reward_manager import VALID_TOKENS_KEY, SRPORewardManager, with_token_counts

    metric = cfg.algorithm.filter_groups.metric if cfg.algorithm.filter_groups.enable else None
    # The recipe's manager passes the policy tokenizer's token counts; the direct call gets the same.
    counts = isinstance(manager, SRPORewardManager)
    checked = 0
    for sample in samples[:2]:
        responses = synthetic_responses(sample["ground_truth"])
        scores = {}
        for name, response in responses.items():
            via_verl = score_with_manager(manager, tokenizer, sample["prompt_text"], response, sample)
            if counts:  # L: the response's tokens as score_with_manager feeds them
                valid = len(rollout_ids(tokenizer, response))
                info = with_token_counts(tokenizer, {**sample["extra_info"], VALID_TOKENS_KEY: valid}, response)
            else:
                info = dict(sample["extra_info"])
            direct = srpo_reward.compute_score(sample["data_source"], response, sample["ground_truth"], info, **kwargs)
            if not math.isclose(via_verl["reward_score"], direct["score"], abs_tol=1e-9):
                raise ConfigError(
                    f"verl's reward manager scored {via_verl['reward_score']} but compute_score gives {direct['score']} "
                    f"for the '{name}' rollout of ground truth {sample['ground_truth']!r}"
                )
            if metric and metric != "reward" and metric not in via_verl:
                raise ConfigError(
                    f"algorithm.filter_groups.metric={metric} is not a key of the reward's output "
                    f"({sorted(via_verl)}): use metric=acc"
                )
            scores[name] = via_verl
        fixed = scores["fixed"]
        if not (fixed["acc"] == 1 and fixed["acc_first"] == 0 and fixed["fixed"] == 1):
            raise ConfigError(
                f"a correct revision of ground truth {sample['ground_truth']!r} was not graded as fixed "
                f"(acc={fixed['acc']}, acc_first={fixed['acc_first']}, fixed={fixed['fixed']}): check the "
                "ground-truth column and the grader"
            )
        if not fixed["reward_score"] > scores["malformed"]["reward_score"]:
            raise ConfigError("a well-formed fixed response does not outscore a malformed one: check the weights")
        checked += len(responses)
    return (
        f"{checked} rollouts through {type(manager).__name__} equal direct compute_score"
        f"{' with token counts' if counts else ''}; "
        f"filter metric '{metric}' present; fixed > malformed"
    )


