"""The five-block format checker and answer extraction (SRPO_SPEC.md, "Response format")."""

import pytest

from srpo_reward.format import extract_answer, last_boxed, parse_response
from srpo_reward.prompts import format_prompt_example, load_format_prompt, render_prompt

VALID = "<think>t1</think> <answer>\\boxed{5}</answer> <reflection>r</reflection> <think>t2</think> <answer>6</answer>"


@pytest.mark.parametrize(
    "text, reason",
    [
        pytest.param(VALID, "ok", id="valid"),
        pytest.param("\n " + VALID.replace("> <", ">\n\n<") + "\n", "ok", id="valid-newlines-around"),
        pytest.param("<think>t1</think> <answer>5</answer>", "missing_block", id="missing-reflection-and-retry"),
        pytest.param(
            "<think>t1</think> <answer>5</answer> <reflection>r</reflection> <think>t2</think>",
            "missing_block",
            id="missing-final-answer",
        ),
        pytest.param(VALID.replace("<think>t1</think>", "<think> </think>"), "empty_block", id="empty-think"),
        pytest.param(VALID.replace("<reflection>r</reflection>", "<reflection>\n</reflection>"), "empty_block", id="empty-reflection"),
        pytest.param(VALID.replace("<answer>6</answer>", "<answer></answer>"), "empty_block", id="empty-answer"),
        pytest.param(VALID.replace("<answer>6</answer>", "<answer>\\boxed{}</answer>"), "empty_answer", id="empty-boxed"),
        pytest.param(
            "<answer>5</answer> <think>t1</think> <reflection>r</reflection> <think>t2</think> <answer>6</answer>",
            "wrong_order",
            id="answer-before-think",
        ),
        pytest.param(
            "<think>t1</think> <answer>5</answer> <think>t2</think> <reflection>r</reflection> <answer>6</answer>",
            "wrong_order",
            id="reflection-after-second-think",
        ),
        pytest.param(
            VALID.replace("<think>t1</think>", "<think>t1 <answer>5</answer></think>"), "nested_tag", id="answer-nested-in-think"
        ),
        pytest.param(
            VALID.replace("<reflection>r</reflection>", "<reflection>r <think>x</think></reflection>"),
            "nested_tag",
            id="think-nested-in-reflection",
        ),
        pytest.param(VALID + " <reflection>again</reflection>", "extra_block", id="sixth-block"),
        pytest.param(VALID + " <answer>7</answer>", "extra_block", id="third-answer"),
        pytest.param(VALID + " So the answer is 6.", "trailing_text", id="text-after-last-answer"),
        pytest.param("Sure! " + VALID, "leading_text", id="text-before-first-block"),
        pytest.param(VALID.replace("</answer> <reflection>", "</answer> hmm <reflection>"), "text_between_blocks", id="text-between"),
        pytest.param(VALID.replace("</think> <answer>\\boxed{5}", " <answer>\\boxed{5}", 1), "nested_tag", id="unclosed-think"),
        pytest.param(VALID.replace("<think>t1</think>", "t1</think>"), "unbalanced_tag", id="stray-closing-tag"),
        pytest.param(VALID[:-9], "unclosed_tag", id="truncated-response"),
        pytest.param("The answer is 5.", "no_blocks", id="plain-text"),
        pytest.param("", "no_blocks", id="empty"),
    ],
)
def test_format_reasons(text, reason):
    parsed = parse_response(text)
    assert parsed.reason == reason
    assert parsed.ok is (reason == "ok")


def test_valid_parse_fields():
    p = parse_response(VALID)
    assert (p.think1, p.answer1, p.reflection, p.think2, p.answer2) == ("t1", "\\boxed{5}", "r", "t2", "6")
    assert (p.first_answer, p.final_answer) == ("5", "6")
    assert p.first_attempt == "<think>t1</think> <answer>\\boxed{5}</answer>"


@pytest.mark.parametrize(
    "text, first, final, count",
    [
        pytest.param("<think>a</think><answer>3</answer>", "3", "3", 1, id="single-answer"),
        pytest.param("<answer>1</answer> junk <answer>$2$</answer> tail", "1", "2", 2, id="two-answers-invalid-format"),
        pytest.param("no answer here", None, None, 0, id="none"),
    ],
)
def test_answers_found_even_when_format_invalid(text, first, final, count):
    p = parse_response(text)
    assert not p.ok
    assert (p.first_answer, p.final_answer, p.num_answers) == (first, final, count)


@pytest.mark.parametrize(
    "block, answer",
    [
        pytest.param("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", id="boxed-nested-braces"),
        pytest.param("first \\boxed{1}, then \\boxed{x^{2}}", "x^{2}", id="last-boxed-wins"),
        pytest.param("$\\frac{3}{4}$", "\\frac{3}{4}", id="dollars-removed"),
        pytest.param(" 42 ", "42", id="plain"),
        pytest.param("\\boxed{a\\}b}", "a\\}b", id="escaped-brace-inside"),
        pytest.param("\\boxed{unclosed", "\\boxed{unclosed", id="unbalanced-boxed-falls-back"),
        pytest.param("\\fbox{7}", "7", id="fbox"),
    ],
)
def test_extract_answer(block, answer):
    assert extract_answer(block) == answer


def test_last_boxed_is_linear_on_adversarial_input():
    # 200k unclosed \boxed{ would take minutes with a quadratic scan; this must just return None.
    assert last_boxed("\\boxed{" * 200_000) is None


def test_prompt_renders_question_and_example_passes_checker():
    rendered = render_prompt("What is 2 + 3?")
    assert rendered.startswith("What is 2 + 3?")
    assert "{question}" not in rendered
    assert "\\boxed{}" in rendered  # a literal backslash, not an escape sequence
    assert "\\n" not in rendered  # no escaped newline rendered as backslash-n
    for tag in ("<think>", "<answer>", "<reflection>"):
        assert tag in rendered
    example = format_prompt_example()
    assert example in rendered
    parsed = parse_response(example)
    assert parsed.ok, parsed.reason
    assert parsed.first_answer == "7" and parsed.final_answer == "5"


def test_prompt_template_has_one_placeholder():
    assert load_format_prompt().count("{question}") == 1
    with pytest.raises(TypeError):
        render_prompt(None)
