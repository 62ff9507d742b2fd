"""Throughput of the stage-1 builder against a local endpoint that answers after a fixed delay.

    .venv/bin/python benchmarks/bench_builder.py [--delay 0.5] [--rounds 100] [--concurrency 1 16 64]

The scripted endpoint (``srpo_data.offline.fake_endpoint``, its own process) answers every chat
request after ``--delay`` seconds.  Every sample costs two policy calls (attempt, revision) and
one teacher call (reflection), so the policy endpoint is the bottleneck: with concurrency C its
ideal rate is C / delay requests per second.  The figure printed is the measured policy request
rate over the whole pipeline run (first request to last sample finished, ramp-up and tail
included) as a share of that ideal.  Each level runs ``rounds`` policy calls per slot
(samples = rounds * C / 2), so the unavoidable tail (the last samples' reflection and revision,
about two delays) costs about 2 / rounds of the ideal.

    .venv/bin/python benchmarks/bench_builder.py --memory 2000 8000 [--delay 0.02] [--concurrency 64]

``--memory`` runs a whole build (run, outputs, summary) at each size in a fresh process and
prints its peak resident memory (``ru_maxrss``), its CPU seconds per sample, its wall time and
its policy request rate as a share of the ideal, over the whole build's wall time and over the
calls alone (the whole build less writing the outputs): peak memory that does not grow with the number of samples is what the
SQLite-indexed step store and outcome table are for.  The figure at scale (issue 12):

    .venv/bin/python benchmarks/bench_builder.py --memory 100000 --delay 1.0 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from srpo_data.stage1.builder.config import BuildConfig, EndpointConfig  # noqa: E402
from srpo_data.stage1.builder.pipeline import Runner  # noqa: E402
from srpo_data.stage1.builder.run import _samples  # noqa: E402


def make_set(folder: Path, n: int) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (28, 28), (200, 30, 30)).save(folder / "img.png")
    answers = {}
    with (folder / "in.jsonl").open("w") as fh:
        for i in range(n):
            gt = "ABCDE"[i % 5]
            answers[f"b{i}"] = gt
            fh.write(json.dumps({"question": f"[q:b{i}] Which option? ({i})", "answer": gt, "images": ["img.png"]}) + "\n")
    (folder / "answers.json").write_text(json.dumps(answers))
    return answers


def start_server(delay: float, answers_file: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "srpo_data.offline.fake_endpoint", "--delay", str(delay), "--answers", str(answers_file),
         "--bad-format-rate", "0"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http"):
        proc.kill()
        raise RuntimeError("fake endpoint did not start")
    return proc, url


def run_level(url: str, data: Path, out: Path, concurrency: int, n: int, delay: float) -> dict[str, float]:
    ep = EndpointConfig(base_url=url, model="fake", concurrency=concurrency, timeout=30 + delay, max_tokens=64)
    cfg = BuildConfig(input=data / "in.jsonl", out=out, policy=ep, teacher=ep, limit=n, progress=False)
    runner = Runner(cfg)
    t0 = time.perf_counter()
    result = asyncio.run(runner.run(_samples(cfg), total=n))
    seconds = time.perf_counter() - t0
    policy = result.usage["policy"]
    assert result.complete and policy["errors"] == {}, (result.failed, policy)
    rate = policy["requests"] / seconds
    ideal = concurrency / delay
    return {
        "concurrency": concurrency,
        "samples": n,
        "policy_requests": policy["requests"],
        "teacher_requests": result.usage["teacher"]["requests"],
        "seconds": round(seconds, 2),
        "policy_req_per_s": round(rate, 2),
        "ideal_req_per_s": round(ideal, 2),
        "share_of_ideal": round(rate / ideal, 4),
    }


def one_build(url: str, data: Path, out: Path, concurrency: int, n: int, delay: float) -> dict[str, float]:
    """A whole build of ``n`` samples in this process; peak RSS, CPU time and the policy
    request rate over the whole build as a share of the ideal ``concurrency / delay``."""
    import resource

    from srpo_data.stage1.builder.run import build

    ep = EndpointConfig(base_url=url, model="fake", concurrency=concurrency, timeout=60, max_tokens=64)
    cfg = BuildConfig(input=data / "in.jsonl", out=out, policy=ep, teacher=ep, limit=n, progress=False)
    t0, c0 = time.perf_counter(), time.process_time()
    summary = build(cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    assert summary["complete"], summary
    policy = summary["this_run"]["policy"]
    assert policy["errors"] == {}, policy
    ideal = concurrency / delay
    calls = wall - summary["output_seconds"]  # first request to last sample finished
    return {
        "samples": n,
        "kept": summary["kept"],
        "seconds": round(wall, 1),
        "output_seconds": summary["output_seconds"],
        "policy_requests": policy["requests"],
        "share_of_ideal": round(policy["requests"] / wall / ideal, 4),
        "share_of_ideal_calls": round(policy["requests"] / calls / ideal, 4),
        "cpu_ms_per_sample": round(1000 * cpu / n, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def memory_main(sizes: list[int], delay: float, concurrency: int) -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        make_set(tmpdir / "data", max(sizes))
        proc, url = start_server(delay, tmpdir / "data" / "answers.json")
        try:
            for n in sizes:
                code = (
                    "import json, sys; from pathlib import Path; sys.path.insert(0, %r); import bench_builder as b; "
                    "print(json.dumps(b.one_build(%r, Path(%r), Path(%r), %d, %d, %r)))"
                    % (str(Path(__file__).parent), url, str(tmpdir / "data"), str(tmpdir / f"out{n}"), concurrency, n,
                       delay)
                )
                res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
                if res.returncode != 0:
                    print(res.stderr, file=sys.stderr)
                    return 1
                row = json.loads(res.stdout.strip().splitlines()[-1])
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            proc.terminate()
            proc.wait()
    print(f"\ndelay {delay}s, concurrency {concurrency}")
    print(f"{'samples':>8} {'seconds':>8} {'outputs s':>9} {'cpu ms/sample':>14} {'peak RSS MB':>12} "
          f"{'share of ideal':>15} {'(calls only)':>13}")
    for r in rows:
        print(f"{r['samples']:>8} {r['seconds']:>8} {r['output_seconds']:>9} {r['cpu_ms_per_sample']:>14} "
              f"{r['peak_rss_mb']:>12} {r['share_of_ideal']:>15.1%} {r['share_of_ideal_calls']:>13.1%}")
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        per_k = (b["peak_rss_mb"] - a["peak_rss_mb"]) / ((b["samples"] - a["samples"]) / 1000)
        print(f"peak RSS growth: {per_k:+.2f} MB per 1000 samples")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--memory", type=int, nargs="+", metavar="N", help="peak memory of whole builds of N samples")
    p.add_argument("--delay", type=float, default=None,
                   help="seconds the endpoint waits before each answer (1.0; 0.02 with --memory)")
    p.add_argument("--rounds", type=int, default=100, help="policy calls per concurrency slot")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    args = p.parse_args(argv)
    if args.memory:
        return memory_main(args.memory, 0.02 if args.delay is None else args.delay, args.concurrency[-1])
    args.delay = 1.0 if args.delay is None else args.delay
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        biggest = max(max(args.rounds * c // 2, 2) for c in args.concurrency)
        make_set(tmpdir / "data", biggest)
        proc, url = start_server(args.delay, tmpdir / "data" / "answers.json")
        try:
            for c in args.concurrency:
                n = max(args.rounds * c // 2, 2)
                row = run_level(url, tmpdir / "data", tmpdir / f"out{c}", c, n, args.delay)
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            proc.terminate()
            proc.wait()
    print(f"\ndelay {args.delay}s, {args.rounds} policy calls per slot")
    print(f"{'concurrency':>11} {'samples':>8} {'seconds':>8} {'req/s':>8} {'ideal':>8} {'share':>7}")
    for r in rows:
        print(f"{r['concurrency']:>11} {r['samples']:>8} {r['seconds']:>8} {r['policy_req_per_s']:>8} "
              f"{r['ideal_req_per_s']:>8} {r['share_of_ideal']:>7.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
