"""math-verify's verdicts (``srpo_reward.verdicts``): one budget per sample, one grade per distinct
(ground truth, answer), also across threads grading at once, never a cached timeout."""

import threading

from srpo_reward.grading import grade_answer, grade_answers, verdict_cache


def test_both_answers_share_one_budget_and_both_time_out(grader_target, trips):
    # One budget: both answers go to the worker in ONE round trip with ONE deadline (answers
    # graded one by one would make two, each with its own budget).
    grader_target("sleepy_grade")
    grades = grade_answers(["\\sin^3 x", "\\sin^4 x"], "\\sin^2 x", timeout=0.5)
    assert [preds for _, preds in trips] == [["\\sin^3 x", "\\sin^4 x"]]
    assert [g.status for g in grades] == ["timeout", "timeout"]
    assert verdict_cache.data == {} or all(v[0] != "timeout" for v in verdict_cache.data.values())


def test_verdicts_are_remembered_within_a_group():
    verdict_cache.clear()
    group = ["\\boxed{\\{x, 1\\}}", "\\boxed{\\{1,x\\}}", "\\boxed{\\{x, 1\\}}", "\\boxed{\\{x, 1\\}}"]
    grades = [grade_answer(p, "\\{1, x\\}", timeout=30) for p in group]
    assert all(g.correct for g in grades)
    assert verdict_cache.misses == 2 and verdict_cache.hits == 2


def test_cache_never_keeps_a_timeout(grader_target):
    grader_target("sleepy_grade")
    grade_answer("\\sin^3 x", "\\sin^2 x", timeout=0.3)
    assert all(v[0] in ("ok", "gold_unparsable") for v in verdict_cache.data.values())
    assert len(verdict_cache.data) == 0


def test_threads_grading_the_same_answer_at_once_send_it_once(grader_target, trips):
    # verl's reward loop grades a group's rollouts in several threads at once; an answer they
    # share goes to a worker once (0.3 s there), the other threads wait for that verdict.
    grader_target("steady_grade", 2)
    assert grade_answer("\\sin^9 x", "y", timeout=60).status == "ok"  # the pool is up
    trips.clear()
    start = threading.Barrier(6)
    grades = []

    def grade():
        start.wait()
        grades.append(grade_answer("\\sin^3 x", "y", timeout=30))

    threads = [threading.Thread(target=grade) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert [(g.status, g.correct, g.method) for g in grades] == [("ok", True, "math_verify")] * 6
    assert [preds for _, preds in trips] == [["\\sin^3 x"]]


def test_a_groups_answers_go_to_the_worker_that_parsed_its_gold(grader_target, trips):
    grader_target("instant_grade", 2)
    for i in range(6):  # one after another, as one caller thread grades a group
        assert grade_answer(f"\\sin^{{{i}}} x", "\\sin^{2} x", timeout=60).status == "ok"
    assert len(trips) == 6 and len({pid for pid, _ in trips}) == 1
