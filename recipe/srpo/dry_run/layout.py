"""The dry run's head arithmetic of a parallel layout: vLLM tensor parallel and Ulysses sequence parallel
against the model's own attention heads (read from its config, the real model's or the tiny one's).

The rules are those the libraries assert at start-up on the GPUs, checked here before any GPU is booked:

- vLLM TP: the text attention heads divisible by TP (``vllm/config/model.py:1367``); the KV heads divisible
  by TP, or TP by them (vLLM then replicates each KV head, ``vllm/model_executor/layers/linear.py:1019-1023``);
  the vision tower's heads divisible by TP (``vllm/model_executor/models/qwen2_5_vl.py:368``, the vision
  attention Qwen3-VL reuses).
- verl's Ulysses SP (SFT engine and GRPO actor): the text attention heads divisible by SP, and the KV heads by
  SP or SP by them (verl repeats KV heads; ``verl/models/transformers/monkey_patch.py:343-350``).
"""

from __future__ import annotations

from typing import Any

from recipe.srpo.checks import ConfigError


def model_heads(hf_config: Any) -> dict[str, int]:
    """``{"text heads", "text KV heads", "vision heads"}`` of a Qwen2.5-VL / Qwen3-VL config (a
    ``transformers`` config or its ``config.json`` as a dict); a count the config does not give is left out."""
    cfg = hf_config if isinstance(hf_config, dict) else hf_config.to_dict()
    text = cfg.get("text_config") or {}
    vision = cfg.get("vision_config") or {}

    def first(*values: Any) -> int | None:
        return next((int(v) for v in values if v), None)

    heads = {
        "text heads": first(text.get("num_attention_heads"), cfg.get("num_attention_heads")),
        "text KV heads": first(text.get("num_key_value_heads"), cfg.get("num_key_value_heads")),
        "vision heads": first(vision.get("num_heads")),
    }
    return {name: n for name, n in heads.items() if n}


def _kv_fits(kv: int, size: int) -> bool:
    return kv % size == 0 or size % kv == 0


def check_tp_heads(tp: int, heads: dict[str, int], knob: str = "actor_rollout_ref.rollout.tensor_model_parallel_size") -> str:
    """vLLM's head rules for tensor parallel size ``tp``; raises :class:`ConfigError` naming the numbers."""
    for name, where in (("text heads", "vllm/config/model.py:1367"),
                        ("vision heads", "vllm/model_executor/models/qwen2_5_vl.py:368")):
        if name in heads and heads[name] % tp:
            raise ConfigError(
                f"{knob}={tp} does not divide the model's {heads[name]} {name}: vLLM shards attention heads over "
                f"the TP ranks and refuses this at start-up ({where}). Use a TP that divides {heads[name]}"
            )
    kv = heads.get("text KV heads")
    if kv and not _kv_fits(kv, tp):
        raise ConfigError(
            f"{knob}={tp} and the model's {kv} KV heads: neither divides the other, so vLLM can neither split nor "
            f"replicate them (vllm/model_executor/layers/linear.py:1019-1023)"
        )
    return f"TP {tp} divides " + ", ".join(f"{n} {name}" for name, n in heads.items()) + (
        f" (each KV head on {tp // kv} ranks)" if kv and tp > kv else "")


def check_sp_heads(sp: int, heads: dict[str, int], knob: str) -> str:
    """verl's Ulysses rules for sequence parallel size ``sp``; raises :class:`ConfigError` naming the numbers."""
    if sp == 1:
        return f"{knob}=1 (no Ulysses SP)"
    n = heads.get("text heads")
    if n and n % sp:
        raise ConfigError(
            f"{knob}={sp} does not divide the model's {n} text attention heads: Ulysses gives each SP rank "
            f"heads/SP heads and verl asserts it (verl/models/transformers/monkey_patch.py:343). Use an SP that divides {n}"
        )
    kv = heads.get("text KV heads")
    if kv and not _kv_fits(kv, sp):
        raise ConfigError(
            f"{knob}={sp} and the model's {kv} KV heads: neither divides the other, so verl cannot split or repeat "
            f"them (verl/models/transformers/monkey_patch.py:346)"
        )
    return f"{knob}={sp} divides {n} text heads" + (f", {kv} KV heads" if kv else "")


#: A model this narrow is a tiny stand-in (the CPU runs' test models), not the model a GPU layout is for
#: (examples/cpu_train_setup.sh uses the same bound).
TINY_HIDDEN = 1024


def _hidden(cfg: dict) -> int:
    return int((cfg.get("text_config") or {}).get("hidden_size") or cfg.get("hidden_size") or 0)


def check_layout_heads(report: Any, check: str, hf_config: Any, tp: int | None, sp: dict[str, int]) -> None:
    """One line: TP (if given) and every Ulysses size of ``sp`` against the model's heads.

    A layout the model's heads do not admit fails, except on a tiny stand-in (text width <= TINY_HIDDEN, as in
    ``examples/cpu_dry_run.sh``, whose 2-head model stands in for a 40-head one): then it is a NOTE with the
    numbers, since the real model's config.json, given as MODEL_PATH, is what decides.
    """
    cfg = hf_config if isinstance(hf_config, dict) else hf_config.to_dict()
    heads = model_heads(cfg)
    if not heads:
        report.note(check, "the model config names no attention heads: TP/SP against heads not checked")
        return
    try:
        lines = [check_tp_heads(tp, heads)] if tp else []
        lines += [check_sp_heads(size, heads, knob) for knob, size in sp.items()]
    except ConfigError as exc:
        if _hidden(cfg) > TINY_HIDDEN:
            raise
        report.note(check, f"{exc} [a tiny stand-in (hidden size {_hidden(cfg)}): run the dry run with the real "
                           "model as MODEL_PATH to check its heads]")
        return
    report.ok(check, "; ".join(lines))
