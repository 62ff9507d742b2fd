"""recipe.srpo.cpu.verify_run's readers and comparisons, on small hand-made artifacts."""

from __future__ import annotations

import json
import math

import torch

from recipe.srpo.cpu import verify_run as vr
from recipe.srpo.cpu.toy_reward import compute_score as toy_score
from recipe.srpo.cpu.toy_reward import toy_accuracy


def test_parse_step_lines_reads_verls_console_format():
    text = (
        "\x1b[36m(SRPOTaskRunner pid=1)\x1b[0m step:1 - actor/grad_norm:0.5 - num_turns/min:np.int32(2) - "
        "training/srpo/fix_rate:nan - training/filter_groups/evicted_samples:8.0\n"
        "noise line\n"
        "step:2 - train/loss:6.5\n"
    )
    steps = vr.parse_step_lines(text)
    assert sorted(steps) == [1, 2]
    assert steps[1]["actor/grad_norm"] == 0.5 and steps[1]["num_turns/min"] == 2.0
    assert math.isnan(steps[1]["training/srpo/fix_rate"])
    assert steps[1]["training/filter_groups/evicted_samples"] == 8.0 and steps[2]["train/loss"] == 6.5


def test_weight_changes_split_language_and_vision_in_both_layouts():
    before = {"model.layers.0.w": torch.zeros(2), "visual.blocks.0.w": torch.zeros(2), "lm_head.weight": torch.zeros(2)}
    after = {"model.language_model.layers.0.w": torch.ones(2), "model.visual.blocks.0.w": torch.zeros(2),
             "lm_head.weight": torch.zeros(2)}
    assert vr.weight_changes(before, after) == {"language": (1, 2), "vision": (0, 1)}
    check = vr._changes_check("x", before, after)
    assert check.ok
    after["model.visual.blocks.0.w"] = torch.ones(2)
    assert not vr._changes_check("x", before, after).ok  # a vision tensor moved


def test_compare_vllm_to_actor_unfuses_and_casts():
    q, k, v = torch.randn(4, 2), torch.randn(2, 2), torch.randn(2, 2)
    actor = {
        "model.language_model.layers.0.self_attn.q_proj.weight": q,
        "model.language_model.layers.0.self_attn.k_proj.weight": k,
        "model.language_model.layers.0.self_attn.v_proj.weight": v,
        "model.visual.blocks.0.attn.qkv.weight": torch.randn(6, 2),
        "lm_head.weight": torch.randn(5, 2),
    }
    vllm = {
        "language_model.model.layers.0.self_attn.qkv_proj.weight": torch.cat([q, k, v]).to(torch.bfloat16),
        "visual.blocks.0.attn.qkv.weight": actor["model.visual.blocks.0.attn.qkv.weight"].to(torch.bfloat16),
        "language_model.lm_head.weight": actor["lm_head.weight"].to(torch.bfloat16),
    }
    assert vr.compare_vllm_to_actor(vllm, actor)[:2] == (3, 3)
    stale = dict(vllm, **{"language_model.lm_head.weight": (actor["lm_head.weight"] + 1).to(torch.bfloat16)})
    equal, compared, problems = vr.compare_vllm_to_actor(stale, actor)
    assert (equal, compared) == (2, 3) and "lm_head" in problems[0]
    _, _, unknown = vr.compare_vllm_to_actor({"language_model.model.extra": torch.zeros(1)}, actor)
    assert unknown == ["language_model.model.extra: no actor tensor"]


def test_evictions_expected_counts_groups_without_spread():
    log = [{"index": 0, "acc": 1.0}] * 4 + [{"index": 1, "acc": a} for a in (1.0, 0.0, 1.0, 1.0)]
    log += [{"index": 3, "acc": 0.0}] * 4
    assert vr.evictions_expected(log, group_size=4) == (3, 2)


def test_sync_check_matches_dumps_to_checkpoints(tmp_path):
    from safetensors.torch import save_file

    sync, grpo = tmp_path / "sync", tmp_path / "grpo"
    sync.mkdir()
    for step, value in ((1, 1.0), (2, 2.0)):
        ckpt = grpo / f"global_step_{step}" / "actor"
        ckpt.mkdir(parents=True)
        torch.save({"lm_head.weight": torch.full((2, 2), value)}, ckpt / "model_world_size_1_rank_0.pt")
    for n, value in enumerate((0.0, 1.0, 2.0)):
        save_file({"language_model.lm_head.weight": torch.full((2, 2), value).to(torch.bfloat16)},
                  str(sync / f"sync-100-{n:03d}.safetensors"))
    check = vr.sync_check(sync, grpo)
    assert check.ok, check.detail
    save_file({"language_model.lm_head.weight": torch.full((2, 2), 1.0).to(torch.bfloat16)},
              str(sync / "sync-100-002.safetensors"))  # the sync after step 2 did not take
    assert not vr.sync_check(sync, grpo).ok


def test_toy_reward_keeps_srpo_keys_and_logs(tmp_path, monkeypatch):
    from srpo_reward import SCORE_KEYS

    log = tmp_path / "toy.jsonl"
    monkeypatch.setenv("SRPO_TOY_REWARD_LOG", str(log))
    even = toy_score("geometry3k", "no format here", "2", {"index": 4})
    assert set(SCORE_KEYS) <= set(even) and even["acc"] == 1.0 == even["toy_acc"] and even["score"] == 1.0
    odd = [toy_score("geometry3k", f"response {i}", "2", {"index": 5})["acc"] for i in range(16)]
    assert set(odd) == {0.0, 1.0}
    assert odd == [toy_accuracy(5, f"response {i}") for i in range(16)]
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 17 and records[0]["index"] == 4
