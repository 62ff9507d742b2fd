"""The SRPO reward's parameters: one frozen, validated object with the paper's defaults.

Every term of the reward (paper eqs. 4-8, see ``SRPO_SPEC.md``) is a field here,
so every term can be overridden from verl's command line::

    reward.custom_reward_function.reward_kwargs.eff_fixed=0.6

An unknown name is a typo in a weight name: :meth:`RewardConfig.from_kwargs`
raises a ``TypeError`` that lists the valid names instead of ignoring it.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any

#: Keyword arguments that verl 0.9.1's reward managers themselves add to the
#: ``compute_score`` call (``naive``/``dapo``/``gdpo``/``limited`` pass these two
#: when a generative reward model router is configured).  They are accepted and
#: ignored; everything else must be a field of :class:`RewardConfig`.
VERL_CALL_KWARGS = frozenset({"reward_router_address", "reward_model_tokenizer"})

#: Named bundles of defaults.  ``paper`` is the default; ``released`` reproduces
#: the shaping of the authors' released code (wrong-then-right pays 1.5 for
#: accuracy + effectiveness, right-then-right 1.25), for comparisons only: it
#: pays the policy for answering wrong on purpose in the first attempt.
PRESETS: dict[str, dict[str, float]] = {
    "paper": {},
    "released": {"eff_fixed": 1.5, "eff_kept": 0.75},
}

LENGTH_UNITS = ("approx_tokens", "chars", "words")


@dataclass(frozen=True)
class RewardConfig:
    """Weights of ``R_total = R_task + R_reflection`` (SRPO, Wan et al. 2025, eqs. 4-8).

    ``R_task = format_weight * [format ok] + acc_weight * [A1 correct] + final_acc_weight * [A2 correct]``
    ``R_reflection = I_eff + ref_weight * [reflection well formed] + len_alpha * f_len``
    with ``f_len = exp(-((L - T_target) / (T_max - T_target))**2)``,
    ``T_target = len_target_ratio * L1`` and ``T_max = len_max_ratio * L1``.
    ``I_eff``, the reflection term and ``f_len`` are 0 when the format is invalid.

    Example::

        >>> RewardConfig.from_kwargs(eff_fixed=0.6).eff_fixed
        0.6
    """

    #: R_format: paid when the response has the five-block format.
    format_weight: float = 0.5
    #: R_acc: paid when the first answer A1 is correct (scored whenever an answer block exists).
    acc_weight: float = 0.5
    #: Accuracy of the FINAL answer (the last answer block), paid whenever an answer block exists, like
    #: ``acc_weight``.  Not a term of the paper's SRPO reward (0 by default); it makes "format + accuracy"
    #: (a standard GRPO reward) expressible for a two-attempt response: ``acc_weight=0,
    #: final_acc_weight=0.5`` with every I_eff, I_ref and length weight 0 (docs/reward.md).
    final_acc_weight: float = 0.0
    #: I_eff when A1 is wrong and A2 right (the reflection fixed the answer).
    eff_fixed: float = 0.5
    #: I_eff when A1 and A2 are both right (the reflection kept a right answer).
    eff_kept: float = 0.25
    #: I_eff when A1 and A2 are both wrong.
    eff_stayed_wrong: float = 0.0
    #: I_eff when A1 is right and A2 wrong (the reflection broke the answer).
    eff_broke: float = -0.25
    #: I_ref: paid when the reflection segment is well formed (one non-empty block between the attempts).
    ref_weight: float = 0.25
    #: alpha, the weight of the length term f_len in [0, 1].
    len_alpha: float = 0.1
    #: T_target / L1: the length the response should have, as a multiple of the first attempt's.
    len_target_ratio: float = 2.0
    #: T_max / L1: where f_len has fallen to exp(-1).
    len_max_ratio: float = 2.5
    #: Unit of L and L1 when the caller gives no token counts (the ratio makes the unit cancel).
    length_unit: str = "approx_tokens"
    #: Time budget, in seconds, for grading ONE SAMPLE (both answers) with math-verify, waiting
    #: for a worker included; a worker still busy at the end is killed and the sample gets
    #: ``grade_error``.  8x math-verify's p99 (0.1 s) on realistic answers
    #: (``bench_reward.py --latency``), and under the 1 s a sample may take.
    grade_timeout: float = 0.8
    #: Relative tolerance of the numeric fast path.
    rel_tol: float = 1e-4

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "float" or f.type is float:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError(f"SRPO reward parameter {f.name!r} must be a number, got {value!r}")
                if not math.isfinite(value):
                    raise ValueError(f"SRPO reward parameter {f.name!r} must be finite, got {value!r}")
                object.__setattr__(self, f.name, float(value))
        if self.length_unit not in LENGTH_UNITS:
            raise ValueError(f"length_unit must be one of {LENGTH_UNITS}, got {self.length_unit!r}")
        if not self.len_max_ratio > self.len_target_ratio > 0:
            raise ValueError(
                "need len_max_ratio > len_target_ratio > 0, got "
                f"len_target_ratio={self.len_target_ratio}, len_max_ratio={self.len_max_ratio}"
            )
        if self.grade_timeout <= 0:
            raise ValueError(f"grade_timeout must be > 0 seconds, got {self.grade_timeout}")
        if not 0 <= self.rel_tol < 1:
            raise ValueError(f"rel_tol must be in [0, 1), got {self.rel_tol}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_kwargs(cls, preset: str = "paper", **kwargs: Any) -> "RewardConfig":
        """Build a config from verl's ``reward_kwargs``; a misspelled name raises ``TypeError``.

        ``preset`` picks a bundle of defaults (``paper`` or ``released``) that the
        other keywords then override.
        """
        if preset not in PRESETS:
            raise ValueError(f"unknown SRPO reward preset {preset!r}; valid presets: {sorted(PRESETS)}")
        valid = cls.field_names()
        unknown = sorted(k for k in kwargs if k not in valid and k not in VERL_CALL_KWARGS)
        if unknown:
            hints = []
            for name in unknown:
                close = difflib.get_close_matches(name, valid, n=1)
                hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise TypeError(
                f"unknown SRPO reward parameter(s) {', '.join(hints)}; "
                f"valid names: preset, {', '.join(valid)}"
            )
        values = {**PRESETS[preset], **{k: v for k, v in kwargs.items() if k in valid}}
        return cls(**values)

    def score_bounds(self) -> tuple[float, float]:
        """The smallest and largest total score this config can give (the length term lies in [0, 1])."""
        f = self.final_acc_weight
        transitions = [
            (self.acc_weight + self.eff_kept + f),  # right -> right
            (self.acc_weight + self.eff_broke),  # right -> wrong
            (self.eff_fixed + f),  # wrong -> right
            (self.eff_stayed_wrong),  # wrong -> wrong
        ]
        len_lo, len_hi = sorted((0.0, self.len_alpha))
        valid_lo = self.format_weight + min(transitions) + self.ref_weight + len_lo
        valid_hi = self.format_weight + max(transitions) + self.ref_weight + len_hi
        # An invalid format still earns acc_weight (and final_acc_weight) for right answers: any subset of the two
        # accuracy terms (a single answer block is both first and final, so both or neither).
        acc_terms = [0.0, self.acc_weight, f, self.acc_weight + f]
        invalid = (min(acc_terms), max(acc_terms))
        return min(valid_lo, *invalid), max(valid_hi, *invalid)
