"""The reflection report on generated rollouts with known transitions, bad input, and the PNG plots."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from PIL import Image

from eval_lookalikes import eval_row, response, write_eval_parquet, write_jsonl
from srpo_eval.data import load_data
from srpo_eval.report import build_report, main
from srpo_eval.rollouts import read_rollouts
from srpo_reward.grading import choice_letter

TEN = [f"option {c}" for c in "abcdefghij"]


@pytest.fixture
def data_file(tmp_path):
    rows = [
        eval_row("mv-1", "mathvista", "B", "multiple_choice", ["x", "y", "z"], "Pick the right one", 0),
        eval_row("mv-2", "mathvista", "7", "integer", [], "How many bars?", 1),
        eval_row("mv-3", "mathvista", "1.2", "float", [], "What is the slope?", 2),
        eval_row("mv-4", "mathvista", "C", "multiple_choice", ["1", "2", "3", "4"], "Which value?", 3),
        eval_row("mv-9", "mathvista", "3", "integer", [], "Never answered", 4),
        eval_row("vs-5", "mathverse", "\\frac{5}{2}", "expression", [], "Find the area.", 5),
        eval_row("vs-6", "mathverse", "14", "integer", [], "Find the perimeter.", 6),
        eval_row("mp-7", "mmmu_pro", "J", "multiple_choice", TEN, "Which painting?", 7),
        eval_row("mp-8", "mmmu_pro", "B", "multiple_choice", ["1", "2", "3", "4"], "What is x?", 8),
    ]
    return write_eval_parquet(tmp_path / "eval.parquet", rows)


# Each rollout with the cell it must land in (first answer, then final answer).
KNOWN = [
    ({"id": "mv-1", "response": response("A", "B")}, "wrong_right"),
    ({"id": "mv-1", "response": response("y", "B")}, "right_right"),  # option text "y" is option B
    ({"id": "mv-2", "response": response("7", "7")}, "right_right"),
    ({"id": "mv-3", "response": response("1.2", "1.5")}, "right_wrong"),
    ({"id": "mv-4", "response": response("A", "D")}, "wrong_wrong"),
    ({"id": "vs-5", "response": response("2.5", "\\frac{5}{2}")}, "right_right"),
    ({"id": "vs-6", "response": "<think>p = 14</think> <answer>14</answer>"}, "right_right"),  # one answer, bad format
    ({"id": "vs-6", "response": "<think>a long chain that was cut", "finish_reason": "length"}, "wrong_wrong"),
    ({"id": "mp-7", "response": response("A", "J")}, "wrong_right"),  # letters beyond E
    ({"id": "mp-8", "response": response("B", "(C)")}, "right_wrong"),
    ({"id": "mp-8", "response": response("D", "B")}, "wrong_right"),
]
BAD_LINES = [
    {"id": "zz-404", "response": response("A", "B")},  # unknown id
    "not json at all",  # bad JSON
    {"foo": 1},  # neither an id nor a verl dump record
    {"id": "mv-1"},  # no response
]

# Hand-computed from KNOWN: (responses, RR, WR, RW, WW, acc_first, acc_final, fix, harm, format failure rate)
EXPECTED = {
    "mathvista": (5, 2, 1, 1, 1, Fraction(3, 5), Fraction(3, 5), Fraction(1, 2), Fraction(1, 3), Fraction(0)),
    "mathverse": (3, 2, 0, 0, 1, Fraction(2, 3), Fraction(2, 3), Fraction(0), Fraction(0), Fraction(2, 3)),
    "mmmu_pro": (3, 0, 2, 1, 0, Fraction(1, 3), Fraction(2, 3), Fraction(1), Fraction(1), Fraction(0)),
    "overall": (11, 4, 3, 2, 2, Fraction(6, 11), Fraction(7, 11), Fraction(3, 5), Fraction(2, 6), Fraction(2, 11)),
}


@pytest.fixture
def report(data_file, tmp_path):
    rollouts = write_jsonl(tmp_path / "run.jsonl", [r for r, _ in KNOWN] + BAD_LINES)
    return build_report([rollouts], [data_file], tmp_path / "out", plots=False)


@pytest.mark.parametrize("scope", list(EXPECTED))
def test_known_transitions(report, scope):
    run = report["runs"][0]
    m = run["overall"] if scope == "overall" else run["benchmarks"][scope]
    n, rr, wr, rw, ww, acc1, acc2, fix, harm, fmt = EXPECTED[scope]
    assert m["responses"] == n
    assert m["transitions"] == {"right_right": rr, "wrong_right": wr, "right_wrong": rw, "wrong_wrong": ww}
    assert m["acc_first"] == pytest.approx(float(acc1))
    assert m["acc_final"] == pytest.approx(float(acc2))
    assert m["fix_rate"] == pytest.approx(float(fix))
    assert m["harm_rate"] == pytest.approx(float(harm))
    assert m["format_failure_rate"] == pytest.approx(float(fmt))


def test_each_rollout_lands_in_its_cell(report, tmp_path):
    lines = [json.loads(x) for x in (tmp_path / "out" / "samples-run.jsonl").read_text().splitlines()]
    assert [x["transition"] for x in lines] == [cell for _, cell in KNOWN]


def test_well_formed_subset_and_failure_reasons(report):
    o = report["runs"][0]["overall"]
    wf = o["well_formed"]
    assert wf["responses"] == 9
    assert wf["transitions"] == {"right_right": 3, "wrong_right": 3, "right_wrong": 2, "wrong_wrong": 1}
    assert wf["fix_rate"] == pytest.approx(3 / 4) and wf["harm_rate"] == pytest.approx(2 / 5)
    assert o["format_failures"] == {"missing_block": 1, "unclosed_tag": 1}
    assert o["truncated"] == 1 and o["no_first_answer"] == 1


def test_bad_input_is_counted_not_dropped(report):
    run = report["runs"][0]
    inp = run["input"]
    assert inp["records"] == len(KNOWN) + len(BAD_LINES)
    assert inp["usable"] == len(KNOWN) and inp["unusable"] == len(BAD_LINES)
    assert inp["errors"] == {
        "bad_json": 1,
        "missing_fields": 1,
        "missing_response": 1,
        "unknown_id": 1,
        "no_matching_question": 0,
        "ambiguous_question": 0,
        "repeated_line": 0,
        "duplicate_sample": 0,
    }
    assert sorted(x["origin"] for x in inp["unusable_examples"]) == ["run.jsonl:12", "run.jsonl:13", "run.jsonl:14", "run.jsonl:15"]
    # the question nobody answered is counted as missing, per benchmark and overall
    assert run["benchmarks"]["mathvista"]["questions"] == 5
    assert run["benchmarks"]["mathvista"]["questions_missing"] == 1
    assert run["overall"]["questions_missing"] == 1


def test_markdown_reports_counts(report, tmp_path):
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| overall | 9 | 8 | 11 | 54.5% | 63.6% | 4 | 3 | 2 | 2 | 60.0% | 33.3% | 18.2% | 1 |" in md
    assert "`unknown_id` (the id is not a question of the data): 1" in md
    assert "questions of the data without any response: 1: `mv-9`" in md


# ------------------------------------------------------------- count defects (issue 11)
def test_repeated_lines_are_not_extra_samples(data_file, tmp_path):
    """The same {id, response} line twice is one sample and a counted `repeated_line`."""
    line = {"id": "mv-2", "response": response("7", "7")}
    other = {"id": "mv-2", "response": response("7", "8")}
    given = {"id": "mv-2", "sample": 1, "response": response("7", "9")}  # explicit sample index 1 again
    rs = read_rollouts(write_jsonl(tmp_path / "r.jsonl", [line, line, other, given]), load_data([data_file]))
    assert [r.error for r in rs] == [None, "repeated_line", None, "duplicate_sample"]
    assert [r.sample for r in rs if not r.error] == [0, 1]


def test_missing_questions_are_listed(report):
    assert report["runs"][0]["overall"]["missing_ids"] == ["mv-9"]
    assert report["runs"][0]["benchmarks"]["mathverse"]["missing_ids"] == []


def test_imported_unmatched_records_keep_their_error(data_file, tmp_path):
    """generate --rollouts keeps unmatched dump records with an error; the report must not relabel them."""
    from srpo_eval.generate import import_rollouts

    dump = write_jsonl(tmp_path / "dump.jsonl", [{"input": "user\nnothing like it", "output": "x", "gts": "9.9", "score": 0, "step": 1}])
    out = tmp_path / "imported.jsonl"
    import_rollouts(dump, [data_file], out)
    rs = read_rollouts(out, load_data([data_file]))
    assert [r.error for r in rs] == ["no_matching_question"]
    assert "dump.jsonl:1" in rs[0].origin


def test_hidden_answer_in_think_is_not_a_fix(data_file):
    """A malformed response has one answer (its last block): an <answer> inside <think> is no first attempt."""
    from srpo_eval.rollouts import Rollout
    from srpo_eval.scoring import score_rollout

    item = load_data([data_file]).items["mv-2"]  # gold 7
    hidden = "<think>maybe <answer>3</answer> no</think> <answer>7</answer>"
    res = score_rollout(Rollout(id="mv-2", response=hidden), item)
    assert not res.format_ok
    assert (res.first_answer, res.transition) == ("7", "right_right")


def test_repeated_names_are_refused(data_file, tmp_path, capsys):
    run = write_jsonl(tmp_path / "a.jsonl", [{"id": "mv-2", "response": response("7", "7")}])
    with pytest.raises(ValueError, match="repeated: x"):
        build_report([run, run], [data_file], tmp_path / "o", names=["x", "x"], plots=False)
    assert main([str(run), str(run), "--names", "x", "x", "--data", str(data_file), "--out", str(tmp_path / "o2"), "--no-plots"]) == 2


def test_lengths_hand_computed(data_file, tmp_path):
    # response("7", "7") in approx_tokens (\w+ runs and single symbols):
    # <think>first reasoning</think> = 3+2+4 = 9, <answer>\boxed{7}</answer> = 3+5+4 = 12, so L1 = 21;
    # <reflection>check it</reflection> = 3+2+4 = 9 (its content: 2), second think 9, second answer 12: L = 51.
    rollouts = write_jsonl(tmp_path / "one.jsonl", [{"id": "mv-2", "response": response("7", "7")}])
    lg = build_report([rollouts], [data_file], tmp_path / "o1", plots=False)["runs"][0]["overall"]["lengths"]
    assert lg["first_attempt"]["mean"] == 21
    assert lg["reflection"]["mean"] == 2
    assert lg["total"]["mean"] == 51
    assert lg["ratio_to_target"]["median"] == pytest.approx(51 / 42)
    assert lg["share_near_target"] == 1.0  # |51/42 - 1| <= (2.5 - 2) / 2


def test_two_runs_side_by_side_and_png(data_file, tmp_path):
    a = write_jsonl(tmp_path / "grpo.jsonl", [{"id": "mv-2", "response": response("7", "8")}, {"id": "mp-7", "response": response("A", "B")}])
    b = write_jsonl(tmp_path / "srpo.jsonl", [{"id": "mv-2", "response": response("7", "7")}, {"id": "mp-7", "response": response("A", "J")}])
    rep = build_report([a, b], [data_file], tmp_path / "cmp")
    assert [r["run"] for r in rep["runs"]] == ["grpo", "srpo"]
    acc = rep["comparison"]["scopes"]["overall"]["acc_final"]
    assert acc["values"] == [0.0, 1.0] and acc["delta"] == 1.0
    fix = rep["comparison"]["scopes"]["mmmu_pro"]["fix_rate"]
    assert fix["values"] == [0.0, 1.0]
    md = (tmp_path / "cmp" / "report.md").read_text()
    assert "| acc final | 0.0% | 100.0% | +100.0 pt |" in md
    assert "| right-right | 0 | 1 | +1 |" in md and "| right-wrong | 1 | 0 | -1 |" in md
    bars = Image.open(tmp_path / "cmp" / "transitions.png").convert("RGB")
    assert bars.width > 400 and bars.height > 200
    colours = {c for _, c in bars.getcolors(maxcolors=1 << 20)}
    assert (31, 119, 180) in colours and (255, 127, 14) in colours  # both runs' bars (C0 blue, C1 orange)
    hist = Image.open(tmp_path / "cmp" / "lengths.png").convert("RGB")
    # histogram bars are translucent: some clearly coloured (non-grey) pixels are drawn
    assert any(max(c) - min(c) > 60 for _, c in hist.getcolors(maxcolors=1 << 20))


def test_cli_exit_codes(data_file, tmp_path, capsys):
    good = write_jsonl(tmp_path / "good.jsonl", [{"id": "mv-2", "response": response("7", "7")}])
    assert main([str(good), "--data", str(data_file), "--out", str(tmp_path / "g"), "--no-plots"]) == 0
    assert "acc first 100.0% final 100.0%" in capsys.readouterr().out
    bad = write_jsonl(tmp_path / "bad.jsonl", ["nope", {"id": "x", "response": "y"}])
    assert main([str(bad), "--data", str(data_file), "--out", str(tmp_path / "b"), "--no-plots"]) == 1
    assert "no usable rollout" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text,expected",
    [
        pytest.param("J", "J", id="letter-j"),
        pytest.param("(J)", "J", id="paren"),
        pytest.param("Option J: option j", "J", id="option-prefix"),
        pytest.param("the answer is G", "G", id="answer-is"),
        pytest.param("option c", "C", id="option-text"),
        pytest.param("K", None, id="beyond-options"),
        pytest.param("A cat", None, id="article-not-a-letter"),
        pytest.param("(A) or (B)", None, id="two-letters"),
    ],
)
def test_ten_option_letters_use_the_rewards_rule(text, expected):
    assert choice_letter(text, TEN) == expected


def test_dump_record_matched_by_prompt_text(data_file, tmp_path):
    data = load_data([data_file])
    prompt = data.items["mv-3"].prompt_text.replace("<image>", "")
    dump = write_jsonl(
        tmp_path / "7.jsonl",
        [
            {"input": f"system\nYou are a helpful assistant.\nuser\n{prompt}\nassistant\n", "output": response("1.2", "1.2"), "gts": "1.2", "score": 1.0, "step": 7},
            {"input": f"user\n{prompt}\nassistant\n", "output": "x", "gts": "9.9", "score": 0.0, "step": 7},  # wrong gts
        ],
    )
    rs = read_rollouts(dump, data)
    assert [(r.id, r.error) for r in rs] == [("mv-3", None), (None, "no_matching_question")]


def test_report_agrees_with_the_training_reward(data_file):
    """First/final correctness equals srpo_reward.compute_score's acc_first/acc (questions with <= 5 options)."""
    from srpo_eval.scoring import score_rollout
    from srpo_eval.rollouts import Rollout
    from srpo_reward import compute_score

    data = load_data([data_file])
    checked = 0
    for rec, _cell in KNOWN:
        item = data.items[rec["id"]]
        if len(item.options) > 5:
            continue  # srpo_reward's choice rule stops at E; the report's adapter covers MMMU-Pro
        res = score_rollout(Rollout(id=item.id, response=rec["response"]), item)
        ref = compute_score(item.benchmark, rec["response"], item.ground_truth, dict(item.extra_info))
        assert (res.first_correct, res.final_correct, res.format_ok) == (bool(ref["acc_first"]), bool(ref["acc"]), bool(ref["format"]))
        checked += 1
    assert checked == 10


