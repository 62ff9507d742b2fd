"""The SDPA stand-ins for flash-attn that let verl's Ulysses SP run Qwen2.5-VL on a CPU
(srpo_verl_plugins/cpu/sdpa_attention.py), against attention written out by hand."""

from __future__ import annotations

import importlib
import math
import types

import pytest
import torch

from srpo_verl_plugins.cpu import sdpa_attention as sa


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + mask) v for one sequence, (seq, heads, dim), in float64."""
    q, k, v = (t.double().transpose(0, 1) for t in (q, k, v))
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        scores = scores.masked_fill(torch.ones_like(scores, dtype=torch.bool).triu(1), float("-inf"))
    return (scores.softmax(-1) @ v).transpose(0, 1)


@pytest.mark.parametrize("causal", [True, False])
def test_varlen_is_attention_within_each_packed_sequence(causal):
    torch.manual_seed(0)
    lengths = [5, 1, 7]
    total, heads, dim = sum(lengths), 2, 8
    q, k, v = (torch.randn(total, heads, dim) for _ in range(3))
    cu = torch.tensor([0, 5, 6, 13], dtype=torch.int32)
    out = sa.varlen_attention(q, k, v, cu, cu, 7, 7, causal=causal)
    want = torch.cat([reference(q[a:b], k[a:b], v[a:b], causal) for a, b in zip(cu[:-1], cu[1:])])
    torch.testing.assert_close(out.double(), want, atol=1e-5, rtol=1e-5)
    # attention across the packed boundary would change the second and third sequences
    whole = reference(q, k, v, causal)
    assert not torch.allclose(whole[5:], want[5:], atol=1e-3)


def test_padded_attention_masks_padding_and_zeroes_it():
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 6, 2, 8) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    out = sa.padded_attention(q, k, v, mask, 6, is_causal=True, deterministic=False)
    torch.testing.assert_close(out[0].double(), reference(q[0], k[0], v[0], True), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1, :4].double(), reference(q[1, :4], k[1, :4], v[1, :4], True), atol=1e-5, rtol=1e-5)
    assert out[1, 4:].abs().max() == 0
    no_mask = sa.padded_attention(q, k, v, None, 6, is_causal=True)
    torch.testing.assert_close(no_mask[1].double(), reference(q[1], k[1], v[1], True), atol=1e-5, rtol=1e-5)


def test_grouped_kv_heads_are_shared():
    torch.manual_seed(2)
    q, k, v = torch.randn(4, 2, 8), torch.randn(4, 1, 8), torch.randn(4, 1, 8)
    cu = torch.tensor([0, 4])
    out = sa.varlen_attention(q, k, v, cu, cu, 4, 4, causal=True)
    want = reference(q, k.expand(4, 2, 8), v.expand(4, 2, 8), True)
    torch.testing.assert_close(out.double(), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kwargs", [{"window_size": (4, 4)}, {"softcap": 30.0}])
def test_what_sdpa_cannot_stand_in_for_is_refused(kwargs):
    x = torch.zeros(3, 1, 4)
    cu = torch.tensor([0, 3])
    with pytest.raises(NotImplementedError):
        sa.varlen_attention(x, x, x, cu, cu, 3, 3, causal=True, **kwargs)


def test_patch_fills_the_names_verl_reads_only_without_flash_attn():
    module = types.ModuleType("fake_qwen2_vl")
    assert sa.sdpa_for_flash_attention(module) is True
    assert module.flash_attn_varlen_func is sa.varlen_attention
    assert module._flash_attention_forward is sa.padded_attention
    assert module._flash_use_top_left_mask is False
    assert sa.sdpa_for_flash_attention(module) is False  # idempotent
    with_flash = types.ModuleType("fake_with_flash_attn")
    with_flash.flash_attn_varlen_func = object()
    assert sa.sdpa_for_flash_attention(with_flash) is False
    assert not hasattr(with_flash, "_flash_attention_forward")


def test_verls_qwen2_vl_module_lacks_the_names_here():
    """The failure the patch exists for: without flash-attn verl's module never defines them."""
    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed")
    module = importlib.import_module(sa.QWEN2_VL_MODULE)
    if getattr(module, "_srpo_cpu_sdpa", False):
        pytest.skip("already patched in this process (VERL_PLATFORM=cpu)")
    assert not hasattr(module, "_flash_use_top_left_mask")
    assert not hasattr(module, "flash_attn_varlen_func")
