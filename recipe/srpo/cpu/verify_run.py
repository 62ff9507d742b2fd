"""What a CPU training run proved, read from its artifacts (``examples/cpu_train.sh`` prints it).

Every check reads what the run left behind (verl's console step log, checkpoints,
the merged model, vLLM's weights after each sync, the toy reward's log) and
recomputes the claim; none trusts an exit status.  :func:`verify` returns one
:class:`Check` per claim; ``python -m recipe.srpo.cpu.verify_run --workspace DIR``
prints them and exits 1 if any failed.

Workspace layout (written by ``examples/cpu_train.sh``)::

    DIR/tiny-qwen/            base model (model.safetensors)
    DIR/outputs/sft_merged/   merged SFT policy
    DIR/outputs/sft/global_step_N/model_world_size_R_rank_r.pt     (one per FSDP rank r of R)
    DIR/outputs/grpo/global_step_N/actor/model_world_size_R_rank_r.pt
    DIR/logs/layout.json             the parallel layout asked for (GPUS_PER_NODE, ROLLOUT_TP, ...)
    DIR/logs/sft.log, grpo.log, grpo_resume.log
    DIR/logs/vllm_sync/grpo/sync-<pid>-<n>.safetensors   (one per vLLM worker process: each TP rank's shard)
    DIR/logs/toy_reward.jsonl

A claim only a parallel layout can show (each rank held a shard, every TP shard synced, ...) is printed
as SKIP with the reason at world size 1, never as PASS.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recipe.srpo.freeze_vision import is_vision_param

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STEP_LINE = re.compile(r"(?:^|\s)step:(\d+) - (.*)$")
NUMPY_SCALAR = re.compile(r"^np\.\w+\((.*)\)$")

def expected_srpo_keys() -> list[str]:
    """Every key the recipe's trainer logs under training/srpo/ each step (post- and pre-filter)."""
    from recipe.srpo.metrics import PREFILTER_PREFIX, reflection_metrics
    from srpo_reward import SCORE_KEYS

    row = [dict.fromkeys(SCORE_KEYS, 0.0)]
    return sorted({**reflection_metrics(row), **reflection_metrics(row, prefix=PREFILTER_PREFIX)})


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    #: A claim of a parallel layout on a run of world size 1: printed as SKIP with the reason, never PASS.
    skipped: bool = False

    def line(self) -> str:
        return f"[{'SKIP' if self.skipped else 'PASS' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


def report_checks(checks: list[Check]) -> int:
    """Print each check's line and the count; the exit status: 1 if any failed, else 0."""
    for check in checks:
        print(check.line())
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} passed, {failed} failed")
    return 1 if failed else 0


def skip(name: str, reason: str) -> Check:
    """A parallel-layout claim that a run of world size 1 cannot show (not a failure, not a pass)."""
    return Check(name, True, reason, skipped=True)


def _value(text: str) -> Any:
    text = text.strip()
    match = NUMPY_SCALAR.match(text)
    if match:
        text = match.group(1)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def parse_step_lines(log_text: str) -> dict[int, dict[str, Any]]:
    """verl's console logger lines (``step:N - key:value - ...``) as ``{step: {key: value}}``."""
    steps: dict[int, dict[str, Any]] = {}
    for raw in log_text.splitlines():
        match = STEP_LINE.search(ANSI.sub("", raw))
        if not match:
            continue
        metrics: dict[str, Any] = {}
        for item in match.group(2).split(" - "):
            key, sep, value = item.partition(":")
            if sep:
                metrics[key.strip()] = _value(value)
        steps[int(match.group(1))] = metrics
    return steps


def load_state_dict(path: Path) -> dict[str, Any]:
    """Full tensors of a safetensors file or of a verl FSDP checkpoint shard (world size 1)."""
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=False)
    full = {}
    for name, tensor in state.items():
        if hasattr(tensor, "full_tensor"):
            tensor = tensor.full_tensor()
        full[name] = tensor.detach()
    return full


LEGACY_PREFIXES = (
    ("visual.", "model.visual."),
    ("model.layers.", "model.language_model.layers."),
    ("model.embed_tokens.", "model.language_model.embed_tokens."),
    ("model.norm.", "model.language_model.norm."),
)


def canonical_name(name: str) -> str:
    """Hugging Face Qwen2.5-VL names in transformers 5's layout.

    The hub's checkpoints (and the tiny model, which copies them) use the older
    layout (``model.layers.*``, ``visual.*``) that transformers 5 renames on load
    and verl's checkpoints store.
    """
    for old, new in LEGACY_PREFIXES:
        if name.startswith(old):
            return new + name[len(old):]
    return name


def weight_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """``{"language": (changed, total), "vision": (changed, total)}`` over the tensors both hold."""
    import torch

    counts = {"language": [0, 0], "vision": [0, 0]}
    before = {canonical_name(k): v for k, v in before.items()}
    after = {canonical_name(k): v for k, v in after.items()}
    for name in sorted(set(before) & set(after)):
        part = "vision" if is_vision_param(name) else "language"
        counts[part][1] += 1
        if not torch.equal(before[name].float(), after[name].float()):
            counts[part][0] += 1
    return {part: (c[0], c[1]) for part, c in counts.items()}


