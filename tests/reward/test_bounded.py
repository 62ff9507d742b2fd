"""Ground-truth normalisation, the guard, one time budget per sample, and the verdict cache."""

from pathlib import Path

import pytest

from srpo_reward import compute_score, grading, normalize_ground_truth
from srpo_reward.grading import grade_answer, grade_answers, guard_reason, verdict_cache


@pytest.mark.parametrize(
    "gold, alternatives",
    [
        pytest.param("$100%$", ("$100\\%$",), id="latex-percent-is-not-a-comment"),
        pytest.param("1 000", ("1000",), id="space-thousands"),
        pytest.param("14{,}916", ("14916",), id="brace-comma-thousands"),
        pytest.param("Surface Area $=9236.28 \\mathrm{~m}^{2}$", ("$9236.28 \\mathrm{~m}^{2}$",), id="descriptive-lhs"),
        pytest.param("x = 3", ("x = 3",), id="one-letter-lhs-kept"),
        pytest.param(["4", "four", "4"], ("4", "four"), id="list-of-acceptable"),
        pytest.param(2.5, ("2.5",), id="float"),
        pytest.param(None, (), id="none"),
        pytest.param(" ", (), id="blank"),
    ],
)
def test_normalize_ground_truth(gold, alternatives):
    assert normalize_ground_truth(gold) == alternatives


@pytest.mark.parametrize(
    "pred, gold, correct",
    [
        pytest.param("100\\%", "$100%$", True, id="percent-gold"),
        pytest.param("1000", "1 000", True, id="space-thousands-gold"),
        pytest.param("9236.28", "Surface Area $=9236.28 \\mathrm{~m}^{2}$", True, id="mathverse-lhs-units"),
        pytest.param("9200", "Surface Area $=9236.28 \\mathrm{~m}^{2}$", False, id="mathverse-wrong"),
        pytest.param("four", ["4", "four"], True, id="any-of-list"),
        pytest.param("\\boxed{1} and \\boxed{2}", "\\{1,2\\}", True, id="all-boxes-are-a-set"),
        pytest.param("\\boxed{2}", "\\{1,2\\}", False, id="one-box-of-a-set-is-wrong"),
        pytest.param("so $x \\geq 5$ holds", "x \\ge 5", True, id="relation-in-prose"),
        pytest.param("$\\begin{bmatrix}1&0\\\\0&1\\end{bmatrix}$", "\\begin{pmatrix}1&0\\\\0&1\\end{pmatrix}", True, id="matrix-env"),
        pytest.param("1,2", "1.2", False, id="comma-list-is-not-a-decimal"),
        pytest.param("1000,99", "1000.99", True, id="decimal-comma-like-math-verify"),
    ],
)
def test_grading_like_math_verify(pred, gold, correct):
    g = grade_answer(pred, gold, timeout=30)
    assert (g.correct, g.status) == (correct, "ok")  # a wrong row is a verdict, not a grader error


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("9^{9^{9^{9}}}", "power_tower"),
        ("9^{9^{9}}", "power_tower"),
        ("2^{1000000}", "huge_exponent"),
        ("100000!", "huge_factorial"),
        ("(" * 2000 + "1" + ")" * 2000, "too_deep"),
        ("1" * 500, "huge_number"),
        ("\\boxed{1}" * 30, "too_many_boxes"),
        ("x" * 20000, "too_long"),
        ("2^{3^4}", None),
        ("x^2+y^2=z^2", None),
        ("\\frac{5\\sqrt{2}}{2}", None),
        ("**Final Answer** **bold** **x**", None),
    ],
)
def test_guard(answer, reason):
    assert guard_reason(answer) == reason


def test_refused_sample_is_a_visible_grade_error_and_never_raises():
    text = ("<think>t</think> <answer>\\boxed{9^{9^{9^{9}}}}</answer> <reflection>r</reflection> "
            "<think>t</think> <answer>\\boxed{" + "(" * 3000 + "}</answer>")
    out = compute_score("adv", text, "3")
    assert out["grade_error"] == 1.0 and out["acc"] == 0.0 and out["reward_error"] == 0.0


def test_one_megabyte_answer_is_refused():
    g = grade_answer("x + " * 250_000, "1")
    assert (g.correct, g.status) == (False, "refused")


