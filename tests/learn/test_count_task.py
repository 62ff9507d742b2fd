"""The ablation study's task (srpo_data/offline/count_task.py): errors that read like right attempts, a reflection that
does not give the verdict, a second attempt that can fix and break, lengths that vary."""

from __future__ import annotations

import re
import statistics

import pytest

from srpo_data.offline import count_task as ct
from srpo_data.offline.fake_endpoint import Script, _question_of
from srpo_data.stage1.builder.steps import load_prompt, quotes_ground_truth
from srpo_reward import compute_score, grade_answer
from srpo_reward.format import parse_response

RIGHT, REVISE = 0.55, 0.85


def texts(n=600, split="train"):
    return [(q.replace("<image>", ""), gt, ct.scripted_texts(q.replace("<image>", ""), RIGHT, REVISE))
            for q, gt, _ in ct.rows(split, n)]


def answer_of(text):
    return parse_response(f"{text} <reflection>r</reflection> {text}").first_answer


def test_answers_follow_the_rule_and_the_splits_never_share_a_list():
    train, test = ct.rows("train", 800), ct.rows("test", 200)
    for q, gt, _ in train + test:
        words, target = ct.parse_question(q.replace("<image>", ""))
        assert gt == str(words.count(target)) and ct.MIN_LEN <= len(words) <= ct.MAX_LEN and int(gt) >= 1
        assert ct.question(words, target)[0] == q  # parse_question inverts question
    assert not {q for q, _, _ in train} & {q for q, _, _ in test}
    assert len({q for q, _, _ in test}) == 200  # distinct held-out questions
    assert ct.rows("train", 50) == train[:50]  # a smaller workspace is a prefix (the tokenizer corpus covers it)


def test_the_scripted_endpoint_finds_each_questions_own_answer():
    answers = {q.replace("<image>", "").strip(): gt for split, n in (("train", 600), ("test", 150))
               for q, gt, _ in ct.rows(split, n)}
    script = Script(answers=answers)
    for q, gt in answers.items():
        assert _question_of(f"Question: {q}\nSolve it.", script) == (q, gt)


def test_a_wrong_first_attempt_reads_exactly_like_a_right_one():
    """Masking the count, a wrong first attempt and the right one of the same question are the same text: no
    word gives the verdict away (the learning task's ``I guess`` opening would fail this)."""
    seen = {True: 0, False: 0}
    for q, gt, t in texts():
        ok = grade_answer(answer_of(t["first"]), gt).correct
        assert ok == t["first_right"]
        seen[ok] += 1
        words, target = ct.parse_question(q)
        right = ct.first_attempt(target, words.count(target))
        mask = lambda s: re.sub(r"\d+", "N", s)  # noqa: E731
        assert mask(t["first"]) == mask(right)
        assert t["first"].split(":")[0] == right.split(":")[0]  # the first words, before the count, are the same
    assert min(seen.values()) > 100, seen  # both kinds are common


def test_the_teacher_writes_the_same_reflection_for_either_verdict_and_never_the_answer():
    from srpo_data.offline.fake_endpoint import Script

    rows = ct.rows("train", 40)
    answers = {q.replace("<image>", ""): gt for q, gt, _ in rows}
    script = Script(answers=answers, right_rate=RIGHT, revise_right_rate=REVISE)
    template = load_prompt("reflection")
    for q, gt in answers.items():
        replies = set()
        for verdict in ("wrong", "correct"):
            user = (template.replace("{question}", q).replace("{attempt}", "x").replace("{answer}", "x")
                    .replace("{ground_truth}", gt).replace("{verdict}", verdict))
            body = {"messages": [{"role": "system", "content": "teacher"}, {"role": "user", "content": user}]}
            replies.add(ct.scripted_reply(body, script))
        assert len(replies) == 1  # the verdict line changes nothing
        assert not quotes_ground_truth(next(iter(replies)), gt) and not re.search(r"\d", next(iter(replies)))


def test_errors_depend_on_the_content_long_lists_slip_more():
    by_len = {}
    for q, gt, t in texts(1500):
        n = len(ct.parse_question(q)[0])
        by_len.setdefault(n <= 6, []).append((t["first_right"], t["revision_right"]))
    short, long_ = by_len[True], by_len[False]
    rate = lambda rows, i: sum(r[i] for r in rows) / len(rows)  # noqa: E731
    assert rate(short, 0) > rate(long_, 0) + 0.1  # first attempts
    assert rate(short, 1) > rate(long_, 1) + 0.03  # revisions
    assert rate(short + long_, 1) > rate(short + long_, 0) + 0.15  # the enumeration is the better attempt


def test_the_second_attempt_enumerates_and_can_fix_and_break():
    transitions = {}
    for q, gt, t in texts(1500):
        words, target = ct.parse_question(q)
        work = t["revision"].split("<think> ", 1)[1].split(". So", 1)[0]
        assert tuple(re.sub(r" \d+", "", work).split(", ")) == words  # every word, in order
        first = grade_answer(answer_of(t["first"]), gt).correct
        second = grade_answer(answer_of(t["revision"]), gt).correct
        assert second == t["revision_right"]
        # the enumeration's own numbering reaches the count it answers, right or wrong
        assert re.findall(r"So (\d+)\.", t["revision"]) == [answer_of(t["revision"])]
        transitions[(first, second)] = transitions.get((first, second), 0) + 1
    assert all(transitions.get(k, 0) >= 20 for k in ((False, True), (True, False), (True, True), (False, False))), transitions


def test_response_lengths_vary_so_the_length_term_acts():
    ratios, f_lens = [], []
    for q, gt, t in texts(400):
        response = f"{t['first']} <reflection>{t['reflection']}</reflection> {t['revision']}"
        out = compute_score("count", response, gt)
        assert out["format"] == 1.0
        ratios.append(out["len_ratio"])
        f_lens.append(out["f_len"])
    assert statistics.pstdev(ratios) > 0.1 and max(ratios) - min(ratios) > 0.4, (min(ratios), max(ratios))
    assert 2.0 < statistics.mean(ratios) < 2.5  # about T_target = 2 L1, where f_len is steep
    assert statistics.pstdev(f_lens) > 0.1, statistics.pstdev(f_lens)


def test_the_builders_target_of_every_text_is_in_the_tokenizer_corpus():
    lines = set(ct.corpus(n_train=60, n_test=10).splitlines())
    for q, gt, t in texts(60):
        for text in (t["first"], t["revision"]) if t["first_right"] else (t["revision"],):
            if t["revision_right"]:
                assert ct.tight(text) in lines, text
        assert q in lines and f"<reflection>{t['reflection']}</reflection>" in lines


def test_write_task_writes_the_geometry3k_layout(tmp_path, monkeypatch):
    import pandas as pd

    monkeypatch.setattr("srpo_data.offline.tiny_qwen.build_tiny_qwen25vl", lambda out, width, corpus_extra: (out, width))
    paths = ct.write_task(tmp_path, 24, 8, "http://127.0.0.1:9/v1")
    assert paths["model"] == (tmp_path / "tiny-qwen", ct.LEARN_WIDTH)
    test = pd.read_parquet(paths["raw"] / "test-00000-of-00001.parquet")
    assert list(test.columns) == ["problem", "answer", "images", "id"] and len(test) == 8
    assert f"target_first_right: {ct.FIRST_RIGHT}" in paths["builder_yaml"].read_text()


@pytest.mark.parametrize("count, up, expected", [(3, True, 4), (3, False, 2), (0, False, 1)])
def test_slipped_is_one_off(count, up, expected):
    assert ct.slipped(count, up) == expected
