"""The SRPO reward for verl 0.9.1: pure functions over strings, nothing done at import time.

Use from verl::

    reward.custom_reward_function.path=pkg://srpo_reward
    reward.custom_reward_function.name=compute_score
    reward.custom_reward_function.reward_kwargs.eff_fixed=0.5
"""

from .config import PRESETS, RewardConfig
from .format import ParsedResponse, extract_answer, is_valid_format, parse_response
from .grading import Grade, grade_answer, grade_answers, normalize_ground_truth
from .prompts import load_format_prompt, render_prompt
from .reward import SCORE_KEYS, SRPOReward, compute_score, get_reward, score_response

__all__ = [
    "PRESETS",
    "SCORE_KEYS",
    "Grade",
    "ParsedResponse",
    "RewardConfig",
    "SRPOReward",
    "compute_score",
    "extract_answer",
    "get_reward",
    "grade_answer",
    "grade_answers",
    "is_valid_format",
    "load_format_prompt",
    "normalize_ground_truth",
    "parse_response",
    "render_prompt",
    "score_response",
]
