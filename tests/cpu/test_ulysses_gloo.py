"""verl's Ulysses attention for Qwen2.5-VL on 2 gloo ranks with the CPU platform's SDPA stand-ins equals
attention over the whole sequence (what SFT_SP=2 under CPU_TRAIN=1 runs), and attending within each rank's
slice, which is what SDPA attention without verl's all-to-all computes (Qwen3-VL's path on a CPU), does not."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch

SEQ, HEADS, DIM = 12, 2, 8


def _full_inputs() -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, SEQ, HEADS, DIM, generator=gen) for _ in range(3))
    # two packed sequences (positions restart at 0), as verl's unpadded micro batches carry them
    pos = torch.cat([torch.arange(7), torch.arange(SEQ - 7)]).unsqueeze(0)
    return q, k, v, pos


def _reference(q, k, v, pos) -> torch.Tensor:
    starts = (pos[0] == 0).nonzero().flatten().tolist() + [SEQ]
    out = []
    for a, b in zip(starts[:-1], starts[1:]):
        qs, ks, vs = (t[0, a:b].double().transpose(0, 1) for t in (q, k, v))
        scores = qs @ ks.transpose(-1, -2) / math.sqrt(DIM)
        scores = scores.masked_fill(torch.ones_like(scores, dtype=torch.bool).triu(1), float("-inf"))
        out.append((scores.softmax(-1) @ vs).transpose(0, 1))
    return torch.cat(out).unsqueeze(0)


def _rank(rank: int, world: int, store: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    from verl.models.transformers import qwen2_vl
    from verl.utils.ulysses import set_ulysses_sequence_parallel_group

    from srpo_verl_plugins.cpu.sdpa_attention import sdpa_for_flash_attention

    sdpa_for_flash_attention(qwen2_vl)
    q, k, v, pos = _full_inputs()
    part = slice(rank * SEQ // world, (rank + 1) * SEQ // world)
    local = [t[:, part].contiguous() for t in (q, k, v)]
    set_ulysses_sequence_parallel_group(dist.group.WORLD)
    ulysses = qwen2_vl._custom_flash_attention_forward(*local, None, query_length=SEQ // world,
                                                       position_ids=pos[:, part].contiguous())
    set_ulysses_sequence_parallel_group(None)
    # attention within this rank's slice only (no all-to-all), one causal sequence per slice: what SDPA
    # attention computes on the sliced inputs when nothing gathers the sequence
    alone = qwen2_vl._custom_flash_attention_forward(*local, None, query_length=SEQ // world,
                                                     position_ids=torch.arange(SEQ // world).unsqueeze(0))
    torch.save({"ulysses": ulysses, "alone": alone}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ulysses_over_two_gloo_ranks_is_whole_sequence_attention(tmp_path: Path):
    import torch.multiprocessing as mp

    mp.spawn(_rank, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    parts = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    want = _reference(*_full_inputs())
    got = torch.cat([p["ulysses"] for p in parts], dim=1)
    torch.testing.assert_close(got.double(), want, atol=2e-2, rtol=2e-2)  # bf16, as verl casts for flash-attn
    # rank 1's first token (position 6 of the first packed sequence) would attend to itself alone
    assert (parts[1]["alone"].double() - want[:, SEQ // 2:]).abs().max() > 0.1
