"""``compute_score``: the SRPO reward (Wan et al. 2025, eqs. 4-8) as verl 0.9.1 calls it.

``R_total = R_format + R_acc + I_eff + I_ref + alpha * f_len`` (see :class:`RewardConfig`).

verl 0.9.1's reward managers call ``compute_score(data_source=..., solution_str=...,
ground_truth=..., extra_info=..., **reward_kwargs)`` from a worker thread.  Every
call returns a dict with the same numeric keys (:data:`SCORE_KEYS`), so verl can
log each as a metric.  Per-sample problems never raise: a failure scores 0 and
sets ``grade_error`` or ``reward_error``.  A misspelled weight name is a
configuration error and raises ``TypeError`` at the first call.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Mapping

from .config import VERL_CALL_KWARGS, RewardConfig
from .format import ParsedResponse, parse_response, reflection_well_formed
from .grading import ERROR_STATUSES, Grade, grade_answers
from .length import count_units, length_score, lengths_from_extra_info

logger = logging.getLogger(__name__)

#: Every key of the returned dict, in a fixed order.  All values are floats.
SCORE_KEYS = (
    "score",  # the total reward
    "acc",  # the final answer (last <answer>) is correct: what validation reports as accuracy
    "acc_first",  # the first answer A1 is correct
    "format",  # the response has the five-block format
    "r_format",  # R_format term
    "r_acc",  # R_acc term (acc_weight on A1, plus final_acc_weight on the final answer)
    "r_eff",  # I_eff term (reflection effectiveness)
    "r_ref",  # I_ref term (reflection well formed)
    "r_len",  # alpha * f_len term
    "f_len",  # f_len in [0, 1]
    "len_ratio",  # L / L1 (0 when the format is invalid)
    "fixed",  # transition A1 wrong -> A2 right (valid format only)
    "kept",  # A1 right -> A2 right
    "broke",  # A1 right -> A2 wrong
    "stayed_wrong",  # A1 wrong -> A2 wrong
    "has_answer",  # at least one <answer> block was found
    "gold_unparsable",  # the ground truth could not be parsed: nothing was paid for accuracy
    "grade_error",  # grading timed out, failed, or the guard refused one of the answers
    "reward_error",  # an unexpected error: everything scored 0
)


def _zero() -> dict[str, float]:
    return dict.fromkeys(SCORE_KEYS, 0.0)


def _extra_options(extra_info: Any) -> tuple[list[str] | None, str | None]:
    if not isinstance(extra_info, Mapping):
        return None, None
    options = extra_info.get("options", extra_info.get("choices"))
    if options is not None and not isinstance(options, str):
        try:
            options = [str(o) for o in options]
        except TypeError:
            options = None
    else:
        options = None
    answer_type = extra_info.get("answer_type")
    return options, answer_type if isinstance(answer_type, str) else None


class SRPOReward:
    """The SRPO reward with a fixed :class:`RewardConfig`: a small picklable callable.

    >>> reward = SRPOReward(RewardConfig(eff_fixed=0.6))
    >>> reward("geo3k", "<think>a</think> <answer>1</answer> <reflection>r</reflection> "
    ...        "<think>b</think> <answer>2</answer>", "2")["fixed"]
    1.0
    """

    def __init__(self, config: RewardConfig | None = None) -> None:
        self.config = config or RewardConfig()

    def __repr__(self) -> str:
        return f"SRPOReward({self.config!r})"

    def __call__(
        self, data_source: Any, solution_str: Any, ground_truth: Any, extra_info: Any = None
    ) -> dict[str, float]:
        try:
            return self._score(solution_str, ground_truth, extra_info)
        except Exception:  # never take a training step down
            logger.exception("SRPO reward failed for data_source=%r; scoring 0", data_source)
            out = _zero()
            out["reward_error"] = 1.0
            return out

    def _grade(self, preds: list[str | None], gold: Any, extra_info: Any) -> list[Grade]:
        """Both answers of a sample under one time budget (``grade_timeout``), one round trip."""
        options, answer_type = _extra_options(extra_info)
        return grade_answers(
            preds,
            gold,
            timeout=self.config.grade_timeout,
            options=options,
            answer_type=answer_type,
            rel_tol=self.config.rel_tol,
        )

    def _score(self, solution_str: Any, ground_truth: Any, extra_info: Any) -> dict[str, float]:
        cfg = self.config
        out = _zero()
        if not isinstance(solution_str, str):
            solution_str = "" if solution_str is None else str(solution_str)
        parsed: ParsedResponse = parse_response(solution_str)
        out["has_answer"] = float(parsed.num_answers > 0)

        if parsed.num_answers > 1 and parsed.final_answer != parsed.first_answer:
            first, final = self._grade([parsed.first_answer, parsed.final_answer], ground_truth, extra_info)
        else:
            first = final = self._grade([parsed.first_answer], ground_truth, extra_info)[0]  # grade once
        grades = (first, final)
        out["gold_unparsable"] = float(any(g.status == "gold_unparsable" for g in grades))
        out["grade_error"] = float(any(g.status in ERROR_STATUSES for g in grades))
        out["acc_first"] = float(first.correct)
        out["acc"] = float(final.correct)
        out["r_acc"] = cfg.acc_weight * first.correct + cfg.final_acc_weight * final.correct

        if parsed.ok:
            out["format"] = 1.0
            out["r_format"] = cfg.format_weight
            transition = {
                (False, True): ("fixed", cfg.eff_fixed),
                (True, True): ("kept", cfg.eff_kept),
                (True, False): ("broke", cfg.eff_broke),
                (False, False): ("stayed_wrong", cfg.eff_stayed_wrong),
            }[(first.correct, final.correct)]
            out[transition[0]] = 1.0
            out["r_eff"] = transition[1]
            out["r_ref"] = cfg.ref_weight * reflection_well_formed(parsed)
            total_len, first_len = self._lengths(solution_str, parsed, extra_info)
            if first_len > 0:
                out["len_ratio"] = total_len / first_len
                out["f_len"] = length_score(total_len, first_len, cfg.len_target_ratio, cfg.len_max_ratio)
                out["r_len"] = cfg.len_alpha * out["f_len"]

        out["score"] = out["r_format"] + out["r_acc"] + out["r_eff"] + out["r_ref"] + out["r_len"]
        return {k: float(v) for k, v in out.items()}

    def _lengths(self, solution_str: str, parsed: ParsedResponse, extra_info: Any) -> tuple[int, int]:
        tokens = lengths_from_extra_info(extra_info)
        if tokens is not None:
            return tokens
        unit = self.config.length_unit
        return count_units(solution_str, unit), count_units(parsed.first_attempt or "", unit)


@functools.lru_cache(maxsize=64)
def _reward_for(items: tuple[tuple[str, Any], ...]) -> SRPOReward:
    return SRPOReward(RewardConfig.from_kwargs(**dict(items)))


def get_reward(**reward_kwargs: Any) -> SRPOReward:
    """The configured reward for verl's ``reward_kwargs`` (built once per distinct kwargs)."""
    reward_kwargs = {k: v for k, v in reward_kwargs.items() if k not in VERL_CALL_KWARGS}
    try:
        key = tuple(sorted(reward_kwargs.items()))
        hash(key)
    except TypeError:  # unhashable value (e.g. a tokenizer object): build without the cache
        return SRPOReward(RewardConfig.from_kwargs(**reward_kwargs))
    return _reward_for(key)


def compute_score(
    data_source: Any,
    solution_str: Any,
    ground_truth: Any,
    extra_info: Any = None,
    **reward_kwargs: Any,
) -> dict[str, float]:
    """verl 0.9.1's custom reward entry point (``reward.custom_reward_function.name=compute_score``).

    ``reward_kwargs`` are fields of :class:`RewardConfig` (plus ``preset``); an unknown
    name raises ``TypeError`` listing the valid ones.
    """
    return get_reward(**reward_kwargs)(data_source, solution_str, ground_truth, extra_info)


def score_response(solution_str: str, ground_truth: Any, extra_info: Any = None, **reward_kwargs: Any) -> dict:
    """Convenience wrapper without ``data_source`` (used by the eval report and the builder)."""
    return compute_score("srpo", solution_str, ground_truth, extra_info, **reward_kwargs)