@pytest.fixture
def slow_worker(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setattr(grading, "WORKER_TARGET", "_slow_grader:sleepy_grade")
    verdict_cache.clear()
    yield
    grading.shutdown_pool()


def test_both_answers_share_one_budget_and_both_time_out(slow_worker, monkeypatch):
    # One budget: both answers go to the worker in ONE round trip with ONE deadline (answers
    # graded one by one would make two, each with its own budget).
    trips = []
    real = grading._Worker.grade_many

    def grade_many(self, tasks, deadline, results):
        trips.append([pred for _, pred in tasks])
        return real(self, tasks, deadline, results)

    monkeypatch.setattr(grading._Worker, "grade_many", grade_many)
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


def test_cache_never_keeps_a_timeout(slow_worker):
    grade_answer("\\sin^3 x", "\\sin^2 x", timeout=0.3)
    assert all(v[0] in ("ok", "gold_unparsable") for v in verdict_cache.data.values())
    assert len(verdict_cache.data) == 0


def test_verdicts_written_together_are_all_read(monkeypatch):
    # A worker writes each verdict as soon as it has it; fast verdicts reach the pipe
    # together.  The parent must take every line it has already read, not wait on the
    # (now empty) pipe for one that arrived: that turned right answers into timeouts.
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setattr(grading, "WORKER_TARGET", "_slow_grader:instant_grade")
    grading.shutdown_pool()
    verdict_cache.clear()
    try:
        preds = [f"\\sin^{{{i}}} x" for i in range(40)]  # math-verify's, not a fast path's
        grades = grade_answers(preds, "\\sin^{7} x", timeout=10)
        assert [g.status for g in grades] == ["ok"] * 40
        assert [i for i, g in enumerate(grades) if g.correct] == [7]
    finally:
        grading.shutdown_pool()


def test_waiting_for_a_busy_worker_does_not_spend_the_budget(monkeypatch, tmp_path):
    # verl's reward loop scores many samples at once from executor threads.  With one worker,
    # a sample that waits for it longer than its whole grading budget still gets its verdict:
    # the budget is for grading.  No durations to tune: the first sample holds the worker until
    # the test opens a gate, and the gate opens only after the second has waited twice its budget.
    import threading
    import time

    budget = 2.0
    started, gate = tmp_path / "started", tmp_path / "gate"
    monkeypatch.setenv("SRPO_TEST_STARTED", str(started))
    monkeypatch.setenv("SRPO_TEST_GATE", str(gate))
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setattr(grading, "WORKER_TARGET", "_slow_grader:gated_grade")
    monkeypatch.setenv("SRPO_GRADER_WORKERS", "1")
    grading.shutdown_pool()
    monkeypatch.setattr(grading, "_pool", None)  # a new pool, of the one worker asked for
    verdict_cache.clear()
    queued = threading.Event()
    real_acquire = grading._WorkerPool.acquire

    def acquire(self, target, deadline):
        if threading.current_thread().name == "queued":
            queued.set()  # its budget is running: grade_answer took its start time before this
        return real_acquire(self, target, deadline)

    monkeypatch.setattr(grading._WorkerPool, "acquire", acquire)
    grades = {}

    def grade(name, pred, timeout):
        grades[name] = grade_answer(pred, "y", timeout=timeout)

    threads = [threading.Thread(target=grade, name="holder", args=("holder", "\\sin^3 x", 600)),
               threading.Thread(target=grade, name="queued", args=("queued", "\\sin^5 x", budget))]
    try:
        assert grade_answer("\\sin^9 x", "\\sin^8 x", timeout=60).status == "ok"  # the worker is up and warm
        assert grading._get_pool().size == 1
        threads[0].start()
        for _ in range(12_000):  # the holder's task reached the worker (at most 2 minutes)
            if started.exists():
                break
            time.sleep(0.01)
        assert started.exists(), "the first sample never reached the worker"
        threads[1].start()
        assert queued.wait(120), "the second sample never asked for a worker"
        time.sleep(2 * budget)  # at least twice its budget spent waiting (more under load: still right)
        gate.touch()
        for t in threads:
            t.join(timeout=300)
        assert not any(t.is_alive() for t in threads), "grading hung"
        assert {k: (g.status, g.correct) for k, g in grades.items()} == {"holder": ("ok", True), "queued": ("ok", True)}
    finally:
        gate.touch()
        grading.shutdown_pool()
