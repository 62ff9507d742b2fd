"""Pure pieces of the builder: parsing replies, the target, the leak filter, keys, config."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from srpo_data.stage1.builder.client import _retry_after_seconds, parse_json_object, redact
from srpo_data.stage1.builder.config import BuildConfig, ConfigError, EndpointConfig, load_mapping
from srpo_data.stage1.builder.steps import (
    build_target,
    parse_reflection,
    parse_two_blocks,
    quotes_ground_truth,
    render,
    step_key,
)
from srpo_reward.format import parse_response


@pytest.mark.parametrize(
    "text, position, ok, reason, answer",
    [
        pytest.param("<think>a</think> <answer>\\boxed{3}</answer>", "first", True, "ok", "3", id="first-ok"),
        pytest.param("  <think>a</think>\n<answer>B</answer>\n", "second", True, "ok", "B", id="second-ok-whitespace"),
        pytest.param("The answer is \\boxed{3}.", "first", False, "missing_block", None, id="no-blocks"),
        pytest.param("<think>a</think>", "first", False, "missing_block", None, id="think-only"),
        pytest.param("<think>a <answer>3</answer></think> <answer>3</answer>", "first", False, "nested_tag", None, id="nested"),
        pytest.param("<think>a</think> so <answer>3</answer>", "first", False, "text_between_blocks", None, id="text-between"),
        pytest.param("<think> </think> <answer>3</answer>", "first", False, "empty_block", None, id="empty-think"),
        pytest.param("<think>a</think> <answer>3</answer> done", "second", False, "trailing_text", None, id="trailing"),
        pytest.param("<think>a</think> <answer>3</answer> <reflection>r</reflection>", "first", False, "extra_block", None, id="extra-block"),
        pytest.param("<answer>3</answer> <think>a</think>", "first", False, "wrong_order", None, id="swapped"),
    ],
)
def test_parse_two_blocks(text: str, position: str, ok: bool, reason: str, answer: str | None) -> None:
    got = parse_two_blocks(text, position)
    assert (got.ok, got.reason, got.answer) == (ok, reason, answer)


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param('{"reflection": "Step 2 is wrong."}', ("Step 2 is wrong.", "ok"), id="plain"),
        pytest.param('```json\n{"reflection": "ok then"}\n```', ("ok then", "ok"), id="fenced"),
        pytest.param('Here you go: {"reflection": "x y"} bye', ("x y", "ok"), id="prose-around"),
        pytest.param("Step 2 is wrong.", (None, "not_json"), id="not-json"),
        pytest.param('{"reflection": ', (None, "not_json"), id="truncated"),
        pytest.param('["reflection"]', (None, "not_json"), id="array"),
        pytest.param('{"text": "x"}', (None, "no_reflection_field"), id="wrong-field"),
        pytest.param('{"reflection": 3}', (None, "no_reflection_field"), id="not-a-string"),
        pytest.param('{"reflection": "   "}', (None, "empty_reflection"), id="empty"),
    ],
)
def test_parse_reflection(text: str, expected: tuple[str | None, str]) -> None:
    assert parse_reflection(text) == expected


def test_build_target_passes_the_reward_format_check() -> None:
    target = build_target("t1", "\\boxed{2}", "I added wrong.", "t2", "\\boxed{3}")
    parsed = parse_response(target)
    assert parsed.ok, parsed.reason
    assert (parsed.first_answer, parsed.final_answer, parsed.reflection) == ("2", "3", "I added wrong.")


def test_reflection_with_a_tag_makes_the_target_fail_the_format_check() -> None:
    target = build_target("t1", "2", "the <answer> was wrong", "t2", "3")
    assert parse_response(target).reason == "nested_tag"


@pytest.mark.parametrize(
    "reflection, gt, quoted",
    [
        pytest.param("The correct option is B.", "B", True, id="option-letter"),
        pytest.param("so the answer is (C)", "C", True, id="paren-letter"),
        pytest.param("I should pick \\boxed{D}", "D", True, id="boxed-letter"),
        pytest.param("Angle ABC at point B is a right angle.", "B", False, id="point-name-not-a-choice"),
        pytest.param("I chose option A but misread the scale.", "B", False, id="other-letter"),
        pytest.param("The area equals 12.", "12", True, id="number-whole-token"),
        pytest.param("The total is $12$ square units", "12", True, id="number-in-math"),
        pytest.param("I wrote 120 instead of the sum.", "12", False, id="number-inside-longer-number"),
        pytest.param("The ratio 1.12 looks off.", "12", False, id="number-after-decimal-point"),
        pytest.param("the length is 12.5 cm", "12", False, id="number-before-decimals"),
        pytest.param("So x = \\frac{1}{2} here", "\\frac{1}{2}", True, id="latex-expression"),
        pytest.param("I misread the axis labels.", "7", False, id="no-mention"),
    ],
)
def test_quotes_ground_truth(reflection: str, gt: str, quoted: bool) -> None:
    assert quotes_ground_truth(reflection, gt) is quoted


def test_render_fills_in_one_pass() -> None:
    # A value that contains another placeholder stays literal (no second substitution).
    out = render("Q: {question} A: {attempt}", question="what is {attempt}?", attempt="42")
    assert out == "Q: what is {attempt}? A: 42"
    with pytest.raises(KeyError, match="attempt"):
        render("{attempt}", question="q")


def _ep(**kw: object) -> EndpointConfig:
    base: dict[str, object] = dict(base_url="http://h/v1", model="m")
    base.update(kw)
    return EndpointConfig(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change, same_key",
    [
        pytest.param({"timeout": 5.0}, True, id="timeout-keeps-key"),
        pytest.param({"concurrency": 99}, True, id="concurrency-keeps-key"),
        pytest.param({"max_retries": 0}, True, id="retries-keep-key"),
        pytest.param({"api_key_env": "OTHER_KEY"}, True, id="key-name-keeps-key"),
        pytest.param({"model": "m2"}, False, id="model-changes-key"),
        pytest.param({"temperature": 0.0}, False, id="temperature-changes-key"),
        pytest.param({"base_url": "http://other/v1"}, False, id="url-changes-key"),
        pytest.param({"extra_body": {"top_k": 5}}, False, id="extra-body-changes-key"),
    ],
)
def test_step_key_depends_on_what_changes_the_answer(change: dict[str, object], same_key: bool) -> None:
    k0 = step_key("sid", "attempt", _ep().fingerprint())
    k1 = step_key("sid", "attempt", _ep(**change).fingerprint())
    assert (k0 == k1) is same_key


def test_step_key_separates_samples_steps_tries_and_upstream() -> None:
    fp = _ep().fingerprint()
    keys = {
        step_key("a", "attempt", fp),
        step_key("b", "attempt", fp),
        step_key("a", "reflection", fp),
        step_key("a", "reflection", fp, try_index=1),
        step_key("a", "reflection", fp, upstream="x"),
    }
    assert len(keys) == 5
    assert step_key("a", "attempt", fp) == step_key("a", "attempt", dict(reversed(list(fp.items()))))


@pytest.mark.parametrize(
    "kw, message",
    [
        pytest.param({"base_url": "localhost:8000"}, "http", id="url-without-scheme"),
        pytest.param({"api_key_env": "sk-abc123"}, "NAME of an environment variable", id="key-given-instead-of-name"),
        pytest.param({"concurrency": 0}, "greater than or equal to 1", id="zero-concurrency"),
        pytest.param({"temperture": 0.5}, "Extra inputs", id="typo-in-field"),
    ],
)
def test_endpoint_config_rejects(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _ep(**kw)


def test_missing_key_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRPO_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError, match="SRPO_TEST_NO_SUCH_KEY"):
        _ep(api_key_env="SRPO_TEST_NO_SUCH_KEY").api_key()


def test_load_mapping_inline_and_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert load_mapping("{base_url: 'http://h/v1', model: m}") == {"base_url": "http://h/v1", "model": "m"}
    f = tmp_path / "p.yaml"
    f.write_text("base_url: http://h/v1\nmodel: m\nconcurrency: 4\n")
    assert EndpointConfig(**load_mapping(f)).concurrency == 4
    with pytest.raises(ConfigError, match="not found"):
        load_mapping(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        load_mapping("just-a-word")
    cfg = BuildConfig(input="x.jsonl", out="o", policy=_ep(concurrency=3), teacher=_ep(concurrency=5))
    assert cfg.in_flight() == 16


@pytest.mark.parametrize(
    "headers, seconds",
    [
        pytest.param({"retry-after": "3"}, 3.0, id="seconds"),
        pytest.param({"retry-after-ms": "250", "retry-after": "9"}, 0.25, id="ms-wins"),
        pytest.param({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0, id="http-date-in-the-past-is-now"),
        pytest.param({}, None, id="absent"),
    ],
)
def test_retry_after_header(headers: dict[str, str], seconds: float | None) -> None:
    assert _retry_after_seconds(headers) == seconds


def test_redact_and_json_object() -> None:
    assert redact("Bearer sk-SECRET-1 failed", ["sk-SECRET-1"]) == "Bearer *** failed"
    assert parse_json_object("nothing here") is None


@pytest.mark.parametrize(
    "reflection, ground_truth, quoted",
    [
        # the ground truth is read as the grader reads it (issue 19)
        pytest.param("So the count equals 5.", "The answer is 5", True, id="answer-is-value-quoted"),
        pytest.param("I should count the cubes again.", "The answer is 5", False, id="answer-is-not-quoted"),
        pytest.param("The angle must be 57 degrees.", "A: 57", True, id="letter-value-value-quoted"),
        pytest.param("So the answer is A.", "A: 57", True, id="letter-value-letter-quoted"),
        pytest.param("Angle A is a corresponding angle.", "A: 57", False, id="letter-value-point-name-not-quoted"),
    ],
)
def test_leak_check_reads_the_ground_truth_like_the_grader(reflection: str, ground_truth: str, quoted: bool) -> None:
    assert quotes_ground_truth(reflection, ground_truth) is quoted
