"""math-verify's verdicts (``srpo_reward.verdicts``): one budget per sample, one grade per distinct
(ground truth, answer), never a cached timeout."""

from srpo_reward import workers
from srpo_reward.grading import grade_answer, grade_answers, verdict_cache


def test_both_answers_share_one_budget_and_both_time_out(grader_target, monkeypatch):
    # One budget: both answers go to the worker in ONE round trip with ONE deadline (answers
    # graded one by one would make two, each with its own budget).
    grader_target("sleepy_grade")
    trips = []
    real = workers.Worker.grade_many

    def grade_many(self, tasks, deadline, results):
        trips.append([pred for _, pred in tasks])
        return real(self, tasks, deadline, results)

    monkeypatch.setattr(workers.Worker, "grade_many", grade_many)
    grades = grade_answers(["\\sin^3 x", "\\sin^4 x"], "\\sin^2 x", timeout=0.5)
    assert trips == [["\\sin^3 x", "\\sin^4 x"]]
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
