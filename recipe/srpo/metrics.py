"""Training-time reflection metrics: what a reflection did to the first answer, per step.

verl 0.9.1's trainer logs the reward's extra keys (``fixed``, ``kept``, ``broke``,
...) only for validation; during training it logs the score alone.  These
numbers are what an SRPO run is watched by, so ``recipe.srpo.main_srpo`` adds
them to every training step's metrics, computed here from the per-response
dicts that ``srpo_reward.compute_score`` returned.  Two sets per step:

- ``training/srpo/*`` (:data:`PREFIX`): the responses the step TRAINED on, i.e. AFTER
  the online group filter (``algorithm.filter_groups``) evicted every group whose
  ``acc`` was all right or all wrong.  Those groups are exactly the ones without
  signal, so these numbers are biased: an all-kept group (every answer right and kept)
  or an all-wrong one never reaches them, and ``acc/mean`` is pulled away from 0 and 1.
- ``training/srpo/prefilter/*`` (:data:`PREFILTER_PREFIX`): every response the policy
  generated for the step, BEFORE the filter (the trained groups plus the evicted and
  surplus ones): what the policy really did this step.  Without a filter the two sets
  are equal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from srpo_reward import SCORE_KEYS

#: Per-response keys of ``compute_score`` averaged over the step's responses: all of them.
MEAN_KEYS: tuple[str, ...] = SCORE_KEYS

#: Metrics of the trained (post-filter) responses.
PREFIX = "training/srpo"

#: Metrics of every response generated for the step, before the group filter.
PREFILTER_PREFIX = f"{PREFIX}/prefilter"


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def reflection_metrics(rows: Sequence[Mapping[str, float]], prefix: str = PREFIX) -> dict[str, float]:
    """Means of the reward's keys over ``rows`` plus the conditional reflection rates.

    The trainer calls it twice per step: on the trained (post-filter) responses with
    :data:`PREFIX`, on all generated (pre-filter) responses with :data:`PREFILTER_PREFIX`.

    - ``{prefix}/<key>/mean`` for every key of :data:`MEAN_KEYS` present in all rows;
    - ``{prefix}/fix_rate``: of the responses whose first answer was wrong (fixed + stayed wrong),
      the share the reflection fixed;
    - ``{prefix}/break_rate``: of the responses whose first answer was right (kept + broke),
      the share the reflection broke;
    - ``{prefix}/responses``: how many responses the step scored.

    A rate with an empty denominator is NaN (no such response this step), never 0.
    """
    out: dict[str, float] = {f"{prefix}/responses": float(len(rows))}
    if not rows:
        return out
    for key in MEAN_KEYS:
        values = [_as_float(row.get(key)) for row in rows]
        if any(v is None for v in values):
            continue
        out[f"{prefix}/{key}/mean"] = sum(values) / len(values)  # type: ignore[arg-type]
    sums = {key: sum(_as_float(row.get(key)) or 0.0 for row in rows) for key in ("fixed", "kept", "broke", "stayed_wrong")}
    out[f"{prefix}/fix_rate"] = _ratio(sums["fixed"], sums["fixed"] + sums["stayed_wrong"])
    out[f"{prefix}/break_rate"] = _ratio(sums["broke"], sums["broke"] + sums["kept"])
    return out


def _as_float(value: object) -> float | None:
    if value is None or isinstance(value, (str, bytes)):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def reward_infos_from_extra_fields(extra_fields: Iterable[object], keep: Sequence[bool] | None = None) -> list[dict]:
    """The ``reward_extra_info`` dicts out of verl's per-trajectory ``extra_fields`` (as TransferQueue returns them).

    ``keep`` (same length) drops padding rows.  Entries without a reward dict are skipped.
    """
    infos: list[dict] = []
    for i, value in enumerate(extra_fields):
        if keep is not None and not keep[i]:
            continue
        value = getattr(value, "data", value)
        info = value.get("reward_extra_info") if isinstance(value, Mapping) else None
        if isinstance(info, Mapping) and info:
            infos.append(dict(info))
    return infos


def step_reflection_metrics(trained: Sequence[Mapping[str, float]], evicted: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Both sets of a step: ``trained`` (post-filter, :data:`PREFIX`) and ``trained + evicted`` (pre-filter).

    ``evicted``: the reward dicts of the responses the group filter (or the surplus discard) removed
    from the step before training.
    """
    out = reflection_metrics(trained, PREFIX)
    out.update(reflection_metrics([*trained, *evicted], PREFILTER_PREFIX))
    return out
