"""verl reward manager that gives the SRPO reward real token counts for its length term.

The paper's f_len (eq. 8) compares the response length L with the first attempt's
length L1 in tokens.  ``srpo_reward.compute_score`` sees only strings, so on its own
it counts tokenizer-free ``approx_tokens``; it uses real counts when
``extra_info["srpo_token_counts"] = {"total": L, "first_attempt": L1}`` is given
(:data:`srpo_reward.length.TOKEN_COUNTS_KEY`).  This manager is verl 0.9.1's
``NaiveRewardManager`` (``verl/experimental/reward_loop/reward_manager/naive.py``)
with one change: before each call it counts, with the policy's own tokenizer, the
decoded response (L) and its first attempt ``<think>T1</think> <answer>A1</answer>``
(L1), and passes them in a copy of ``extra_info`` (the rollouts of one prompt share
one dict, and the reward runs in worker threads).  A response without the SRPO
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


def token_counts(tokenizer: Any, response: str) -> dict[str, int] | None:
    """``{"total": L, "first_attempt": L1}`` in the tokenizer's tokens, or None without the SRPO format."""
    parsed = parse_response(response)
    if not parsed.ok or not parsed.first_attempt:
        return None
    total = len(tokenizer.encode(response, add_special_tokens=False))
    first = len(tokenizer.encode(parsed.first_attempt, add_special_tokens=False))
    return {"total": total, "first_attempt": first} if total > 0 and first > 0 else None


def with_token_counts(tokenizer: Any, extra_info: Any, response: Any) -> dict:
    """A copy of ``extra_info`` with :func:`token_counts` of ``response`` (never the caller's dict)."""
    info = dict(extra_info) if isinstance(extra_info, Mapping) else {}
    counts = token_counts(tokenizer, response) if isinstance(response, str) else None
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
        return dict(extra_info) if isinstance(extra_info, Mapping) else {}


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
