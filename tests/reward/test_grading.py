"""Answer grading: multiple choice, numbers, math-verify, unparsable golds, time limits."""

import sys
import threading
from pathlib import Path

import pytest

from srpo_reward import grading
from srpo_reward.grading import choice_letter, grade_answer, parse_number


@pytest.mark.parametrize(
    "pred, gold, correct, method",
    [
        # multiple choice: exactly one option letter recognised
        pytest.param("B", "B", True, "choice", id="mc-bare"),
        pytest.param("(B)", "B", True, "choice", id="mc-parens"),
        pytest.param("B.", "B", True, "choice", id="mc-dot"),
        pytest.param("b", "B", True, "choice", id="mc-lowercase-alone"),
        pytest.param("Option B: 45 degrees", "B", True, "choice", id="mc-option-prefix"),
        pytest.param("The answer is C", "C", True, "choice", id="mc-answer-is"),
        pytest.param("(D) 12 cm", "D", True, "choice", id="mc-letter-then-text"),
        pytest.param("B", "(B)", True, "choice", id="mc-gold-in-parens"),
        pytest.param("\\boxed{B}", "B", True, "choice", id="mc-boxed"),
        pytest.param("so \\boxed{\\frac{1}{2}}", "0.5", True, "numeric", id="raw-block-with-boxed"),
        pytest.param("A or B", "A", False, "choice", id="mc-two-letters-is-wrong"),
        pytest.param("(A) (B)", "A", False, "choice", id="mc-two-parens-is-wrong"),
        pytest.param("C", "B", False, "choice", id="mc-wrong-letter"),
        pytest.param("45", "B", False, "choice", id="mc-no-letter"),
        # numbers
        pytest.param("1,000", "1000", True, "number", id="num-thousands-separator"),
        pytest.param("1000.0", "1,000", True, "number", id="num-decimal-vs-separator"),
        pytest.param("45^\\circ", "45", True, "number", id="num-degree-latex"),
        pytest.param("45°", "45^{\\circ}", True, "number", id="num-degree-sign"),
        pytest.param("50\\%", "50", True, "number", id="num-percent-latex"),
        pytest.param("0.5", "50%", True, "number", id="num-percent-vs-fraction"),
        pytest.param("5 cm", "5", True, "number", id="num-unit"),
        pytest.param("12 \\text{ cm}^2", "12", True, "number", id="num-text-unit"),
        pytest.param("x = 3", "3", True, "number", id="num-lhs"),
        pytest.param("\\$5", "5", True, "number", id="num-currency"),
        pytest.param("3.14159", "3.1416", True, "number", id="num-rel-tol"),
        pytest.param("3.2", "3.1416", False, "number", id="num-outside-tol"),
        pytest.param("-2", "2", False, "number", id="num-sign"),
        pytest.param("3", "4", False, "number", id="num-wrong"),
        # math-verify
        pytest.param("0.5", "\\frac{1}{2}", True, "numeric", id="numeric-fraction-vs-decimal"),
        pytest.param("\\frac{2}{4}", "0.5", True, "numeric", id="numeric-fraction-unreduced"),
        pytest.param("\\sqrt{12}", "2\\sqrt{3}", True, "numeric", id="numeric-radical"),
        pytest.param("0.333333", "\\frac{1}{3}", True, "math_verify", id="mv-near-value-rounded"),
        pytest.param("1+x^2", "x^2+1", True, "numeric", id="numeric-expression"),
        pytest.param("2\\sin x \\cos x", "\\sin 2x", True, "math_verify", id="mv-trig-identity"),
        pytest.param("3\\pi", "3π", True, "math_verify", id="mv-pi-unicode"),
        pytest.param("\\{2,1\\}", "\\{1,2\\}", True, "numeric", id="numeric-set"),
        pytest.param("\\{2\\}", "\\{1,2\\}", False, "numeric", id="numeric-set-missing-element"),
        pytest.param("[-\\infty, 3]", "(-\\infty,3]", True, "numeric", id="numeric-infinite-end-is-open"),
        pytest.param("\\{x,1\\}", "\\{1,x\\}", True, "math_verify", id="mv-set-of-expressions"),
        pytest.param("2x+1", "y=2x+1", True, "numeric", id="numeric-equation-rhs"),
        pytest.param("\\frac{1}{3}", "\\frac{1}{2}", False, "numeric", id="numeric-wrong-fraction"),
        # words
        pytest.param("East", "east", True, "text", id="text-case"),
        pytest.param("seat", "east", False, "text", id="text-anagram-is-wrong"),
    ],
)
def test_grade_table(pred, gold, correct, method):
    g = grade_answer(pred, gold)
    assert (g.correct, g.method, g.status) == (correct, method, "ok")


@pytest.mark.parametrize(
    "pred, gold, status",
    [
        pytest.param(None, "3", "no_answer", id="no-answer"),
        pytest.param("   ", "3", "no_answer", id="blank-answer"),
        pytest.param("3", "", "gold_unparsable", id="empty-gold"),
        pytest.param("3", None, "gold_unparsable", id="none-gold"),
        pytest.param("3", {"a": 1}, "gold_unparsable", id="dict-gold"),
        pytest.param("\\frac{1}{2}", "\\frac{", "gold_unparsable", id="broken-latex-gold"),
        pytest.param("anything", "$$", "gold_unparsable", id="only-dollars-gold"),
    ],
)
def test_grade_failures_score_zero(pred, gold, status):
    g = grade_answer(pred, gold)
    assert g.status == status
    assert g.correct is False