@pytest.mark.parametrize(
    "options,expected",
    [
        pytest.param(["x", "y"], ("x", "y"), id="list"),
        pytest.param("['x', 'y']", ("x", "y"), id="python-literal-string"),
        pytest.param('["x", "y"]', ("x", "y"), id="json-string"),
        pytest.param("not a list", (), id="garbage-string"),
        pytest.param(None, (), id="none"),
    ],
)
def test_options_read_from_extra_info(options, expected):
    from srpo_eval.data import item_from_row

    row = {"data_source": "b", "prompt": "q", "reward_model": {"ground_truth": "A"}, "extra_info": {"options": options, "index": 3}}
    item = item_from_row(row, 0)
    assert item.options == expected and item.id == "b-3"


def test_data_problems_are_counted(tmp_path):
    rows = [
        eval_row("q-1", "mathvista", "7", "integer", [], "How many?", 0),
        eval_row("q-1", "mathvista", "8", "integer", [], "How many again?", 1),  # duplicate id
        eval_row("q-2", "mathvista", "", "integer", [], "No gold", 2),  # missing ground truth
    ]
    data = write_eval_parquet(tmp_path / "d.parquet", rows)
    run = write_jsonl(tmp_path / "r.jsonl", [{"id": "q-1", "response": response("7", "7")}])
    rep = build_report([run], [data], tmp_path / "o", plots=False)["runs"][0]
    assert rep["data"]["duplicate_ids"] == ["q-1"] and rep["data"]["missing_ground_truth"] == ["q-2"]
    assert rep["overall"]["questions"] == 1 and rep["overall"]["acc_final"] == 1.0
    md = (tmp_path / "o" / "report.md").read_text()
    assert "data problems: 1 duplicate ids, 1 rows without ground truth" in md
