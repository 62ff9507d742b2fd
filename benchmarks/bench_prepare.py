"""Benchmark ``srpo_data.prepare_rl``: rows per second and peak memory.

Generates a geometry3k-layout parquet of N rows (default 1,000) with one
448x448 PNG each, then times, each in a fresh subprocess (so peak RSS is its
own):

- ``baseline``: a plain pyarrow read of the same parquet and write of the same
  rows (what any conversion has to pay at least);
- ``prepare``: ``python -m srpo_data.prepare_rl --source geometry3k`` (image
  validation with a full decode, SRPO prompt, verl schema, atomic write);
- ``prepare-2workers``: the same with ``--workers 2``;
- ``prepare+length``: with ``--max-prompt-length`` checked against the tiny
  offline Qwen2.5-VL (built on the fly).

Prints rows/s, peak RSS and each variant's time as a ratio of the baseline.

    .venv/bin/python benchmarks/bench_prepare.py [--rows 1000]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_input(path: Path, rows: int, size: int = 448) -> None:
    import datasets
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, size, dtype=np.uint8)
    gradient = np.stack(np.broadcast_arrays(base[None, :], base[:, None], base[::-1][None, :]), axis=-1)

    def png(i: int) -> bytes:
        noise = rng.integers(0, 16, size=(size, size, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray((gradient + noise + i % 64).astype(np.uint8)).save(buf, format="PNG")
        return buf.getvalue()

    feats = datasets.Features(
        {
            "images": datasets.List(datasets.Image()),
            "problem": datasets.Value("string"),
            "answer": datasets.Value("string"),
        }
    )

    def gen():
        for i in range(rows):
            yield {"images": [{"bytes": png(i), "path": None}], "problem": f"<image>Find x in figure {i}.", "answer": str(i)}

    datasets.Dataset.from_generator(gen, features=feats).to_parquet(str(path))


def run_variant(name: str, input_path: str, output: str, model: str | None) -> dict:
    start = time.perf_counter()
    if name == "baseline":
        import pyarrow.parquet as pq

        pq.write_table(pq.read_table(input_path), output)
    else:
        from srpo_data.rl.prepare_rl import main

        argv = ["--source", "geometry3k", "--input", input_path, "--output", output, "--no-progress", "--overwrite"]
        if name == "prepare-2workers":
            argv += ["--workers", "2"]
        if name == "prepare+length":
            argv += ["--max-prompt-length", "4096", "--model", model]
        code = main(argv)
        if code != 0:
            raise SystemExit(f"{name}: prepare_rl exited {code}")
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if name == "prepare-2workers":
        peak_kb = max(peak_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return {"variant": name, "seconds": seconds, "peak_mb": peak_kb / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:  # child process
        print(json.dumps(run_variant(args.variant, args.input, args.output, args.model)))
        return

    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        tmp_path = Path(tmp)
        src = tmp_path / "geo.parquet"
        make_input(src, args.rows)
        from srpo_data.offline.tiny_qwen import build_tiny_qwen25vl

        model = build_tiny_qwen25vl(tmp_path / "tiny_qwen")
        print(f"input: {args.rows} rows, 448x448 PNG, {src.stat().st_size / 1e6:.1f} MB parquet")
        results = []
        for name in ("baseline", "prepare", "prepare-2workers", "prepare+length"):
            out = subprocess.run(
                [sys.executable, __file__, "--variant", name, "--input", str(src),
                 "--output", str(tmp_path / f"{name}.parquet"), "--model", str(model)],
                check=True, capture_output=True, text=True,
            )
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        base = results[0]["seconds"]
        print(f"{'variant':<18} {'rows/s':>10} {'seconds':>9} {'x baseline time':>16} {'peak RSS MB':>12}")
        for r in results:
            print(
                f"{r['variant']:<18} {args.rows / r['seconds']:>10.0f} {r['seconds']:>9.2f} "
                f"{r['seconds'] / base:>16.1f} {r['peak_mb']:>12.0f}"
            )


if __name__ == "__main__":
    main()