def test_gold_number_types_are_accepted():
    assert grade_answer("3", 3).correct
    assert grade_answer("0.25", 0.25).correct
    assert grade_answer("7", ["7"]).correct


def test_ten_options_mmmu_pro_style():
    options = [str(10 * i) for i in range(1, 11)]  # A..J
    assert grade_answer("J", "J", options=options, answer_type="multiple_choice").correct
    assert grade_answer("(G) 70", "G", options=options).correct
    assert grade_answer("100", "J", options=options).correct  # the option's text
    g = grade_answer("F", "J", options=options)
    assert (g.correct, g.status) == (False, "ok")  # a verdict, not a grader error
    # without options, a multiple-choice row still accepts letters up to J
    assert grade_answer("H", "H", answer_type="multiple_choice").correct
    # ... but a plain gold "H" with no such hint is not multiple choice (A-E only)
    assert grade_answer("H", "H").method != "choice"


def test_multiple_choice_with_option_texts():
    options = ["12", "15", "18", "21"]
    assert grade_answer("15", "B", options=options).correct  # answer given as the option text
    assert grade_answer("B", "15", options=options).correct  # gold given as the option text
    g = grade_answer("18", "B", options=options)
    assert (g.correct, g.status) == (False, "ok")
    g = grade_answer("B", "not an option", options=options, answer_type="multiple_choice")
    assert g.status == "gold_unparsable" and not g.correct


@pytest.mark.parametrize(
    "text, letter",
    [
        pytest.param("\\boxed{B}", None, id="boxed-not-extracted-here"),  # extract_answer removes \boxed first
        pytest.param("Answer: (E)", "E", id="answer-colon"),
        pytest.param("A, C", None, id="two-letters-comma"),
        pytest.param("$B$", "B", id="math-dollars"),
        pytest.param("a cat", None, id="article-is-not-a-letter"),
        pytest.param("B) 45", "B", id="letter-paren-then-text"),
        pytest.param("A right triangle", None, id="bare-letter-then-words-is-not-a-choice"),
        pytest.param("The answer is C because", "C", id="answer-is-then-words"),
    ],
)
def test_choice_letter(text, letter):
    assert choice_letter(text) == letter


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


def _run_in_thread(fn):
    box = []
    t = threading.Thread(target=lambda: box.append(fn()))
    t.start()
    t.join(timeout=120)
    assert not t.is_alive(), "grading hung"
    return box[0]


def test_time_limit_kills_a_slow_grader_from_a_worker_thread(monkeypatch):
    # One worker, stuck for an hour on \\sin^3 and quick on anything else.
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setattr(grading, "WORKER_TARGET", "_slow_grader:hang_on_cube_grade")
    monkeypatch.setenv("SRPO_GRADER_WORKERS", "1")
    grading.shutdown_pool()
    monkeypatch.setattr(grading, "_pool", None)  # a new pool, of the one worker asked for
    try:
        g = _run_in_thread(lambda: grade_answer("\\sin^3 x", "x^2", timeout=0.5))
        assert (g.correct, g.status) == (False, "timeout")
        assert grading._get_pool().size == 1
        # the pool recovers: the stuck worker is replaced, so the next answer gets its verdict
        # (the stuck one, reused, would time out again)
        g = _run_in_thread(lambda: grade_answer("\\sin^4 x", "x^2", timeout=30))
        assert (g.correct, g.status, g.method) == (True, "ok", "math_verify")
    finally:
        grading.shutdown_pool()


def test_crashing_worker_is_an_error_not_an_exception(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setattr(grading, "WORKER_TARGET", "_slow_grader:crashing_grade")
    try:
        g = grade_answer("\\frac{1}{2}", "x^2", timeout=5)
    finally:
        grading.shutdown_pool()
    assert (g.correct, g.status) == (False, "error")


def test_power_tower_is_refused_by_the_guard_before_math_verify():
    # math-verify never returns on this one when its own (signal) timeout is off.
    g = _run_in_thread(lambda: grade_answer("9^{9^{9^{9}}}", "3", timeout=2))
    assert (g.correct, g.status, g.method) == (False, "refused", "guard")


@pytest.mark.slow
def test_real_hang_is_cut_off_when_the_guard_lets_it_through(monkeypatch):
    monkeypatch.setattr(grading, "guard_reason", lambda s: None)
    g = _run_in_thread(lambda: grade_answer("9^{9^{9^{9}}}", "3", timeout=2))
    assert g.status == "timeout"
    assert grade_answer("0.5", "\\frac{1}{2}", timeout=30).correct  # and the pool still works


def test_math_verify_signal_timeout_would_fail_in_a_thread():
    """The reason for the worker processes: math-verify's own timeout cannot run off the main thread."""
    from math_verify import parse

    def call():
        try:
            parse("\\boxed{1}", parsing_timeout=5, raise_on_error=True)
            return "ok"
        except ValueError as exc:
            return str(exc)

    assert "signal" in _run_in_thread(call)
    # ... while ours works there
    assert _run_in_thread(lambda: grade_answer("1+x^2", "x^2+1")).correct


def test_worker_command_does_not_import_main(tmp_path):
    """Grading from a script without a __main__ guard must not re-run the script in the worker."""
    import subprocess

    marker = tmp_path / "ran"
    script = tmp_path / "train.py"
    script.write_text(
        "import pathlib\n"
        f"p = pathlib.Path({str(marker)!r}); p.write_text(p.read_text() + 'x' if p.exists() else 'x')\n"
        "from srpo_reward.grading import grade_answer\n"
        "print(grade_answer('1+x^2', 'x^2+1').correct)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "True", out.stderr
    assert marker.read_text() == "x"
