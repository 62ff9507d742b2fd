"""Throughput, latency and worst case of srpo_reward.compute_score against verl's own
math-verify scorer (``verl.utils.reward_score.math_verify.compute_score``), same run.

    .venv/bin/python benchmarks/bench_reward.py [--groups 60] [--group 8] [--threads 8] [--rounds 3]
    .venv/bin/python benchmarks/bench_reward.py --latency      # math-verify's latency per answer
    .venv/bin/python benchmarks/bench_reward.py --round-trip   # what a worker round trip costs per answer
    .venv/bin/python benchmarks/bench_reward.py --adversarial  # worst wall time per sample

Corpora (every rollout text is distinct, so nothing is scored twice; answers repeat
within a group, as in GRPO):

- ``realistic``: GRPO groups of ``--group`` SRPO five-block rollouts sharing one ground
  truth, a different one for every group, ground truths written as MATH/MathVerse/Geometry3K-style
  sets write them (LaTeX fractions, roots, pi, expressions, points, intervals, equations,
  degrees, a few letters and integers), each rollout with a long reasoning (1-3 KB) and two answers drawn from
  equivalent forms, a wrong answer and a near miss;
- ``legacy``: the corpus this benchmark used before (mostly letters and integers).

Each corpus is scored one caller thread (both warm), and in verl's reward-loop shape:
an asyncio loop calling the sync scorer through ``loop.run_in_executor`` from
``--threads`` executor threads, as verl 0.9.1's ``NaiveRewardManager`` does.  The peer
grades only the final answer (it has no format or reflection terms); ours grades both
answers.  The verdict cache is cleared before each timed run of ours.  Both are warmed first on a
corpus of the same shape with other ground truths.

On a shared machine the load changes from second to second, so each shape runs ``--rounds``
rounds, ours then verl's on the same corpus, every round with ground truths of its own; the
ratio printed is the median of the rounds' ratios (with their range), next to the CPU time
per sample of each, caller plus grading processes (less sensitive to the load than wall
time).  The line "answers decided by" says which share of the answers each grading path
decided (the fast paths or math-verify), and how many distinct pairs math-verify graded.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import random
import statistics
import time

def _decimal(num: int, den: int) -> str | None:
    """``num/den`` as a terminating decimal, or None."""
    d = den
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return None if d != 1 else f"{num / den:g}"


def _fraction(k: int) -> tuple[str, list[str], list[str]]:
    a, b = [(3, 4), (5, 8), (7, 12), (2, 5), (9, 16)][k % 5]
    equiv = [f"\\frac{{{a}}}{{{b}}}", f"\\dfrac{{{a}}}{{{b}}}", f"{a}/{b}", f"\\frac{{{2 * a}}}{{{2 * b}}}"]
    if _decimal(a, b):
        equiv.append(_decimal(a, b))
    return equiv[0], equiv, [f"\\frac{{{b}}}{{{a}}}", f"\\frac{{{a + 1}}}{{{b}}}"]


# Templates of ground truths as MATH/MathVerse/Geometry3K write them, each a function of k
# (so that every GRPO group has a ground truth of its own): k -> (gold, equivalent forms, wrong).
TEMPLATES = [
    _fraction,
    lambda k: (f"{k + 2}\\sqrt{{3}}", [f"{k + 2}\\sqrt{{3}}", f"\\sqrt{{{3 * (k + 2) ** 2}}}", f"{k + 2} \\sqrt 3"],
               [f"{k + 2}\\sqrt{{5}}", f"{k + 3}\\sqrt{{3}}"]),
    lambda k: (f"\\frac{{\\pi}}{{{k + 5}}}", [f"\\frac{{\\pi}}{{{k + 5}}}", f"\\pi/{k + 5}", f"\\dfrac{{\\pi}}{{{k + 5}}}"],
               [f"\\frac{{\\pi}}{{{k + 4}}}", f"\\frac{{2\\pi}}{{{k + 5}}}"]),
    lambda k: (f"{k + 3}\\pi", [f"{k + 3}\\pi", f"{k + 3} \\pi", f"\\pi \\cdot {k + 3}"], [f"{2 * k + 6}\\pi", f"{k + 4}\\pi"]),
    lambda k: (f"\\frac{{{2 * k + 5}\\sqrt{{2}}}}{{2}}",
               [f"\\frac{{{2 * k + 5}\\sqrt{{2}}}}{{2}}", f"\\frac{{{2 * k + 5}}}{{\\sqrt{{2}}}}", f"\\frac{{{2 * k + 5}}}{{2}}\\sqrt{{2}}"],
               [f"{2 * k + 5}\\sqrt{{2}}", f"\\frac{{{2 * k + 5}}}{{2}}"]),
    lambda k: (f"x^2+{2 * k + 2}x+{(k + 1) ** 2}", [f"x^2+{2 * k + 2}x+{(k + 1) ** 2}", f"(x+{k + 1})^2", f"{(k + 1) ** 2}+{2 * k + 2}x+x^2"],
               [f"x^2+{(k + 1) ** 2}", f"(x-{k + 1})^2"]),
    lambda k: (f"({k + 2},-{k + 3})", [f"({k + 2},-{k + 3})", f"({k + 2}, -{k + 3})", f"\\left({k + 2},-{k + 3}\\right)"],
               [f"(-{k + 3},{k + 2})", f"({k + 2},{k + 3})"]),
    lambda k: (f"[-{k + 1}, {k + 3})", [f"[-{k + 1}, {k + 3})", f"[-{k + 1},{k + 3})"], [f"(-{k + 1}, {k + 3})", f"[-{k + 1}, {k + 3}]"]),
    lambda k: (f"y={k + 2}x+{k + 1}", [f"y={k + 2}x+{k + 1}", f"y = {k + 1} + {k + 2}x", f"{k + 2}x+{k + 1}"],
               [f"y={k + 2}x-{k + 1}", f"y=x+{k + 1}"]),
    lambda k: (f"{[60, 35, 48, 72][k % 4]}^\\circ", [f"{[60, 35, 48, 72][k % 4]}^\\circ", f"{[60, 35, 48, 72][k % 4]}",
                                                   f"{[60, 35, 48, 72][k % 4]}°"],
               [f"{90 - [60, 35, 48, 72][k % 4]}^\\circ", f"{180 - [60, 35, 48, 72][k % 4]}^\\circ"]),
    lambda k: (f"\\frac{{1}}{{{2 ** (k + 1)}}}", [f"\\frac{{1}}{{{2 ** (k + 1)}}}", f"{0.5 ** (k + 1):g}", f"\\frac{{2}}{{{2 ** (k + 2)}}}"],
               [f"\\frac{{1}}{{{2 ** (k + 1) + 1}}}", f"{2 ** (k + 1)}"]),
    lambda k: (f"{10 + k}\\sqrt{{3}}", [f"{10 + k}\\sqrt{{3}}", f"\\sqrt{{{3 * (10 + k) ** 2}}}"], [f"{10 + k}\\sqrt{{2}}", f"{5 + k}\\sqrt{{3}}"]),
    lambda k: (f"\\sqrt{{{k + 5}}}-1", [f"\\sqrt{{{k + 5}}}-1", f"-1+\\sqrt{{{k + 5}}}"], [f"\\sqrt{{{k + 5}}}+1", f"1-\\sqrt{{{k + 5}}}"]),
    lambda k: (f"\\frac{{{2 * k + 9}}}{{2}}", [f"\\frac{{{2 * k + 9}}}{{2}}", f"{(2 * k + 9) / 2:g}", f"\\frac{{{4 * k + 18}}}{{4}}"],
               [f"\\frac{{2}}{{{2 * k + 9}}}", f"{2 * k + 9}"]),
    lambda k: ("ABCD"[k % 4], ["ABCD"[k % 4], f"({'ABCD'[k % 4]})"], ["ABCD"[(k + 1) % 4], "ABCD"[(k + 2) % 4]]),
    lambda k: (f"{24 + 6 * k}", [f"{24 + 6 * k}", f"{24 + 6 * k}.0"], [f"{12 + 3 * k}", f"{48 + 12 * k}"]),
    # What no fast path read when this corpus was written: sets, relations, infinite intervals,
    # roots of variables, e, complex numbers, matrices, trigonometry (the closed-form path has
    # since learnt sets of numbers, infinite intervals and roots of constants over variables;
    # the corpus stays as it was).
    lambda k: (f"\\{{1, {k + 2}\\}}", [f"\\{{1, {k + 2}\\}}", f"\\{{{k + 2}, 1\\}}", f"\\{{1,{k + 2}\\}}"],
               [f"\\{{1\\}}", f"\\{{1, {k + 3}\\}}"]),
    lambda k: (f"x \\geq {k + 5}", [f"x \\geq {k + 5}", f"x \\ge {k + 5}", f"{k + 5} \\leq x"], [f"x > {k + 5}", f"x \\leq {k + 5}"]),
    lambda k: (f"(-\\infty, {k + 2}]", [f"(-\\infty, {k + 2}]", f"(-\\infty,{k + 2}]"], [f"(-\\infty, {k + 2})", f"[{k + 2}, \\infty)"]),
    lambda k: (f"\\sqrt{{x+{k + 1}}}", [f"\\sqrt{{x+{k + 1}}}", f"\\sqrt{{{k + 1}+x}}", f"(x+{k + 1})^{{1/2}}"],
               [f"\\sqrt{{x}}+{k + 1}", f"\\sqrt{{x-{k + 1}}}"]),
    lambda k: (f"e^{{{k + 2}}}", [f"e^{{{k + 2}}}", f"e^{k + 2}", f"\\exp({k + 2})"], [f"e^{{{k + 1}}}", f"{k + 2}e"]),
    lambda k: (f"{k + 3}+{k + 10}i", [f"{k + 3}+{k + 10}i", f"{k + 10}i+{k + 3}"], [f"{k + 3}-{k + 10}i", f"{k + 10}+{k + 3}i"]),
    lambda k: (f"\\begin{{pmatrix}} {k + 1} \\\\ {k + 5} \\end{{pmatrix}}",
               [f"\\begin{{pmatrix}} {k + 1} \\\\ {k + 5} \\end{{pmatrix}}", f"\\begin{{bmatrix}}{k + 1}\\\\{k + 5}\\end{{bmatrix}}"],
               [f"\\begin{{pmatrix}} {k + 5} \\\\ {k + 1} \\end{{pmatrix}}", f"\\begin{{pmatrix}} {k + 1} \\\\ {k + 6} \\end{{pmatrix}}"]),
    lambda k: (f"{k + 1} < x < {k + 4}", [f"{k + 1} < x < {k + 4}", f"x \\in ({k + 1}, {k + 4})"], [f"{k + 1} \\le x < {k + 4}", f"{k + 1} < x < {k + 5}"]),
    lambda k: (f"\\sin {k + 2}x", [f"\\sin {k + 2}x", f"\\sin({k + 2}x)"], [f"{k + 2}\\sin x", f"\\cos {k + 2}x"]),
    lambda k: (f"\\frac{{\\sqrt{{{k + 2}}}}}{{x}}", [f"\\frac{{\\sqrt{{{k + 2}}}}}{{x}}", f"\\sqrt{{{k + 2}}}/x", f"\\frac{{1}}{{x}}\\sqrt{{{k + 2}}}"],
               [f"\\frac{{x}}{{\\sqrt{{{k + 2}}}}}", f"\\sqrt{{{k + 2}}}x"]),
]


LEGACY_GOLDS = ["B", "42", "3.5", "\\frac{3}{4}", "2\\sqrt{3}", "x^2+1", "45^\\circ", "1,200"]
LEGACY_WRONG = {"B": "C", "42": "41", "3.5": "3.4", "\\frac{3}{4}": "\\frac{2}{3}", "2\\sqrt{3}": "3\\sqrt{2}",
                "x^2+1": "x^2-1", "45^\\circ": "30^\\circ", "1,200": "1,100"}
LEGACY_EQUIV = {"B": "(B)", "42": "42.0", "3.5": "\\frac{7}{2}", "\\frac{3}{4}": "0.75", "2\\sqrt{3}": "\\sqrt{12}",
                "x^2+1": "1+x^2", "45^\\circ": "45", "1,200": "1200"}
SENTENCES = [
    "Let the side be $a$, so that the area is $\\frac{1}{2}ab\\sin C$.",
    "From the figure, the angle at $B$ is supplementary to $\\angle ACD$.",
    "Substituting $x = 2$ into $f(x) = x^2 - 3x + 5$ gives $f(2) = 3$.",
    "By the Pythagorean theorem, $c = \\sqrt{a^2 + b^2}$.",
    "We compute the ratio $\\frac{AB}{BC}$ using similar triangles.",
]


def _rollout(rng: random.Random, i: int, a1: str, a2: str) -> str:
    think = f"Step {i}. " + " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(15, 45)))
    return (
        f"<think>{think}</think> <answer>The answer is $\\boxed{{{a1}}}$.</answer> "
        "<reflection>Let me re-check the computation of the key step and the units.</reflection> "
        f"<think>Recomputing carefully: {rng.choice(SENTENCES)}</think> <answer>\\boxed{{{a2}}}</answer>"
    )


def realistic_rollouts(groups: int, group: int, seed: int = 0, k0: int = 0) -> list[tuple[str, str]]:
    """``groups`` GRPO groups, each with a ground truth of its own (no verdict carries over
    from one group to the next); within a group the rollouts repeat a few answers.  ``k0``
    shifts the templates' parameter (the warm-up corpus shares no ground truth with the timed one)."""
    rng = random.Random(seed)
    out = []
    for g in range(groups):
        gold, equiv, wrong = TEMPLATES[g % len(TEMPLATES)](k0 + g // len(TEMPLATES))
        pool = equiv + wrong  # a group repeats a few answers, as a policy does
        for j in range(group):
            out.append((_rollout(rng, g * group + j, rng.choice(pool), rng.choice(equiv + wrong[:1])), gold))
    return out


def legacy_rollouts(n: int, group: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        gold = LEGACY_GOLDS[(i // group) % len(LEGACY_GOLDS)]
        a1 = rng.choice([gold, LEGACY_WRONG[gold], LEGACY_EQUIV[gold]])
        a2 = rng.choice([gold, LEGACY_EQUIV[gold], LEGACY_WRONG[gold]])
        text = (
            f"<think>Let me compute step {i}. " + "We use the figure. " * rng.randint(5, 40) + "</think> "
            f"<answer>\\boxed{{{a1}}}</answer> <reflection>Check the calculation again.</reflection> "
            f"<think>Recomputing carefully.</think> <answer>\\boxed{{{a2}}}</answer>"
        )
        out.append((text, gold))
    return out


def _ours(text: str, gold: str) -> dict:
    from srpo_reward import compute_score

    return compute_score("bench", text, gold)


def _peer(text: str, gold: str) -> float:
    from verl.utils.reward_score.math_verify import compute_score

    return compute_score(text, gold)


def _serial(fn, rollouts) -> tuple[float, list]:
    t0 = time.perf_counter()
    out = [fn(text, gold) for text, gold in rollouts]
    return time.perf_counter() - t0, out


def _reward_loop(fn, rollouts, threads: int) -> tuple[float, list]:
    """verl 0.9.1's NaiveRewardManager shape: run_in_executor per sample, all concurrent."""

    async def run() -> list:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(threads))
        return await asyncio.gather(*(loop.run_in_executor(None, fn, t, g) for t, g in rollouts))

    t0 = time.perf_counter()
    out = asyncio.run(run())
    return time.perf_counter() - t0, out


def method_mix(rollouts) -> str:
    """Which grading path decided each answer of the corpus (the fast paths or math-verify),
    and how many distinct (ground truth, answer) pairs math-verify was given."""
    import collections

    from srpo_reward.fast_paths import prepare
    from srpo_reward.format import parse_response
    from srpo_reward.grading import grade_answers, normalize_ground_truth

    counts = collections.Counter()
    pairs = set()
    for text, gold in rollouts:
        parsed = parse_response(text)
        answers = [parsed.first_answer, parsed.final_answer]
        counts.update(g.method for g in grade_answers(answers, gold, timeout=30))
        for answer in answers:
            pairs.update(prepare(answer, normalize_ground_truth(gold), None, None, 1e-4).tasks)
    total = sum(counts.values())
    shares = ", ".join(f"{m} {c / total:.0%}" for m, c in counts.most_common())
    return f"{shares} (of {total} answers; {len(pairs)} distinct pairs went to math-verify)"


def _cpu_seconds(pids) -> dict[int, float]:
    """CPU time (user + system) of each live process in ``pids``, from ``/proc`` (Linux)."""
    import os

    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return out


def _grading_pids(which: str) -> list[int]:
    """The grading processes of ours (the worker pool) or of verl's scorer (its process pool)."""
    if which == "ours":
        from srpo_reward import workers

        pool = workers._pool
        return [w.proc.pid for w in pool.idle] if pool is not None else []
    from verl.utils.reward_score import math_verify

    pool = math_verify._pool
    return list(pool._processes) if pool is not None else []


def _timed(run, fn, rollouts, which: str) -> tuple[float, float, list]:
    """Wall seconds, CPU seconds (caller and grading processes) and results of one run."""
    before = _cpu_seconds(_grading_pids(which))
    c0 = time.process_time()
    wall, out = run(fn, rollouts)
    cpu = time.process_time() - c0
    after = _cpu_seconds(_grading_pids(which))
    cpu += sum(v - before.get(pid, 0.0) for pid, v in after.items())
    return wall, cpu, out


def compare(name: str, corpora, threads: int) -> None:
    """Ours and verl's on each corpus of ``corpora`` (one round each, alternating), both shapes;
    the ratios printed are medians over the rounds, with their range."""
    from srpo_reward.grading import verdict_cache

    n = len(corpora[0])
    print(f"\n== {name}: {n} samples a round, {len(corpora)} rounds "
          f"({len(set(g for _, g in corpora[0]))} ground truths a round)")
    for mode in ("one thread", f"reward loop, {threads} executor threads"):
        run = _serial if mode == "one thread" else (lambda f, r: _reward_loop(f, r, threads))
        rows = []
        for rollouts in corpora:
            verdict_cache.clear()
            w_ours, c_ours, ours = _timed(run, _ours, rollouts, "ours")
            w_peer, c_peer, peer = _timed(run, _peer, rollouts, "verl")
            rows.append((w_ours, w_peer, c_ours, c_peer, ours, peer))
        ratios = sorted(r[1] / r[0] for r in rows)
        cpu_ratios = sorted(r[3] / r[2] for r in rows)
        med = statistics.median
        ours, peer = rows[0][4], rows[0][5]
        print(f"{mode:38s} ours {n / med(r[0] for r in rows):8.1f}/s   verl {n / med(r[1] for r in rows):8.1f}/s   "
              f"ratio {med(ratios):5.2f}x ({ratios[0]:.2f}-{ratios[-1]:.2f})   "
              f"CPU ms/sample ours {1000 * med(r[2] for r in rows) / n:5.2f} verl {1000 * med(r[3] for r in rows) / n:5.2f} "
              f"(ratio {med(cpu_ratios):.2f}x)   "
              f"final-answer acc ours {sum(o['acc'] for o in ours) / n:.3f} verl {sum(peer) / n:.3f}   "
              f"grade_error {sum(o['grade_error'] for r in rows for o in r[4]):.0f}")
    print(f"answers decided by: {method_mix(corpora[0])}")


def round_trip(rollouts) -> None:
    """What a worker round trip costs per answer: the corpus's distinct math-verify pairs graded
    in this process and through one worker, each pass after a warm pass on the same pairs."""
    from srpo_reward import verdicts, workers
    from srpo_reward.fast_paths import prepare
    from srpo_reward.format import parse_response
    from srpo_reward.grading import math_verify_grade, normalize_ground_truth

    pairs = []
    for text, gold in rollouts:
        parsed = parse_response(text)
        for answer in (parsed.first_answer, parsed.final_answer):
            pairs.extend(prepare(answer, normalize_ground_truth(gold), None, None, 1e-4).tasks)
    pairs = list(dict.fromkeys(pairs))
    worker = workers.Worker(verdicts.WORKER_TARGET)
    while not worker.poll_ready():
        time.sleep(0.01)

    def in_process() -> float:
        t0 = time.perf_counter()
        for gold, pred in pairs:
            math_verify_grade(gold, pred)
        return time.perf_counter() - t0

    def through_worker(batch: int) -> float:
        t0 = time.perf_counter()
        for i in range(0, len(pairs), batch):
            worker.grade_many(pairs[i : i + batch], time.monotonic() + 60, [])
        return time.perf_counter() - t0

    in_process(), through_worker(1)  # warm both on these very pairs
    t_in, t_one, t_two = in_process(), through_worker(1), through_worker(2)
    worker.kill()
    per = lambda t: 1000 * t / len(pairs)  # noqa: E731
    print(f"{len(pairs)} distinct math-verify pairs, warm, ms per answer: in this process {per(t_in):.2f}, "
          f"through a worker {per(t_one):.2f} one per round trip, {per(t_two):.2f} two per round trip "
          f"(round trip {per(t_one) - per(t_in):+.2f} ms per answer)")


def latency(rollouts) -> None:
    """math-verify's own latency per (gold, answer) in this process, warm, on the corpus's answers."""
    from srpo_reward.format import parse_response
    from srpo_reward.grading import math_verify_grade, normalize_ground_truth

    pairs = []
    for text, gold in rollouts:
        parsed = parse_response(text)
        for ans in (parsed.first_answer, parsed.final_answer):
            pairs.append((normalize_ground_truth(gold)[0], ans))
    for gold, pred in pairs[:20]:
        math_verify_grade(gold, pred)  # warm
    times = []
    for gold, pred in dict.fromkeys(pairs):
        t0 = time.perf_counter()
        math_verify_grade(gold, pred)
        times.append(time.perf_counter() - t0)
    times.sort()
    q = lambda p: times[min(len(times) - 1, int(p * len(times)))] * 1000  # noqa: E731
    print(f"math-verify latency over {len(times)} distinct (gold, answer) pairs, ms: "
          f"p50 {q(0.5):.1f}  p90 {q(0.9):.1f}  p99 {q(0.99):.1f}  p99.9 {q(0.999):.1f}  max {times[-1] * 1000:.1f}  "
          f"mean {statistics.mean(times) * 1000:.1f}")


ADVERSARIAL = [
    ("9^{9^{9^{9}}}", "9^{9^{9^{9}}}"),
    ("9^{9^{9}}", "3"),
    ("10^{10^{10}}", "10^{10^{10}}"),
    ("100000!", "100000!"),
    ("2^{1000000}", "2^{1000000}"),
    ("(" * 2000 + "1" + ")" * 2000, "1"),
    ("{" * 2000 + "1" + "}" * 2000, "1"),
    ("x" + "^x" * 500, "x"),
    ("\\boxed{1}" * 3000, "1"),
    ("\\boxed{" * 3000, "1"),
    ("1" * 5000, "1"),
    ("x + " * 200000 + "1", "1"),  # about 1 MB
    ("\\frac{" * 500 + "1" + "}{2}" * 500, "1"),
    ("\\sqrt{" * 1000 + "2" + "}" * 1000, "2"),
    ("e^{e^{e^{e^{e}}}}", "1"),
    ("\\int_0^1 x^{10^{6}} dx", "0"),
    # the closed-form reader's costliest inputs within its 200 characters: powers of sums of roots
    ("((x+\\sqrt{2}+\\sqrt{3}+\\sqrt{5})^{16})^{16}+((y+\\sqrt{2}+\\sqrt{3}+\\sqrt{7})^{16})^{16}",
     "((x+\\sqrt{2}+\\sqrt{3}+\\sqrt{5})^{16})^{16}+((y+\\sqrt{3}+\\sqrt{2}+\\sqrt{7})^{16})^{16}"),
]


def adversarial(threads: int) -> None:
    """Worst wall time per sample of compute_score over pathological answers, serially and
    from ``threads`` executor threads at once."""
    from srpo_reward import compute_score
    from srpo_reward.grading import grade_answer

    # warm the workers: a pair that only math-verify decides (the fast paths take x+1 vs 1+x)
    warm = grade_answer("\\sin^2 x + \\cos^2 x", "1", timeout=60)
    assert warm.method == "math_verify" and warm.correct, warm
    samples = []
    for ans, gold in ADVERSARIAL:
        samples.append((f"<think>t</think> <answer>\\boxed{{{ans}}}</answer> <reflection>r</reflection> "
                        f"<think>t</think> <answer>{ans}</answer>", gold))
        samples.append((f"<think>t</think> <answer>{gold}</answer> <reflection>r</reflection> "
                        f"<think>t</think> <answer>{ans}</answer>", ans))  # the pathological one as gold
    samples.append(("<think>" + "a" * 1_000_000 + "</think> <answer>1</answer>", "1"))

    def timed(text: str, gold: str) -> tuple[float, dict]:
        t0 = time.perf_counter()
        out = compute_score("adv", text, gold)
        return time.perf_counter() - t0, out

    serial = [timed(t, g) for t, g in samples]
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        threaded = list(ex.map(lambda s: timed(*s), samples))
    for label, res in (("serial", serial), (f"{threads} threads", threaded)):
        worst_i = max(range(len(res)), key=lambda i: res[i][0])
        worst = res[worst_i]
        print(f"  worst: {samples[worst_i][0][:60]!r}... gold {samples[worst_i][1][:30]!r}")
        print(f"adversarial {label}: {len(res)} samples, worst {worst[0]:.3f} s, mean "
              f"{statistics.mean(r[0] for r in res):.3f} s, grade_error {sum(r[1]['grade_error'] for r in res):.0f}, "
              f"score>0 for pathological golds {sum(r[1]['acc'] for r in res[1::2]):.0f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=60, help="GRPO groups of the realistic corpus")
    ap.add_argument("--group", type=int, default=8, help="rollouts per ground truth")
    ap.add_argument("--legacy-n", type=int, default=480)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per shape, each on a corpus of its own")
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--round-trip", action="store_true", help="what a worker round trip costs per answer")
    ap.add_argument("--adversarial", action="store_true")
    args = ap.parse_args()

    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)
    realistic = realistic_rollouts(args.groups, args.group)
    if args.latency:
        latency(realistic)
        return
    if args.adversarial:
        adversarial(args.threads)
        return
    if args.round_trip:
        round_trip(realistic)
        return
    # Warm both on a corpus of the same shape that shares no ground truth with the timed ones
    # (math-verify's LaTeX parser gets faster per kind of expression it has seen, in each of
    # our worker processes and in verl's process alike); then forget our verdicts.
    from srpo_reward.grading import verdict_cache

    warm = realistic_rollouts(len(TEMPLATES), args.group, seed=1, k0=10)
    _serial(_ours, warm)
    _serial(_peer, warm)
    verdict_cache.clear()
    print(f"GRPO groups of {args.group}; peer = verl.utils.reward_score.math_verify.compute_score")
    # Round r has ground truths of its own (k shifted by 20 r; round 0 is the corpus quoted before).
    rounds = [realistic] + [realistic_rollouts(args.groups, args.group, seed=r, k0=20 * r) for r in range(1, args.rounds)]
    compare("realistic (LaTeX-heavy ground truths, long reasoning)", rounds, args.threads)
    legacy = [legacy_rollouts(args.legacy_n, args.group, seed=r) for r in range(args.rounds)]
    compare("legacy (the README's previous corpus)", legacy, args.threads)


if __name__ == "__main__":
    main()
