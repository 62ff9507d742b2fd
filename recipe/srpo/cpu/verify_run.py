"""What a CPU training run proved, read from its artifacts (``examples/cpu_train.sh`` prints it).

Every check reads what the run left behind (verl's console step log, checkpoints,
the merged model, vLLM's weights after each sync, the toy reward's log) and
recomputes the claim; none trusts an exit status.  :func:`verify` returns one
:class:`Check` per claim; ``python -m recipe.srpo.cpu.verify_run --workspace DIR``
prints them and exits 1 if any failed.

Workspace layout (written by ``examples/cpu_train.sh``)::

    DIR/tiny-qwen/            base model (model.safetensors)
    DIR/outputs/sft_merged/   merged SFT policy
    DIR/outputs/grpo/global_step_N/actor/model_world_size_1_rank_0.pt
    DIR/logs/sft.log, grpo.log, grpo_resume.log
    DIR/logs/vllm_sync/sync-<pid>-<n>.safetensors
    DIR/logs/toy_reward.jsonl
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

    def line(self) -> str:
        return f"[{'PASS' if self.ok else 'FAIL'}] {self.name}: {self.detail}"


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


def vllm_expected(name: str, actor: Mapping[str, Any]) -> Any:
    """The actor (Hugging Face) tensor that vLLM's parameter ``name`` must equal, or None if unknown.

    vLLM's Qwen2.5-VL and Qwen3-VL both keep the tower under ``visual.`` and the text model under
    ``language_model.model.`` / ``language_model.lm_head`` (:data:`VLLM_TO_HF_PREFIXES`), and fuse
    the weights of :data:`VLLM_FUSED`.
    """
    import torch

    hf = name
    for vllm_prefix, hf_prefix in VLLM_TO_HF_PREFIXES:
        if name.startswith(vllm_prefix):
            hf = hf_prefix + name[len(vllm_prefix):]
            break
    if hf in actor:
        return actor[hf]
    for fused, parts in VLLM_FUSED:
        if f".{fused}." in hf:
            pieces = [hf.replace(f".{fused}.", f".{part}.") for part in parts]
            if all(p in actor for p in pieces):
                return torch.cat([actor[p] for p in pieces], dim=0)
    return None


def compare_vllm_to_actor(vllm: Mapping[str, Any], actor: Mapping[str, Any]) -> tuple[int, int, list[str]]:
    """(equal, compared, problems) for every vLLM parameter that maps to an actor tensor."""
    import torch

    equal = compared = 0
    problems: list[str] = []
    for name, tensor in sorted(vllm.items()):
        expected = vllm_expected(name, actor)
        if expected is None:
            problems.append(f"{name}: no actor tensor")
            continue
        compared += 1
        # verl sends the actor's weights in the rollout dtype (bf16): compare after the same cast, exactly.
        if expected.shape == tensor.shape and torch.equal(expected.to(tensor.dtype), tensor):
            equal += 1
        else:
            problems.append(f"{name}: differs from the actor's")
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


SHARD = "model_world_size_1_rank_0.pt"


def step_checkpoints(folder: Path, shard: str = SHARD) -> dict[int, Path]:
    """``{step: model shard}`` of verl's ``global_step_<n>/`` checkpoints under ``folder``.

    ``shard`` is the shard's path inside a step folder (GRPO's sits in ``actor/``).
    """
    found = {}
    for path in folder.glob(f"global_step_*/{shard}"):
        step_dir = path.relative_to(folder).parts[0]
        found[int(step_dir.rsplit("_", 1)[-1])] = path
    return dict(sorted(found.items()))


def first_run_syncs(folder: Path) -> list[Path]:
    """The first GRPO run's vLLM weight dumps, in sync order (``sync-<pid>-<n>``: the oldest pid's)."""
    dumps = sorted(folder.glob("sync-*-*.safetensors"), key=lambda p: p.stat().st_mtime)
    if not dumps:
        return []
    pid = dumps[0].name.split("-")[1]
    return sorted((p for p in dumps if p.name.split("-")[1] == pid), key=lambda p: int(p.stem.split("-")[2]))


def sync_check(sync_dir: Path, grpo_dir: Path) -> Check:
    """After the sync that follows step n, vLLM's weights equal the actor's step-n checkpoint, for every n.

    Sync 0 loads the starting policy; sync n (n >= 1) follows the update of step n.
    """
    name = "vLLM weights equal the actor's after every sync"
    dumps = first_run_syncs(sync_dir)
    ckpts = step_checkpoints(grpo_dir, f"actor/{SHARD}")
    compared_steps, problems = [], []
    for dump in dumps[1:]:
        step = int(dump.stem.split("-")[2])
        ckpt = ckpts.get(step)
        if ckpt is None:
            problems.append(f"no checkpoint for step {step}")
            continue
        equal, compared, bad = compare_vllm_to_actor(load_state_dict(dump), load_state_dict(ckpt))
        compared_steps.append(f"step {step}: {equal}/{compared} parameters equal")
        if not compared or equal != compared:
            problems.extend(bad[:3] or [f"step {step}: nothing compared"])
    ok = bool(compared_steps) and not problems
    detail = "; ".join(compared_steps) or f"{len(dumps)} sync dumps in {sync_dir}"
    return Check(name, ok, detail + (f"; problems: {'; '.join(problems[:3])}" if problems else ""))


def verify(workspace: Path, group_size: int = 4, min_steps: int = 2) -> list[Check]:
    """Every claim of a CPU run, checked from the artifacts under ``workspace``."""
    ws = Path(workspace)
    logs, out = ws / "logs", ws / "outputs"
    checks: list[Check] = []

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
    if sft_ckpts and base.is_file():
        last = max(sft_ckpts)
        checks.append(_changes_check(f"sft trained language, froze vision (base -> global_step_{last})",
                                     load_state_dict(base), load_state_dict(sft_ckpts[last])))
    else:
        checks.append(Check("sft trained language, froze vision", False,
                            f"base weights {'found' if base.is_file() else 'missing'}, {len(sft_ckpts)} SFT checkpoints"))

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

    ckpts = step_checkpoints(out / "grpo", f"actor/{SHARD}")
    if len(ckpts) >= 2:
        before, after = list(ckpts)[-2:]
        checks.append(_changes_check(f"grpo trained language, froze vision (global_step_{before} -> global_step_{after})",
                                     load_state_dict(ckpts[before]), load_state_dict(ckpts[after])))
    else:
        checks.append(Check("grpo trained language, froze vision", False, f"need 2 checkpoints, found {len(ckpts)}"))

    checks.append(sync_check(logs / "vllm_sync", out / "grpo"))

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
    checks.append(eval_check(out / "eval/report/summary.json", out / "grpo_merged"))
    checks.append(family_check(ws / "tiny-qwen", merged, out / "grpo_merged"))
    checks.append(image_patch_check(grpo_log, merged))
    checks.append(chat_template_check(merged))
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Check what a CPU training run (examples/cpu_train.sh) proved.")
    ap.add_argument("--workspace", required=True, type=Path)
    ap.add_argument("--group-size", type=int, default=4, help="actor_rollout_ref.rollout.n of the run")
    args = ap.parse_args(argv)
    checks = verify(args.workspace, group_size=args.group_size)
    for check in checks:
        print(check.line())
    failed = [c for c in checks if not c.ok]
    print(f"cpu_train: {len(checks) - len(failed)}/{len(checks)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
