"""Is a parallel layout one this CPU can run?  Checked by ``CPU_TRAIN=1`` before any stage starts.

``python -m recipe.srpo.cpu.layout --gpus-per-node 2 --rollout-tp 2 --model DIR`` exits 0 with one
line per check, or 2 with the reason a layout is refused (what failed, with the numbers), so a run
never starts a shape it cannot finish and is never silently reduced to one process:

- ranks (``nnodes x gpus_per_node``, all on this machine) at most the cores this process may use: each
  rank is a busy training process, and beside it run its vLLM engine's worker(s), the reward and Ray;
- the memory the run needs (:data:`GIB_SHARED` plus :data:`GIB_PER_RANK` a rank, measured) at most what is
  free now;
- vLLM's tensor parallel size divides the ranks (verl builds ``ranks / tp`` engines), Ulysses sequence
  parallel divides the ranks, and both meet the model's heads by the rules the GPU dry run checks
  (:func:`recipe.srpo.dry_run.layout.check_tp_heads` / :func:`~recipe.srpo.dry_run.layout.check_sp_heads`:
  text and vision heads divisible by TP, text heads by SP, KV heads dividing or divided by either).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from recipe.srpo.checks import ConfigError
from recipe.srpo.dry_run import layout as dry_layout

#: Host memory (PSS, GiB) of a CPU GRPO run, measured on the tiny Qwen2.5-VL with ``GPUS_PER_NODE=2
#: ROLLOUT_TP=2 bash examples/cpu_train.sh`` during its GRPO stage: the processes every run has (the trainer,
#: Ray, TransferQueue, the agent loop, the reward worker, vLLM's server and engine core) about 6 GiB, and per rank
#: its FSDP worker (0.8) and its vLLM-CPU worker (1.7, with its 1 GiB KV cache), rounded up.
GIB_SHARED = 6.0
GIB_PER_RANK = 2.5


class LayoutError(ValueError):
    """A layout this CPU cannot run, with the reason."""


@dataclass(frozen=True)
class Layout:
    nnodes: int = 1
    gpus_per_node: int = 1
    rollout_tp: int = 1
    sft_sp: int = 1

    @property
    def ranks(self) -> int:
        return self.nnodes * self.gpus_per_node


def model_heads(model: Path) -> dict[str, int]:
    """``{"text heads", "text KV heads", "vision heads"}`` of the model folder's config.json."""
    return dry_layout.model_heads(json.loads((Path(model) / "config.json").read_text(encoding="utf-8")))


def check_layout(layout: Layout, *, cores: int, free_gib: float, heads: dict[str, int] | None = None,
                 gib_shared: float = GIB_SHARED, gib_per_rank: float = GIB_PER_RANK) -> list[str]:
    """The checks a layout passed (one line each); raises :class:`LayoutError` at the first that fails."""
    for name in ("nnodes", "gpus_per_node", "rollout_tp", "sft_sp"):
        if getattr(layout, name) < 1:
            raise LayoutError(f"{name}={getattr(layout, name)}: must be at least 1")
    lines = []
    if layout.ranks > cores:
        raise LayoutError(f"{layout.ranks} ranks (NNODES={layout.nnodes} x GPUS_PER_NODE={layout.gpus_per_node}) "
                          f"on {cores} cores: at most one rank per core on a CPU")
    lines.append(f"ranks: {layout.ranks} on {cores} cores")
    need = gib_shared + layout.ranks * gib_per_rank
    if need > free_gib:
        raise LayoutError(f"{layout.ranks} ranks need about {need:.1f} GiB ({gib_shared:.1f} GiB for the run, "
                          f"{gib_per_rank:.1f} GiB a rank, measured) but {free_gib:.1f} GiB is free")
    lines.append(f"memory: {need:.1f} GiB needed, {free_gib:.1f} GiB free")
    for knob, size in (("ROLLOUT_TP", layout.rollout_tp), ("SFT_SP", layout.sft_sp)):
        if layout.ranks % size:
            raise LayoutError(f"{knob}={size} does not divide the {layout.ranks} ranks")
    tp, sp = layout.rollout_tp, layout.sft_sp
    head_lines = ["model heads not checked (no config.json)"]
    if heads:
        try:
            head_lines = [dry_layout.check_tp_heads(tp, heads, "ROLLOUT_TP"), dry_layout.check_sp_heads(sp, heads, "SFT_SP")]
        except ConfigError as exc:
            raise LayoutError(str(exc)) from None
    lines.append(f"ROLLOUT_TP={tp}: {layout.ranks // tp} vLLM engine(s) of {tp} rank(s); " + "; ".join(head_lines))
    lines.append(f"SFT_SP={layout.sft_sp} divides the ranks")
    return lines


def available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Refuse a parallel layout this CPU cannot run (CPU_TRAIN=1).")
    ap.add_argument("--nnodes", type=int, default=1)
    ap.add_argument("--gpus-per-node", type=int, default=1)
    ap.add_argument("--rollout-tp", type=int, default=1)
    ap.add_argument("--sft-sp", type=int, default=1)
    ap.add_argument("--model", type=Path, help="model folder whose heads TP must divide")
    args = ap.parse_args(argv)
    layout = Layout(args.nnodes, args.gpus_per_node, args.rollout_tp, args.sft_sp)
    heads = model_heads(args.model) if args.model and (args.model / "config.json").is_file() else None
    try:
        lines = check_layout(layout, cores=available_cores(), free_gib=psutil.virtual_memory().available / 2**30,
                             heads=heads)
    except LayoutError as exc:
        print(f"cpu layout: REFUSED: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(f"cpu layout: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
