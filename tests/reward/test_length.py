"""The length unit (``srpo_reward.length``): the fast ASCII count is the regex's own count."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srpo_reward.length import count_units

REGEX = re.compile(r"\w+|[^\w\s]")
#: Every ASCII class edge: word characters, the whitespace the regex knows (\x1c-\x1f too),
#: control characters, punctuation and LaTeX; plus non-ASCII (the regex path).
ALPHABET = "aZ_09 \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x00\x7f.,$\\{}^-" + "é中\u00a0\u2003"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=60))
def test_approx_tokens_equal_the_regex_count(text):
    assert count_units(text) == len(REGEX.findall(text))


@pytest.mark.parametrize(
    "text, tokens",
    [
        pytest.param("", 0, id="empty"),
        pytest.param("x^2 + 1", 5, id="latex"),
        pytest.param("word_1 and\x1cmore", 3, id="file-separator-is-space"),
        pytest.param("naïve", 1, id="non-ascii-word"),
    ],
)
def test_approx_tokens_table(text, tokens):
    assert count_units(text) == tokens