def _changes_check(name: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> Check:
    changes = weight_changes(before, after)
    (lang_changed, lang_total), (vis_changed, vis_total) = changes["language"], changes["vision"]
    ok = lang_total > 0 and vis_total > 0 and lang_changed > 0 and vis_changed == 0
    return Check(name, ok, f"language tensors changed {lang_changed}/{lang_total}, "
                 f"vision tensors changed {vis_changed}/{vis_total}")


#: vLLM parameter name prefix -> the actor's (transformers 5) prefix, for both families: the inverse of
#: ``hf_to_vllm_mapper.orig_to_new_prefix`` of ``Qwen2_5_VLForConditionalGeneration``
#: (``vllm/model_executor/models/qwen2_5_vl.py``) and of ``Qwen3VLForConditionalGeneration``
#: (``qwen3_vl.py``), vLLM 0.28, which map ``model.visual.`` -> ``visual.``, ``model.language_model.`` ->
#: ``language_model.model.`` and ``lm_head.`` -> ``language_model.lm_head.`` alike.  (Qwen2.5-VL's also maps
#: the hub's older ``model.`` prefix, which transformers 5 renames on load: :func:`canonical_name`.)
VLLM_TO_HF_PREFIXES: tuple[tuple[str, str], ...] = (
    ("visual.", "model.visual."),
    ("language_model.model.", "model.language_model."),
    ("language_model.lm_head.", "lm_head."),
)

#: vLLM's fused weights -> the actor's pieces, concatenated along dim 0 in this order: the
#: ``packed_modules_mapping`` of both classes.  The text model's q/k/v and gate/up are fused in both
#: families; so is Qwen2.5-VL's vision MLP (``visual.blocks.N.mlp.gate_up_proj``, its vision tower's
#: ``orig_to_new_stacked``).  Qwen3-VL's vision MLP (``linear_fc1``/``linear_fc2``) is not fused, and both
#: towers' attention ``qkv`` is one weight in transformers already (``"qkv": ["qkv"]``).
VLLM_FUSED: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("qkv_proj", ("q_proj", "k_proj", "v_proj")),
    ("gate_up_proj", ("gate_proj", "up_proj")),
)


#: A vision tower's attention ``qkv``: one weight in transformers (q, k and v stacked along dim 0) that vLLM
#: loads into a ``QKVParallelLinear`` and shards as three pieces (each of q, k, v split over the TP ranks).
STACKED_QKV = re.compile(r"\.attn\.qkv\.(weight|bias)$")


def vllm_pieces(name: str, actor: Mapping[str, Any]) -> list[Any] | None:
    """The actor (Hugging Face) tensors that vLLM's parameter ``name`` holds, stacked along dim 0 in this
    order (one piece unless fused), or None if unknown.

    vLLM's Qwen2.5-VL and Qwen3-VL both keep the tower under ``visual.`` and the text model under
    ``language_model.model.`` / ``language_model.lm_head`` (:data:`VLLM_TO_HF_PREFIXES`), and fuse
    the weights of :data:`VLLM_FUSED`; a vision ``attn.qkv`` is three pieces (:data:`STACKED_QKV`).
    """
    hf = name
    for vllm_prefix, hf_prefix in VLLM_TO_HF_PREFIXES:
        if name.startswith(vllm_prefix):
            hf = hf_prefix + name[len(vllm_prefix):]
            break
    if hf in actor:
        tensor = actor[hf]
        return list(tensor.chunk(3, dim=0)) if STACKED_QKV.search(hf) and tensor.shape[0] % 3 == 0 else [tensor]
    for fused, parts in VLLM_FUSED:
        if f".{fused}." in hf:
            pieces = [hf.replace(f".{fused}.", f".{part}.") for part in parts]
            if all(p in actor for p in pieces):
                return [actor[p] for p in pieces]
    return None


def vllm_expected(name: str, actor: Mapping[str, Any]) -> Any:
    """The full actor tensor that vLLM's parameter ``name`` must equal at tensor parallel 1, or None."""
    import torch

    pieces = vllm_pieces(name, actor)
    return None if pieces is None else torch.cat(pieces, dim=0)


def tp_shard(pieces: list[Any], shape: tuple[int, ...], rank: int, tp: int) -> tuple[Any, int, int] | None:
    """(what vLLM's tensor-parallel rank ``rank`` of ``tp`` holds of ``pieces``, the dim it is split on, how
    much of the shard along that dim is real), or None if ``shape`` is no such shard.

    vLLM 0.28's layers: a tensor of the full shape is replicated (norms, row-parallel biases, the patch
    embedding); one dim smaller by ``tp`` is a column- (dim 0) or row-parallel (dim 1) shard, rank ``rank``'s
    contiguous block; a vocabulary shard (dim 0 of embed_tokens/lm_head) may run past the vocabulary (vLLM pads
    it), those padding rows are not compared; a fused weight is each piece's shard, stacked: the first piece (q,
    gate) split ``tp`` ways, the others sharing the rest equally, each one block of its piece (a KV head that TP
    exceeds is replicated: rank ``rank`` holds KV block ``rank * blocks // tp``).
    """
    import torch

    full = torch.cat(pieces, dim=0)
    if tuple(full.shape) == tuple(shape):
        return full, 0, shape[0] if shape else 0
    differ = [d for d, (a, b) in enumerate(zip(full.shape, shape)) if a != b]
    if len(full.shape) != len(shape) or len(differ) != 1 or tp < 2:
        return None
    d = differ[0]
    size = shape[d]
    if d == 0 and len(pieces) > 1:
        first = pieces[0].shape[0] // tp
        rest, left = divmod(size - first, len(pieces) - 1)
        if left or rest <= 0:
            return None
        parts = []
        for piece, rows in zip(pieces, [first] + [rest] * (len(pieces) - 1)):
            blocks, odd = divmod(piece.shape[0], rows)
            if odd:
                return None
            block = rank * blocks // tp
            parts.append(piece[block * rows:(block + 1) * rows])
        return torch.cat(parts, dim=0), 0, size
    start = rank * size
    if size * tp < full.shape[d] or start >= full.shape[d]:
        return None
    real = min(size, full.shape[d] - start)
    return full.narrow(d, start, real), d, real


