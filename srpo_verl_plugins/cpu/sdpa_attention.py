"""PyTorch SDPA in place of flash-attn for verl's Qwen2-VL/Qwen2.5-VL attention, so Ulysses SP runs on a CPU.

verl's Ulysses sequence parallel needs ``model.use_remove_padding=true``
(``verl/workers/engine/fsdp/transformer_impl.py:148-152`` raises otherwise).  With it (or with SP > 1)
verl replaces Qwen2-VL's and Qwen2.5-VL's attention by ``qwen2_vl_attn_forward``
(``verl/models/transformers/monkey_patch.py:407-411``), which does the Ulysses all-to-all around
``_custom_flash_attention_forward`` (``verl/models/transformers/qwen2_vl.py:182-265``).  That function
calls flash-attn's ``flash_attn_varlen_func`` (packed sequences, ``qwen2_vl.py:233``) or transformers'
``_flash_attention_forward`` (one sequence, ``:248``), and reads ``_flash_use_top_left_mask``,
``_flash_supports_window_size`` and ``_flash_supports_deterministic``, which ``qwen2_vl.py:45-50`` only
defines when flash-attn is installed.  Without flash-attn (every CPU machine) the first SFT step with
``engine.ulysses_sequence_parallel_size=2`` dies with ``NameError: name '_flash_use_top_left_mask' is not
defined`` (measured, ``qwen2_vl.py:331``).

:func:`sdpa_for_flash_attention` puts the same attention, computed by
``torch.nn.functional.scaled_dot_product_attention`` one sequence at a time, into those names of that
module (only where flash-attn is absent).  The all-to-alls stay verl's (gloo runs ``all_to_all``).
Qwen3-VL is not covered: verl's Ulysses for it replaces only transformers' flash-attention integration
(``monkey_patch.py:544-552``), which SDPA attention never calls, so with SDPA its SP ranks would attend
within their own slice of the sequence (examples/cpu_train_setup.sh refuses that layout).
"""

from __future__ import annotations

from typing import Any

QWEN2_VL_MODULE = "verl.models.transformers.qwen2_vl"
_FLAG = "_srpo_cpu_sdpa"


def _attend(q: Any, k: Any, v: Any, causal: bool, scale: float | None, dropout: float) -> Any:
    """SDPA of one sequence; q, k, v as flash-attn lays them out: (seq, heads, head_dim)."""
    import torch.nn.functional as F

    if causal and q.shape[0] != k.shape[0]:
        raise NotImplementedError(
            f"causal attention with {q.shape[0]} queries and {k.shape[0]} keys: flash-attn aligns the mask "
            "bottom-right, SDPA top-left; verl's SFT and actor passes never ask for it"
        )
    out = F.scaled_dot_product_attention(
        q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1),
        dropout_p=dropout, is_causal=causal, scale=scale, enable_gqa=q.shape[1] != k.shape[1],
    )
    return out.transpose(0, 1)


def _refuse_unsupported(kwargs: dict[str, Any]) -> None:
    window = kwargs.pop("window_size", None)
    if window not in (None, (-1, -1)):
        raise NotImplementedError(f"sliding-window attention (window_size={window}) has no SDPA stand-in here")
    if kwargs.pop("softcap", None) is not None:
        raise NotImplementedError("attention logit softcap has no SDPA stand-in here")
    kwargs.pop("deterministic", None)  # SDPA on a CPU is deterministic


def varlen_attention(
    q: Any, k: Any, v: Any, cu_seqlens_q: Any, cu_seqlens_k: Any, max_seqlen_q: int, max_seqlen_k: int,
    dropout_p: float = 0.0, softmax_scale: float | None = None, causal: bool = False, **kwargs: Any,
) -> Any:
    """flash-attn's ``flash_attn_varlen_func`` with SDPA: packed (total, heads, head_dim) tensors."""
    import torch

    _refuse_unsupported(kwargs)
    if len(cu_seqlens_q) != len(cu_seqlens_k):
        raise ValueError(f"{len(cu_seqlens_q) - 1} query sequences but {len(cu_seqlens_k) - 1} key sequences")
    bounds_q, bounds_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    outs = [
        _attend(q[bounds_q[i]:bounds_q[i + 1]], k[bounds_k[i]:bounds_k[i + 1]], v[bounds_k[i]:bounds_k[i + 1]],
                causal, softmax_scale, dropout_p)
        for i in range(len(bounds_q) - 1)
    ]
    return torch.cat(outs, dim=0)


def padded_attention(
    query_states: Any, key_states: Any, value_states: Any, attention_mask: Any, query_length: int,
    is_causal: bool = True, dropout: float = 0.0, position_ids: Any = None, softmax_scale: float | None = None,
    sliding_window: int | None = None, use_top_left_mask: bool = False, **kwargs: Any,
) -> Any:
    """transformers' ``_flash_attention_forward`` with SDPA: (batch, seq, heads, head_dim), an optional
    (batch, seq) padding mask (padded positions come out as zeros, as flash-attn's unpad/pad leaves them)."""
    import torch

    if sliding_window is not None:
        raise NotImplementedError(f"sliding-window attention ({sliding_window}) has no SDPA stand-in here")
    for key in ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k", "target_dtype",
                "attn_implementation"):
        kwargs.pop(key, None)
    _refuse_unsupported(kwargs)
    outs = []
    for b in range(query_states.shape[0]):
        q, k, v = query_states[b], key_states[b], value_states[b]
        if attention_mask is None:
            outs.append(_attend(q, k, v, is_causal, softmax_scale, dropout))
            continue
        keep = attention_mask[b].bool()
        out = torch.zeros_like(q)
        out[keep] = _attend(q[keep], k[keep], v[keep], is_causal, softmax_scale, dropout)
        outs.append(out)
    return torch.stack(outs, dim=0)


def sdpa_for_flash_attention(module: Any) -> bool:
    """Give verl's Qwen2-VL attention module SDPA stand-ins for the flash-attn names it uses.

    Only names flash-attn would have defined are set (an installed flash-attn is left alone); returns
    whether anything changed.
    """
    if getattr(module, _FLAG, False) or hasattr(module, "flash_attn_varlen_func"):
        return False
    module.flash_attn_varlen_func = varlen_attention
    module._flash_attention_forward = padded_attention
    module._flash_use_top_left_mask = False
    module._flash_supports_window_size = False
    module._flash_supports_deterministic = False
    setattr(module, _FLAG, True)
    return True
