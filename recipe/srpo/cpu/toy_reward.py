"""The CPU demo's reward: the SRPO reward, plus a synthetic accuracy a random tiny model can earn.

A random-weight tiny model never writes the SRPO format, so the SRPO reward
(:func:`srpo_reward.compute_score`) is 0 for every response: every GRPO advantage
is 0 (no weight moves) and every group is all-wrong, so the recipe's online
filter (``algorithm.filter_groups``, metric ``acc``) would evict every group and
refill forever.  To exercise the real training path on a CPU, this reward calls
the SRPO reward unchanged (all its keys reach verl's reward loop and the
``training/srpo/*`` metrics), then replaces ``acc`` and adds to ``score`` a
synthetic signal that is known in advance:

- prompts with an even ``extra_info["index"]``: ``acc = 1`` for every response,
  so the group has no spread and the filter must evict it;
- odd ``index``: ``acc`` is one bit of the response text's SHA-256, so a group
  of responses almost always has spread (and is kept), and when it has none the
  filter must evict it too.

``toy_acc`` carries the same value under its own name.  With
``SRPO_TOY_REWARD_LOG`` set, every call appends ``{"index", "acc", "sha"}`` to that
JSONL file, from which :mod:`recipe.srpo.cpu.verify_run` counts the groups the
filter should have evicted.  Never use this reward for real training.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

from srpo_reward import compute_score as srpo_compute_score

LOG_ENV = "SRPO_TOY_REWARD_LOG"


def toy_accuracy(index: Any, solution_str: str) -> float:
    """The synthetic accuracy: 1 for even prompt indices, a bit of the response's hash for odd ones."""
    if not isinstance(index, int) or index % 2 == 0:
        return 1.0
    return float(hashlib.sha256(solution_str.encode("utf-8", "replace")).digest()[0] & 1)


def compute_score(
    data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None, **kwargs: Any
) -> dict[str, float]:
    """verl's reward-function signature; returns the SRPO reward's dict with the toy ``acc``."""
    result = dict(srpo_compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs))
    text = solution_str if isinstance(solution_str, str) else str(solution_str)
    index = extra_info.get("index") if isinstance(extra_info, Mapping) else None
    acc = toy_accuracy(index, text)
    result["acc"] = acc
    result["toy_acc"] = acc
    result["score"] = float(result["score"]) + acc
    log = os.environ.get(LOG_ENV)
    if log:
        record = {"index": index, "acc": acc, "sha": hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]}
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")
    return result
