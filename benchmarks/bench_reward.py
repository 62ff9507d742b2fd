"""Throughput of srpo_reward.compute_score against verl's own math-verify scorer, same run.

    .venv/bin/python benchmarks/bench_reward.py [--n 2000] [--group 8]

Responses are SRPO five-block rollouts in GRPO groups (``--group`` rollouts share one
ground truth), over a mix of ground truths: multiple choice, plain numbers and LaTeX
expressions.  The peer, ``verl.utils.reward_score.math_verify.compute_score``, grades only
the final answer (it has no format or reflection terms) and must run on the main thread
(signal timeouts); ours grades both answers.  Printed: samples/s for each and the ratio.
"""

from __future__ import annotations

import argparse
import random
import time

GOLDS = ["B", "42", "3.5", "\\frac{3}{4}", "2\\sqrt{3}", "x^2+1", "45^\\circ", "1,200"]
WRONG = {"B": "C", "42": "41", "3.5": "3.4", "\\frac{3}{4}": "\\frac{2}{3}", "2\\sqrt{3}": "3\\sqrt{2}",
         "x^2+1": "x^2-1", "45^\\circ": "30^\\circ", "1,200": "1,100"}
EQUIV = {"B": "(B)", "42": "42.0", "3.5": "\\frac{7}{2}", "\\frac{3}{4}": "0.75", "2\\sqrt{3}": "\\sqrt{12}",
         "x^2+1": "1+x^2", "45^\\circ": "45", "1,200": "1200"}


def make_rollouts(n: int, group: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        gold = GOLDS[(i // group) % len(GOLDS)]
        a1 = rng.choice([gold, WRONG[gold], EQUIV[gold]])
        a2 = rng.choice([gold, EQUIV[gold], WRONG[gold]])
        text = (
            f"<think>Let me compute step {i}. " + "We use the figure. " * rng.randint(5, 40) + "</think> "
            f"<answer>\\boxed{{{a1}}}</answer> <reflection>Check the calculation again.</reflection> "
            f"<think>Recomputing carefully.</think> <answer>\\boxed{{{a2}}}</answer>"
        )
        out.append((text, gold))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--group", type=int, default=8)
    args = ap.parse_args()

    from verl.utils.reward_score.math_verify import compute_score as verl_math_verify

    from srpo_reward import compute_score
    from srpo_reward.grading import grade_answer

    rollouts = make_rollouts(args.n, args.group)
    grade_answer("x+1", "1+x")  # start the grading workers outside the timed region

    t0 = time.perf_counter()
    ours = [compute_score("bench", text, gold) for text, gold in rollouts]
    t_ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    peer = [verl_math_verify(text, gold) for text, gold in rollouts]
    t_peer = time.perf_counter() - t0

    n = len(rollouts)
    print(f"samples: {n} (groups of {args.group})")
    print(f"srpo_reward.compute_score (2 answers, format, length): {n / t_ours:10.1f} samples/s")
    print(f"verl math_verify.compute_score (final answer only):    {n / t_peer:10.1f} samples/s")
    print(f"ratio ours / peer: {t_peer / t_ours:.2f}x")
    print(f"mean score ours {sum(o['score'] for o in ours) / n:.3f}; final-answer acc ours "
          f"{sum(o['acc'] for o in ours) / n:.3f} vs peer {sum(peer) / n:.3f}")


if __name__ == "__main__":
    main()
