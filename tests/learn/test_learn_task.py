"""The learning run's task (srpo_data/offline/learn_task.py): a lookup rule, held-out combinations, public answer
styles."""

from __future__ import annotations

import pandas as pd
import pytest

from srpo_data.offline import learn_task
from srpo_data.offline.fake_endpoint import Script, _question_of
from srpo_reward import grade_answer


def test_every_answer_follows_the_rule_in_both_styles():
    for split in ("train", "test"):
        styles = set()
        for q, gt, colour in learn_task.rows(split, 200):
            shape = next(s for s in learn_task.SHAPES if f" a {s}." in q)
            sides = learn_task.SHAPES[shape]
            if "Choices:" in q:
                styles.add("choice")
                assert gt == "ABCD"[sides - 3] and learn_task.CHOICES in q
            else:
                styles.add("number")
                assert gt == str(sides)
            assert q.startswith("<image>") and q.count("<image>") == 1 and f"The {colour} " in q
        assert styles == {"choice", "number"}


def test_held_out_combinations_never_appear_in_train():
    train = {q for q, _, _ in learn_task.rows("train", 400)}
    test = {q for q, _, _ in learn_task.rows("test", 100)}
    assert train and test and not train & test
    # every shape is in both splits, so the rule (not a memorised string) answers the held-out questions
    for shape in learn_task.SHAPES:
        assert any(f" a {shape}." in q for q in test) and any(f" a {shape}." in q for q in train)


def test_the_grader_reads_the_answers_as_the_reward_will():
    for q, gt, _ in learn_task.rows("train", 40):
        assert grade_answer(f"\\boxed{{{gt}}}", gt).correct
        wrong = "A" if gt == "B" else ("5" if gt == "4" else "B" if gt.isalpha() else "4")
        result = grade_answer(f"\\boxed{{{wrong}}}", gt)
        assert not result.correct and result.status not in {"error", "timeout", "gold_unparsable"}


def test_the_scripted_endpoint_finds_each_questions_own_answer(tmp_path):
    """The endpoint matches questions by substring: no question may contain another one."""
    answers = {}
    for split in ("train", "test"):
        for q, gt, _ in learn_task.rows(split, 400):
            answers[q.replace("<image>", "").strip()] = gt
    script = Script(answers=answers)
    for q, gt in answers.items():
        assert _question_of(f"Question: {q}\nSolve it.", script) == (q, gt)


def test_write_task_writes_the_geometry3k_layout(tmp_path, monkeypatch):
    monkeypatch.setattr("srpo_data.offline.tiny_qwen.build_tiny_qwen25vl",  # the model is tested elsewhere
                        lambda out, width, corpus_extra: (out, width, corpus_extra))
    paths = learn_task.write_task(tmp_path, 24, 8, "http://127.0.0.1:9/v1")
    # the learning run's wider model, its tokenizer also learned on the task's text
    assert paths["model"] == (tmp_path / "tiny-qwen", learn_task.LEARN_WIDTH, learn_task.corpus())
    train = pd.read_parquet(paths["raw"] / "train-00000-of-00001.parquet")
    assert list(train.columns) == ["problem", "answer", "images", "id"] and len(train) == 24
    assert train.iloc[0]["images"][0]["bytes"][:4] == b"\x89PNG"
    yaml_text = paths["builder_yaml"].read_text()
    assert "http://127.0.0.1:9/v1" in yaml_text and "target_first_right: 0.3" in yaml_text


def test_the_scripted_teacher_reads_the_builders_verdict():
    """Both scripted teachers answer the verdict line, not the instructions (which name both verdicts)."""
    from srpo_data.offline.fake_endpoint import scripted_reply
    from srpo_data.stage1.builder.steps import load_prompt

    q, gt, _ = learn_task.rows("train", 1)[0]
    question = q.replace("<image>", "")
    script = Script(answers={question: gt})
    template = load_prompt("reflection")
    for verdict, word in (("wrong", "guessed"), ("correct", "correctly")):
        user = (template.replace("{question}", question).replace("{attempt}", "x").replace("{answer}", "x")
                .replace("{ground_truth}", gt).replace("{verdict}", verdict))
        body = {"messages": [{"role": "system", "content": "teacher"}, {"role": "user", "content": user}]}
        assert word in learn_task.scripted_reply(body, script)
        generic = scripted_reply(body, script)
        assert ("looks wrong" in generic) == (verdict == "wrong")


def test_the_tokenizer_learned_on_the_task_keeps_its_words_whole(tmp_path):
    """With the task's corpus, a five-block target is about half the tokens (the words whole, as in Qwen's
    real vocabulary); the builder's SFT form (no spaces inside the tags) is what the corpus covers."""
    from transformers import AutoTokenizer

    from srpo_data.offline.tiny_qwen import build_tiny_qwen25vl

    target = (learn_task.tight(learn_task.attempt("hexagon", 6, False, guess=True))
              + f" <reflection>{learn_task.reflection('hexagon', wrong=True)}</reflection> "
              + learn_task.tight(learn_task.attempt("hexagon", 6, False)))
    plain = AutoTokenizer.from_pretrained(build_tiny_qwen25vl(tmp_path / "plain", 64))
    task = AutoTokenizer.from_pretrained(build_tiny_qwen25vl(tmp_path / "task", 64, corpus_extra=learn_task.corpus()))
    assert task.tokenize(" hexagon") == ["Ġhexagon"] and len(plain.tokenize(" hexagon")) > 1
    n_plain, n_task = len(plain(target)["input_ids"]), len(task(target)["input_ids"])
    assert n_task < 0.6 * n_plain, (n_task, n_plain)
    assert task.decode(task(target)["input_ids"]) == target  # still a byte-level BPE: lossless