def compare_vllm_to_actor(vllm: Mapping[str, Any], actor: Mapping[str, Any], tp_rank: int = 0,
                          tp: int = 1) -> tuple[int, int, list[str]]:
    """(equal, compared, problems) for every vLLM parameter that maps to an actor tensor, as tensor-parallel
    rank ``tp_rank`` of ``tp`` holds it (:func:`tp_shard`)."""
    import torch

    equal = compared = 0
    problems: list[str] = []
    for name, tensor in sorted(vllm.items()):
        pieces = vllm_pieces(name, actor)
        if pieces is None:
            problems.append(f"{name}: no actor tensor")
            continue
        compared += 1
        shard = tp_shard(pieces, tuple(tensor.shape), tp_rank, tp)
        if shard is None:
            problems.append(f"{name}: shape {tuple(tensor.shape)} is no TP {tp_rank}/{tp} shard of the actor's")
            continue
        expected, dim, real = shard
        held = tensor.narrow(dim, 0, real) if tensor.dim() else tensor  # without vLLM's vocabulary padding
        # verl sends the actor's weights in the rollout dtype (bf16): compare after the same cast, exactly.
        if expected.shape == held.shape and torch.equal(expected.to(held.dtype), held):
            equal += 1
        else:
            problems.append(f"{name}: differs from the actor's" + (f" (TP rank {tp_rank}/{tp})" if tp > 1 else ""))
    return equal, compared, problems


def evictions_expected(toy_log: Iterable[Mapping[str, Any]], group_size: int) -> tuple[int, int]:
    """(groups scored, groups with no accuracy spread) from the toy reward's per-response log."""
    by_prompt: dict[Any, list[float]] = defaultdict(list)
    for record in toy_log:
        by_prompt[record["index"]].append(float(record["acc"]))
    groups = constant = 0
    for values in by_prompt.values():
        for start in range(0, len(values), group_size):
            group = values[start:start + group_size]
            groups += 1
            constant += len(set(group)) == 1
    return groups, constant


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""


SHARD_FILE = re.compile(r"^model_world_size_(\d+)_rank_(\d+)\.pt$")


def step_checkpoints(folder: Path, sub: str = "") -> dict[int, Path]:
    """``{step: checkpoint folder}`` of verl's ``global_step_<n>/<sub>`` folders that hold model shards.

    ``sub`` is the shards' folder inside a step folder (GRPO's sit in ``actor``).
    """
    found = {}
    for step_dir in folder.glob("global_step_*"):
        ckpt = step_dir / sub if sub else step_dir
        if ckpt.is_dir() and any(SHARD_FILE.match(p.name) for p in ckpt.iterdir()):
            found[int(step_dir.name.rsplit("_", 1)[-1])] = ckpt
    return dict(sorted(found.items()))


def checkpoint_shards(ckpt: Path) -> tuple[int, dict[int, Path]]:
    """(world size, ``{rank: model shard}``) of one verl FSDP checkpoint folder; mixed world sizes raise."""
    shards, worlds = {}, set()
    for path in ckpt.iterdir():
        match = SHARD_FILE.match(path.name)
        if match:
            worlds.add(int(match.group(1)))
            shards[int(match.group(2))] = path
    if len(worlds) != 1:
        raise ValueError(f"{ckpt}: model shards of world sizes {sorted(worlds)}")
    return worlds.pop(), dict(sorted(shards.items()))


def local_shards(ckpt: Path) -> dict[int, dict[str, Any]]:
    """``{rank: {name: (local tensor, placement)}}``: what each FSDP rank held (its DTensor's local part)."""
    import torch

    out = {}
    for rank, path in checkpoint_shards(ckpt)[1].items():
        state = torch.load(str(path), map_location="cpu", weights_only=False)
        ranks = {}
        for name, tensor in state.items():
            if hasattr(tensor, "to_local"):
                placements = tuple(getattr(tensor, "placements", ()))
                ranks[name] = (tensor.to_local().detach(), placements[0] if placements else None)
            else:
                ranks[name] = (tensor.detach(), None)
        out[rank] = ranks
    return out


def load_checkpoint(ckpt: Path) -> dict[str, Any]:
    """The full tensors of a verl FSDP checkpoint of any world size: each rank's local shards put together
    along their ``Shard(dim)`` (``Replicate`` or a plain tensor: rank 0's)."""
    import torch

    ranks = local_shards(ckpt)
    full = {}
    for name in ranks[min(ranks)]:
        parts = [ranks[r][name] for r in sorted(ranks)]
        placement = parts[0][1]
        dim = getattr(placement, "dim", None)
        full[name] = torch.cat([t for t, _ in parts], dim=dim) if dim is not None else parts[0][0]
    return full


