"""The number path (``srpo_reward.plain_number``): plain numbers with units, percent and degree signs."""

import pytest

from srpo_reward.plain_number import parse_number


@pytest.mark.parametrize(
    "text, value, percent",
    [
        pytest.param("1,234.5", 1234.5, False, id="separators"),
        pytest.param("-0.5", -0.5, False, id="negative"),
        pytest.param("30\\%", 30.0, True, id="percent"),
        pytest.param("90 degrees", 90.0, False, id="degree-word"),
        pytest.param("3 m/s", 3.0, False, id="compound-unit"),
    ],
)
def test_parse_number(text, value, percent):
    n = parse_number(text)
    assert n is not None and n.value == pytest.approx(value) and n.percent is percent


@pytest.mark.parametrize("text", ["\\frac{1}{2}", "2\\sqrt{3}", "1,2", "x+1", "1e5x"])
def test_parse_number_rejects_expressions(text):
    assert parse_number(text) is None
