"""verl reward manager that gives the SRPO reward real token counts for its length term.

The paper's f_len (eq. 8) compares the response length L with the first attempt's
length L1 in tokens.  ``srpo_reward.compute_score`` sees only strings, so on its own
it counts tokenizer-free ``approx_tokens``; it uses real counts when
``extra_info["srpo_token_counts"] = {"total": L, "first_attempt": L1}`` is given
(:data:`srpo_reward.length.TOKEN_COUNTS_KEY`).  This manager is verl 0.9.1's
``NaiveRewardManager`` (``verl/experimental/reward_loop/reward_manager/naive.py``)
with one change: L is the response's valid token count (its attention mask, as the
policy generated it) and L1 the policy tokenizer's count of the first attempt
``<think>T1</think> <answer>A1</answer>`` of the decoded response; both go to
``compute_score`` in a copy of ``extra_info`` (the rollouts of one prompt share one
dict, and the reward runs in worker threads).  A response without the SRPO
format gets no counts (its f_len is 0 either way).

The recipe selects it in ``srpo_trainer.yaml``::

    reward.reward_manager.source: importlib
    reward.reward_manager.name: SRPORewardManager
    reward.reward_manager.module.path: pkg://recipe.srpo.reward_manager
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

from srpo_reward import parse_response
from srpo_reward.length import TOKEN_COUNTS_KEY


#: Where :class:`SRPORewardManager` hands the valid response length to the scoring call (removed there).
VALID_TOKENS_KEY = "_srpo_valid_response_tokens"


def token_counts(tokenizer: Any, response: str, total: int | None = None) -> dict[str, int] | None:
    """``{"total": L, "first_attempt": L1}`` in the tokenizer's tokens, or None without the SRPO format.

    ``total``: the response's generated token count when known (else the decoded text is re-encoded).
    """
    parsed = parse_response(response)
    if not parsed.ok or not parsed.first_attempt:
        return None
    if total is None:
        total = len(tokenizer.encode(response, add_special_tokens=False))
    first = len(tokenizer.encode(parsed.first_attempt, add_special_tokens=False))
    return {"total": total, "first_attempt": first} if total > 0 and first > 0 else None


def with_token_counts(tokenizer: Any, extra_info: Any, response: Any) -> dict:
    """A copy of ``extra_info`` with :func:`token_counts` of ``response`` (never the caller's dict)."""
    info = dict(extra_info) if isinstance(extra_info, Mapping) else {}
    total = info.pop(VALID_TOKENS_KEY, None)
    total = int(total) if isinstance(total, int) and not isinstance(total, bool) and total > 0 else None
    counts = token_counts(tokenizer, response, total) if isinstance(response, str) else None
    if counts is not None:
        info[TOKEN_COUNTS_KEY] = counts
    else:
        info.pop(TOKEN_COUNTS_KEY, None)
    return info


def _safe_counts(tokenizer: Any, extra_info: Any, response: Any) -> dict:
    # A tokenizer failure must not fail the training step: the reward falls back to approx_tokens.
    try:
        return with_token_counts(tokenizer, extra_info, response)
    except Exception:  # noqa: BLE001
        info = dict(extra_info) if isinstance(extra_info, Mapping) else {}
        info.pop(VALID_TOKENS_KEY, None)
        return info


def _counting(compute_score: Callable[..., Any], tokenizer: Any) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(compute_score):

        @functools.wraps(compute_score)
        async def counted_async(*, solution_str: Any, extra_info: Any = None, **kwargs: Any) -> Any:
            info = _safe_counts(tokenizer, extra_info, solution_str)
            return await compute_score(solution_str=solution_str, extra_info=info, **kwargs)

        return counted_async

    @functools.wraps(compute_score)
    def counted(*, solution_str: Any, extra_info: Any = None, **kwargs: Any) -> Any:
        info = _safe_counts(tokenizer, extra_info, solution_str)
        return compute_score(solution_str=solution_str, extra_info=info, **kwargs)

    return counted


class SRPORewardManager(NaiveRewardManager):
    """verl's naive reward manager; the reward function gets the response's token counts."""

    def __init__(self, config: Any, tokenizer: Any, compute_score: Any, *args: Any, **kwargs: Any):
        super().__init__(config, tokenizer, compute_score, *args, **kwargs)
        self.compute_score = _counting(self.compute_score, tokenizer)
        self.is_async_reward_score = inspect.iscoroutinefunction(self.compute_score)

    async def run_single(self, data: Any) -> dict:
        # verl scores the last sequence of ``data`` (naive.py); its valid length is L.
        import numpy as np

        item = data[-1]
        response_length = item.batch["responses"].shape[-1]
        valid = int(item.batch["attention_mask"][-response_length:].sum())
        infos = data.non_tensor_batch.get("extra_info")
        if infos is None:
            infos = np.array([{} for _ in range(len(data))], dtype=object)
            data.non_tensor_batch["extra_info"] = infos
        own = infos[-1] if isinstance(infos[-1], Mapping) else {}
        infos[-1] = {**own, VALID_TOKENS_KEY: valid}  # a new dict for this sample only
        return await super().run_single(data)