def run_syncs(folder: Path) -> dict[int, list[Path]]:
    """One GRPO run's vLLM weight dumps by sync (``sync-<pid>-<n>``: n counts the syncs of each vLLM worker
    process, from 0), every worker's (each TP rank of each engine)."""
    syncs: dict[int, list[Path]] = defaultdict(list)
    for path in sorted(folder.glob("sync-*-*.safetensors")):
        syncs[int(path.stem.split("-")[2])].append(path)
    return dict(sorted(syncs.items()))


def match_tp_rank(vllm: Mapping[str, Any], actor: Mapping[str, Any], tp: int) -> tuple[int | None, str]:
    """(the TP rank whose shard of the actor's weights ``vllm`` holds in full, or None; what was compared)."""
    best = ""
    for rank in range(tp):
        equal, compared, bad = compare_vllm_to_actor(vllm, actor, rank, tp)
        if compared and equal == compared:
            return rank, f"{equal}/{compared} parameters equal"
        best = best or f"{equal}/{compared} equal as TP rank {rank}: {'; '.join(bad[:2])}"
    return None, best


def sync_check(sync_dir: Path, grpo_dir: Path, ranks: int = 1, tp: int = 1) -> Check:
    """After the sync that follows step n, every vLLM worker holds its TP shard of the actor's step-n checkpoint.

    Sync 0 loads the starting policy; sync n (n >= 1) follows the update of step n.  With ``ranks`` rollout
    workers in engines of ``tp``, each sync leaves ``ranks`` dumps, and each TP rank's shard is held by
    ``ranks / tp`` of them (one per engine).
    """
    from collections import Counter

    name = "vLLM weights equal the actor's after every sync" + (f" (every TP shard, TP {tp})" if tp > 1 else "")
    syncs = run_syncs(sync_dir)
    ckpts = step_checkpoints(grpo_dir, "actor")
    want = Counter({rank: ranks // tp for rank in range(tp)})
    compared_steps, problems = [], []
    for step, dumps in syncs.items():
        if step == 0:
            continue
        ckpt = ckpts.get(step)
        if ckpt is None:
            problems.append(f"no checkpoint for step {step}")
            continue
        actor = load_checkpoint(ckpt)
        held, notes = Counter(), []
        for dump in dumps:
            rank, note = match_tp_rank(load_state_dict(dump), actor, tp)
            if rank is None:
                problems.append(f"step {step} {dump.name}: {note}")
            else:
                held[rank] += 1
                notes.append(f"TP rank {rank} {note}" if tp > 1 else note)
        if held != want:
            problems.append(f"step {step}: TP shards held {dict(held)}, expected {dict(want)} "
                            f"({ranks} rollout workers, TP {tp})")
        compared_steps.append(f"step {step}: " + ", ".join(notes))
    ok = bool(compared_steps) and not problems
    detail = "; ".join(compared_steps) or f"{sum(map(len, syncs.values()))} sync dumps in {sync_dir}"
    return Check(name, ok, detail + (f"; problems: {'; '.join(problems[:3])}" if problems else ""))


# ------------------------------------------------------------------ parallel layouts (GPUS_PER_NODE, ROLLOUT_TP)
LAYOUT_KEYS = ("nnodes", "gpus_per_node", "rollout_tp", "sft_sp")


def read_layout(logs: Path) -> dict[str, int]:
    """The layout the run asked for (``logs/layout.json``, written by examples/cpu_train.sh); 1s if absent."""
    path = logs / "layout.json"
    given = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return {key: int(given.get(key, 1)) for key in LAYOUT_KEYS}


def _one_rank(name: str, ranks: int) -> Check | None:
    return skip(name, "world size 1: a parallel layout's claim (GPUS_PER_NODE=2 shows it)") if ranks == 1 else None


def shard_files_check(stage: str, ckpts: Mapping[int, Path], ranks: int) -> Check:
    """Every checkpoint of ``stage`` has verl's model, optimizer and extra-state file for each of ``ranks`` ranks."""
    name = f"{stage} checkpoints: one shard per rank"
    if (skipped := _one_rank(name, ranks)) is not None:
        return skipped
    problems, seen = [], []
    for step, ckpt in ckpts.items():
        try:
            world, shards = checkpoint_shards(ckpt)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        missing = [f"{kind}_world_size_{ranks}_rank_{r}.pt" for kind in ("model", "optim", "extra_state")
                   for r in range(ranks) if not (ckpt / f"{kind}_world_size_{ranks}_rank_{r}.pt").is_file()]
        if world != ranks or sorted(shards) != list(range(ranks)) or missing:
            problems.append(f"global_step_{step}: world size {world}, model shards of ranks {sorted(shards)}"
                            + (f", missing {missing[:3]}" if missing else ""))
        seen.append(step)
    ok = bool(seen) and not problems
    return Check(name, ok, f"steps {seen}: model/optim/extra_state for ranks 0..{ranks - 1} each"
                 + (f"; problems: {'; '.join(problems[:3])}" if problems else ""))


def sharded_check(stage: str, ckpt: Path | None, model_numel: int, ranks: int) -> Check:
    """Each FSDP rank held a shard of the model, not a replica: the ranks' local parameter counts add up to
    the model's, each rank holds less than all of it, and every tensor is split (``Shard``) across them."""
    name = f"{stage}: each FSDP rank held a shard, not a replica"
    if (skipped := _one_rank(name, ranks)) is not None:
        return skipped
    if ckpt is None:
        return Check(name, False, "no checkpoint")
    held = local_shards(ckpt)
    counts = {rank: sum(t.numel() for t, _ in state.values()) for rank, state in held.items()}
    names = set().union(*(state.keys() for state in held.values()))
    unsplit = sorted(n for n in names if any(getattr(state[n][1], "dim", None) is None for state in held.values()))
    total = sum(counts.values())
    ok = (len(counts) == ranks and total == model_numel and all(0 < c < model_numel for c in counts.values())
          and not unsplit)
    detail = (" + ".join(f"rank {r} {c}" for r, c in counts.items()) + f" = {total} parameters, the model has "
              f"{model_numel}; {len(names) - len(unsplit)}/{len(names)} tensors sharded ({ckpt.parent.name}/{ckpt.name})")
    return Check(name, ok, detail + (f"; not sharded: {unsplit[:3]}" if unsplit else ""))


def per_rank_changes_check(before: Path | None, after: Path | None, ranks: int) -> Check:
    """On every FSDP rank, the step changed the language model's shard and left the vision tower's alone."""
    name = "grpo trained language, froze vision on every rank"
    if (skipped := _one_rank(name, ranks)) is not None:
        return skipped
    if before is None or after is None:
        return Check(name, False, "need 2 GRPO checkpoints")
    old, new = local_shards(before), local_shards(after)
    parts, ok = [], len(new) == ranks and sorted(old) == sorted(new)
    for rank in sorted(new):
        changes = weight_changes({k: t for k, (t, _) in old.get(rank, {}).items()},
                                 {k: t for k, (t, _) in new[rank].items()})
        (lc, lt), (vc, vt) = changes["language"], changes["vision"]
        ok = ok and lt > 0 and vt > 0 and lc > 0 and vc == 0
        parts.append(f"rank {rank}: language {lc}/{lt}, vision {vc}/{vt} changed")
    return Check(name, ok, "; ".join(parts) + f" ({before.parent.name} -> {after.parent.name})")


def batch_check(steps: Mapping[int, Mapping[str, Any]], prompts: int, n: int) -> Check:
    """The responses each step trained on are what the config asks: prompts x n (``training/srpo/responses``)."""
    name = f"grpo trained prompts x n = {prompts} x {n} responses a step"
    got = {step: m.get("training/srpo/responses") for step, m in steps.items()}
    ok = bool(got) and all(v == prompts * n for v in got.values())
    return Check(name, ok, f"training/srpo/responses by step: {got}")


def batch_split_check(steps: Mapping[int, Mapping[str, Any]], ranks: int) -> Check:
    """verl split each step's batch over the ranks: its tokens over the per-rank mean (``global_seqlen/mean``,
    verl's balance of the batch across data-parallel ranks) is the world size, every rank got tokens, and the
    responses divide evenly."""
    name = f"grpo split each batch over the {ranks} ranks"
    if (skipped := _one_rank(name, ranks)) is not None:
        return skipped
    parts, ok = [], bool(steps)
    for step, m in sorted(steps.items()):
        total, mean, low = (float(m.get(k, 0) or 0) for k in
                            ("perf/total_num_tokens", "global_seqlen/mean", "global_seqlen/min"))
        responses = float(m.get("training/srpo/responses", 0) or 0)
        split = total / mean if mean else 0.0
        ok = ok and abs(split - ranks) < 1e-6 and low > 0 and responses > 0 and responses % ranks == 0
        parts.append(f"step {step}: {total:.0f} tokens = {split:g} x {mean:g} a rank (min {low:g}), "
                     f"{responses:.0f} responses")
    return Check(name, ok, "; ".join(parts))


def srpo_count_check(steps: Iterable[Mapping[str, Any]], scored: int) -> Check:
    """The SRPO metrics counted every response once: the pre-filter ``responses`` of every step (both runs) add up
    to the responses the reward scored (the toy reward's log, one line per response); counted once per rank
    they would be world-size times as many."""
    name = "training/srpo/* counted every response once"
    counted = [m.get("training/srpo/prefilter/responses") for m in steps]
    total = sum(float(c) for c in counted if isinstance(c, float))
    ok = bool(counted) and None not in counted and scored > 0 and total == scored
    return Check(name, ok, f"pre-filter responses by step {counted} (sum {total:.0f}); responses scored: {scored}")


RESUME_LOAD = re.compile(r"\[Rank (\d+)\] Loaded model from (\S*global_step_(\d+)\S*model_world_size_(\d+)_rank_(\d+)\.pt)")


def resume_source_check(resume_log: str, last_step: int | None, ranks: int) -> Check:
    """The resumed GRPO run loaded, on every rank, that rank's shard of the first run's last checkpoint."""
    name = f"grpo resumed every rank from its shard of the {ranks}-rank checkpoint"
    loads = {(int(r), int(step), int(world), int(fr)) for r, _, step, world, fr in RESUME_LOAD.findall(ANSI.sub("", resume_log))}
    want = {(r, last_step, ranks, r) for r in range(ranks)}
    ok = last_step is not None and loads == want
    detail = ", ".join(f"rank {r} loaded global_step_{s} model_world_size_{w}_rank_{f}.pt" for r, s, w, f in sorted(loads))
    return Check(name, ok, (detail or "no '[Rank N] Loaded model from' line in the resume log")
                 + (f"; expected ranks 0..{ranks - 1} from global_step_{last_step}" if not ok else ""))


def merged_files(folder: Path) -> dict[str, Any]:
    """The tensors of a merged Hugging Face model folder (one or several safetensors files)."""
    out: dict[str, Any] = {}
    for path in sorted(folder.glob("*.safetensors")):
        out.update(load_state_dict(path))
    return out


def merge_check(stage: str, ckpt: Path | None, merged: Path) -> Check:
    """verl.model_merger put the checkpoint's shards together: every merged tensor is the ranks' shards joined
    (in the merged dtype), for every tensor of the checkpoint."""
    import torch

    if ckpt is None:
        return Check(f"{stage} merge equals its checkpoint", False, "no checkpoint")
    world = checkpoint_shards(ckpt)[0]
    name = f"{stage} merge of the {world}-rank checkpoint equals its shards"
    full = {canonical_name(k): v for k, v in load_checkpoint(ckpt).items()}
    got = {canonical_name(k): v for k, v in merged_files(merged).items()}
    equal = sum(1 for k, v in full.items() if k in got and got[k].shape == v.shape and torch.equal(v.to(got[k].dtype), got[k]))
    ok = bool(full) and equal == len(full) and set(got) == set(full)
    return Check(name, ok, f"{equal}/{len(full)} tensors of {ckpt.parent.name}/{ckpt.name} equal in {merged}"
                 + (f"; only in one: {sorted(set(got) ^ set(full))[:3]}" if set(got) != set(full) else ""))


def requested_batch() -> tuple[int, int]:
    """(data.train_batch_size, actor_rollout_ref.rollout.n) of the CPU GRPO config (``+cpu=grpo``)."""
    from omegaconf import OmegaConf

    from recipe.srpo.compose import GRPO_CONFIG, compose

    cfg = compose(GRPO_CONFIG, ["+cpu=grpo"])
    return int(OmegaConf.select(cfg, "data.train_batch_size")), int(OmegaConf.select(cfg, "actor_rollout_ref.rollout.n"))


def verify(workspace: Path, group_size: int = 4, min_steps: int = 2) -> list[Check]:
    """Every claim of a CPU run, checked from the artifacts under ``workspace``."""
    ws = Path(workspace)
    logs, out = ws / "logs", ws / "outputs"
    checks: list[Check] = []
    layout = read_layout(logs)
    ranks, tp = layout["nnodes"] * layout["gpus_per_node"], layout["rollout_tp"]

    # SFT
    sft_steps = parse_step_lines(_read(logs / "sft.log"))
    losses = [m.get("train/loss") for _, m in sorted(sft_steps.items())]
    ok = bool(losses) and all(isinstance(x, float) and math.isfinite(x) for x in losses)
    checks.append(Check("sft loss finite", ok, f"{len(losses)} SFT steps, loss {losses}"))
    merged = out / "sft_merged"
    try:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        AutoModelForImageTextToText.from_pretrained(str(merged))
        AutoProcessor.from_pretrained(str(merged))
        checks.append(Check("merged SFT model loads", True, f"{merged} (model and processor)"))
    except Exception as exc:  # noqa: BLE001 - reported as a failed check
        checks.append(Check("merged SFT model loads", False, f"{merged}: {exc}"))
    # The SFT checkpoint keeps the trained fp32 weights (the merged model is saved in bf16, whose
    # rounding alone would change tensors): compare it with the base model.
    sft_ckpts = step_checkpoints(out / "sft")
    base = ws / "tiny-qwen/model.safetensors"
    base_weights = load_state_dict(base) if base.is_file() else {}
    model_numel = sum(t.numel() for t in base_weights.values())
    sft_last = sft_ckpts[max(sft_ckpts)] if sft_ckpts else None
    if sft_last is not None and base_weights:
        checks.append(_changes_check(f"sft trained language, froze vision (base -> {sft_last.name})",
                                     base_weights, load_checkpoint(sft_last)))
    else:
        checks.append(Check("sft trained language, froze vision", False,
                            f"base weights {'found' if base.is_file() else 'missing'}, {len(sft_ckpts)} SFT checkpoints"))
    checks.append(shard_files_check("sft", sft_ckpts, ranks))
    checks.append(sharded_check("sft", sft_last, model_numel, ranks))
    checks.append(merge_check("sft", sft_last, merged))

    # GRPO
    grpo_log = _read(logs / "grpo.log")
    steps = parse_step_lines(grpo_log)
    checks.append(Check(f"grpo ran at least {min_steps} steps", len(steps) >= min_steps,
                        f"steps logged: {sorted(steps)}"))
    gen_ok = bool(steps) and "vLLMHttpServer" in grpo_log and all(
        float(m.get("timing_s/gen", 0)) > 0 and m.get("training/rollout_probs_diff_valid") == 1.0 for m in steps.values())
    checks.append(Check("rollouts generated by vLLM", gen_ok,
                        "vLLM server in the log; timing_s/gen > 0 and rollout log-probs compared every step"))
    want = expected_srpo_keys()
    missing = {step: [k for k in want if k not in m] for step, m in steps.items()}
    checks.append(Check("training/srpo/* logged every step", bool(steps) and not any(missing.values()),
                        f"{len(want)} keys per step; missing: {({s: v for s, v in missing.items() if v}) or 'none'}"))

    ckpts = step_checkpoints(out / "grpo", "actor")
    before = after = None
    if len(ckpts) >= 2:
        before, after = (ckpts[s] for s in list(ckpts)[-2:])
        checks.append(_changes_check(f"grpo trained language, froze vision ({before.parent.name} -> {after.parent.name})",
                                     load_checkpoint(before), load_checkpoint(after)))
    else:
        checks.append(Check("grpo trained language, froze vision", False, f"need 2 checkpoints, found {len(ckpts)}"))
    checks.append(per_rank_changes_check(before, after, ranks))
    checks.append(shard_files_check("grpo", ckpts, ranks))
    checks.append(sharded_check("grpo", after, model_numel, ranks))

    checks.append(sync_check(logs / "vllm_sync" / "grpo", out / "grpo", ranks, tp))

    # The toy reward's log covers both GRPO runs (the first and the resumed one).
    resume = parse_step_lines(_read(logs / "grpo_resume.log"))
    toy = [json.loads(line) for line in _read(logs / "toy_reward.jsonl").splitlines() if line.strip()]
    groups, constant = evictions_expected(toy, group_size)
    evicted = sum(float(m.get("training/filter_groups/evicted_samples", 0.0))
                  for m in [*steps.values(), *resume.values()])
    checks.append(Check("online filter evicted the groups it should", groups > 0 and constant > 0 and evicted == constant,
                        f"{groups} groups scored, {constant} without accuracy spread, {int(evicted)} evicted "
                        f"(steps {sorted(steps)} + resumed {sorted(resume)})"))

    # Resume
    first_steps = sorted(steps)
    ok = bool(first_steps) and bool(resume) and min(resume) == max(first_steps) + 1
    checks.append(Check("resume continues at the next step", ok,
                        f"first run steps {first_steps}, resumed run steps {sorted(resume)}"))
    resume_name = f"grpo resumed every rank from its shard of the {ranks}-rank checkpoint"
    checks.append(_one_rank(resume_name, ranks) or resume_source_check(
        _read(logs / "grpo_resume.log"), max(first_steps) if first_steps else None, ranks))
    all_steps = {**steps, **resume}
    try:
        prompts, n = requested_batch()
        checks.append(batch_check(all_steps, prompts, n))
    except Exception as exc:  # noqa: BLE001 - a config that does not compose: a failed check
        checks.append(Check("grpo trained prompts x n responses a step", False, f"+cpu=grpo config: {exc}"))
    checks.append(batch_split_check(all_steps, ranks))
    checks.append(srpo_count_check(list(all_steps.values()), len(toy)))
    newest = ckpts[max(ckpts)] if ckpts else None
    if (out / "grpo_merged").is_dir():
        checks.append(merge_check("grpo", newest, out / "grpo_merged"))
    else:
        checks.append(Check("grpo merge equals its checkpoint", False, f"no {out / 'grpo_merged'} (the eval stage merges it)"))
    checks.append(eval_check(out / "eval/report/summary.json", out / "grpo_merged"))
    checks.append(family_check(ws / "tiny-qwen", merged, out / "grpo_merged"))
    checks.append(image_patch_check(grpo_log, merged))
    checks.append(chat_template_check(merged))
    checks.append(nodes_check(ws, layout["nnodes"]))
    return checks


def family_check(*models: Path) -> Check:
    """The base model, the merged SFT model and the merged GRPO policy are one architecture."""
    name = "one model family from base to trained policy"
    types = {}
    for folder in models:
        try:
            cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            types[folder.name] = (cfg.get("model_type"), tuple(cfg.get("architectures") or ()))
        except (OSError, ValueError) as exc:
            return Check(name, False, f"{folder / 'config.json'}: {exc}")
    kinds = set(types.values())
    detail = ", ".join(f"{n}: {t[0]} ({', '.join(t[1])})" for n, t in types.items())
    return Check(name, len(kinds) == 1 and None not in next(iter(kinds)), detail)


GRPO_IMAGE_PATCH = re.compile(r"'image_patch_size': (\d+)")


def image_patch_check(grpo_log: str, model: Path) -> Check:
    """The ``data.image_patch_size`` the GRPO run used (its config dump) is the model processor's patch.

    The dry run's ``image patch`` check (:func:`recipe.srpo.checks.check_image_patch`), on what verl ran with.
    """
    name = "grpo data.image_patch_size is the processor's"
    found = sorted(set(GRPO_IMAGE_PATCH.findall(ANSI.sub("", grpo_log))))
    if len(found) != 1:
        return Check(name, False, f"data.image_patch_size in the GRPO log's config: {found or 'not found'}")
    try:
        from transformers import AutoProcessor

        from recipe.srpo.checks import check_image_patch

        processor = AutoProcessor.from_pretrained(str(model))
        return Check(name, True, check_image_patch({"image_patch_size": int(found[0])}, processor))
    except Exception as exc:  # noqa: BLE001 - ConfigError or a model that does not load: a failed check
        return Check(name, False, str(exc))


def chat_template_check(model: Path) -> Check:
    """The merged SFT model's chat template renders the five-block target verbatim and prefills no format tag."""
    name = "chat template keeps the SRPO format"
    try:
        from transformers import AutoProcessor

        from recipe.srpo.chat_template import check_chat_template

        return Check(name, True, check_chat_template(AutoProcessor.from_pretrained(str(model))))
    except Exception as exc:  # noqa: BLE001 - ConfigError or a model that does not load: a failed check
        return Check(name, False, str(exc))


def eval_check(summary_path: Path, merged: Path) -> Check:
    """The eval stage merged the newest GRPO checkpoint and reported base, SFT and policy on every question."""
    name = "eval stage reported base, SFT and trained policy"
    if not summary_path.is_file() or not (merged / "config.json").is_file():
        return Check(name, False, f"missing {summary_path if not summary_path.is_file() else merged / 'config.json'}")
    runs = json.loads(summary_path.read_text(encoding="utf-8"))["runs"]
    rows = {run["run"]: run["overall"] for run in runs}
    complete = {n: o["questions_answered"] == o["questions"] > 0 for n, o in rows.items()}
    ok = len(rows) == 3 and list(rows)[:2] == ["base", "sft"] and all(complete.values())
    detail = ", ".join(f"{n}: {o['questions_answered']}/{o['questions']} questions answered" for n, o in rows.items())
    return Check(name, ok, f"{detail}; policy merged to {merged}")


# ------------------------------------------------------------------ several nodes (NNODES=2)
RAYLET_NODE_ID = re.compile(r"node_id=([0-9a-f]{56})")
ACTOR_NAME = re.compile(r"^:actor_name:(\S+)", re.M)
#: verl's colocated FSDP actor + rollout worker (one per rank) and its vLLM server (one per replica).
TRAINING_ACTORS = ("WorkerDict", "vLLMHttpServer")


def ray_node_actors(node_dir: Path) -> tuple[str | None, dict[str, int]]:
    """(node id, {actor class: workers}) of one Ray node's temp dir, from its raylet's and workers' logs."""
    node_id, actors = None, defaultdict(int)
    for logs in sorted(d for d in node_dir.glob("session_*/logs") if not d.parent.is_symlink()):  # not session_latest
        match = RAYLET_NODE_ID.search(_read(logs / "raylet.out"))
        node_id = node_id or (match.group(1) if match else None)
        for out in logs.glob("worker-*.out"):
            for name in ACTOR_NAME.findall(_read(out)):
                actors[name] += 1
    return node_id, dict(actors)


def nodes_check(ws: Path, nnodes: int) -> Check:
    """With NNODES > 1: every node of the Ray cluster ran verl's training workers, and every SFT node trained.

    From what the run left: the cluster's nodes as Ray listed them before it stopped (``logs/ray_nodes.json``),
    each node's own temp dir (``ray/node<i>``: its raylet's node id, one log per worker process headed by the
    actor's class), and each SFT node's torchrun log (``sft.log``, ``sft_node<i>.log``).
    """
    name = f"workers ran on all {nnodes} nodes"
    if nnodes == 1:
        return skip(name, "one node: a multi-node claim (NNODES=2 shows it)")
    problems, seen = [], []
    listed_path = ws / "logs/ray_nodes.json"
    listed = {n["NodeID"] for n in json.loads(listed_path.read_text())} if listed_path.is_file() else set()
    if len(listed) != nnodes:
        problems.append(f"{listed_path.name}: {len(listed)} alive nodes listed, need {nnodes}")
    for i in range(nnodes):
        node_id, actors = ray_node_actors(ws / f"ray/node{i}")
        missing = [a for a in TRAINING_ACTORS if not actors.get(a)]
        if node_id is None:
            problems.append(f"ray/node{i}: no raylet log")
        elif node_id not in listed:
            problems.append(f"ray/node{i}: node {node_id[:12]} is not one of the cluster's nodes")
        if missing:
            problems.append(f"ray/node{i}: no {' or '.join(missing)} worker")
        seen.append(f"node{i} {(node_id or '?')[:12]}: " + ", ".join(f"{a} x{actors.get(a, 0)}" for a in TRAINING_ACTORS))
        log = ws / "logs" / ("sft.log" if i == 0 else f"sft_node{i}.log")
        if f"--nnodes={nnodes} --nproc_per_node" not in _read(log) or f"--node_rank={i} " not in _read(log):
            problems.append(f"{log.name}: no torchrun --nnodes={nnodes} --node_rank={i}")
    detail = "; ".join(seen) + (f"; problems: {'; '.join(problems)}" if problems else "; SFT: one torchrun per node")
    return Check(name, not problems, detail)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Check what a CPU training run (examples/cpu_train.sh) proved.")
    ap.add_argument("--workspace", required=True, type=Path)
    ap.add_argument("--group-size", type=int, default=4, help="actor_rollout_ref.rollout.n of the run")
    args = ap.parse_args(argv)
    checks = verify(args.workspace, group_size=args.group_size)
    for check in checks:
        print(check.line())
    failed = [c for c in checks if not c.ok]
    skipped = [c for c in checks if c.skipped]
    counted = len(checks) - len(skipped)
    print(f"cpu_train: {counted - len(failed)}/{counted} checks passed"
          + (f", {len(skipped)} skipped (claims of a parallel layout at world size 1)" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
