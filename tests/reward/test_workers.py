"""The grading workers (``srpo_reward.workers``): a hard time limit from any thread, a crash is a
grade, a stuck worker is replaced, verdicts written together are all read, queueing for a
busy worker is not grading time, and a script without a ``__main__`` guard is not re-run."""

import sys
import threading
import time

import pytest

from srpo_reward import guard, workers
from srpo_reward.grading import grade_answer, grade_answers


def test_time_limit_kills_a_slow_grader_from_a_worker_thread(grader_target, in_thread):
    # One worker, stuck for an hour on \\sin^3 and quick on anything else.
    grader_target("hang_on_cube_grade", 1)
    g = in_thread(lambda: grade_answer("\\sin^3 x", "x^2", timeout=0.5))
    assert (g.correct, g.status) == (False, "timeout")
    assert workers.get_pool().size == 1
    # the pool recovers: the stuck worker is replaced, so the next answer gets its verdict
    # (the stuck one, reused, would time out again)
    g = in_thread(lambda: grade_answer("\\sin^4 x", "x^2", timeout=30))
    assert (g.correct, g.status, g.method) == (True, "ok", "math_verify")


def test_crashing_worker_is_an_error_not_an_exception(grader_target):
    grader_target("crashing_grade")
    g = grade_answer("\\frac{1}{2}", "x^2", timeout=5)
    assert (g.correct, g.status) == (False, "error")


@pytest.mark.slow
def test_real_hang_is_cut_off_when_the_guard_lets_it_through(monkeypatch, in_thread):
    monkeypatch.setattr(guard, "guard_reason", lambda s: None)
    g = in_thread(lambda: grade_answer("9^{9^{9^{9}}}", "3", timeout=2))
    assert g.status == "timeout"
    assert grade_answer("0.5", "\\frac{1}{2}", timeout=30).correct  # and the pool still works


def test_math_verify_signal_timeout_would_fail_in_a_thread(in_thread):
    """The reason for the worker processes: math-verify's own timeout cannot run off the main thread."""
    from math_verify import parse

    def call():
        try:
            parse("\\boxed{1}", parsing_timeout=5, raise_on_error=True)
            return "ok"
        except ValueError as exc:
            return str(exc)

    assert "signal" in in_thread(call)
    # ... while ours works there
    assert in_thread(lambda: grade_answer("1+x^2", "x^2+1")).correct


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


def test_verdicts_written_together_are_all_read(grader_target):
    # A worker writes each verdict as soon as it has it; fast verdicts reach the pipe
    # together.  The parent must take every line it has already read, not wait on the
    # (now empty) pipe for one that arrived: that turned right answers into timeouts.
    grader_target("instant_grade")
    preds = [f"\\sin^{{{i}}} x" for i in range(40)]  # math-verify's, not a fast path's
    grades = grade_answers(preds, "\\sin^{7} x", timeout=10)
    assert [g.status for g in grades] == ["ok"] * 40
    assert [i for i, g in enumerate(grades) if g.correct] == [7]


def test_waiting_for_a_busy_worker_does_not_spend_the_budget(grader_target, monkeypatch, tmp_path):
    # verl's reward loop scores many samples at once from executor threads.  With one worker,
    # a sample that waits for it longer than its whole grading budget still gets its verdict:
    # the budget is for grading.  No durations to tune: the first sample holds the worker until
    # the test opens a gate, and the gate opens only after the second has waited twice its budget.
    budget = 2.0
    started, gate = tmp_path / "started", tmp_path / "gate"
    monkeypatch.setenv("SRPO_TEST_STARTED", str(started))
    monkeypatch.setenv("SRPO_TEST_GATE", str(gate))
    grader_target("gated_grade", 1)
    queued = threading.Event()
    real_acquire = workers.WorkerPool.acquire

    def acquire(self, target, deadline, gold=None):
        if threading.current_thread().name == "queued":
            queued.set()  # its budget is running: grade_answer took its start time before this
        return real_acquire(self, target, deadline, gold)

    monkeypatch.setattr(workers.WorkerPool, "acquire", acquire)
    grades = {}

    def grade(name, pred, timeout):
        grades[name] = grade_answer(pred, "y", timeout=timeout)

    threads = [threading.Thread(target=grade, name="holder", args=("holder", "\\sin^3 x", 600)),
               threading.Thread(target=grade, name="queued", args=("queued", "\\sin^5 x", budget))]
    try:
        assert grade_answer("\\sin^9 x", "\\sin^8 x", timeout=60).status == "ok"  # the worker is up and warm
        assert workers.get_pool().size == 1
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
