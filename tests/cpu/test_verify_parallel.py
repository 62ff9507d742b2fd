"""recipe.srpo.cpu.verify_run's claims of a parallel layout (GPUS_PER_NODE=2, ROLLOUT_TP=2), each on hand-made
artifacts in verl's formats (2-rank FSDP2 checkpoints of DTensor shards, vLLM TP dumps, step logs): the claim
passes, then the artifact is broken and the claim FAILs; at world size 1 it is SKIP, never PASS."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from recipe.srpo.cpu import verify_run as vr

LANG = "model.language_model.layers.0.mlp.down_proj.weight"
VIS = "model.visual.blocks.0.attn.proj.weight"


def save_fsdp_checkpoint(folder: Path, state: dict[str, torch.Tensor], world: int = 2, replicate: bool = False) -> Path:
    """``state`` as verl's FSDP2 checkpoint of ``world`` ranks: model/optim/extra_state files, the model's DTensors
    split along dim 0 (``replicate``: every rank holds the whole tensor, as a replica would)."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import DTensor, Replicate, Shard
    from torch.testing._internal.distributed.fake_pg import FakeStore

    folder.mkdir(parents=True, exist_ok=True)
    for rank in range(world):
        dist.init_process_group("fake", store=FakeStore(), rank=rank, world_size=world)
        try:
            mesh = init_device_mesh("cpu", (world,))
            shards = {name: DTensor.from_local(t.clone() if replicate else t.chunk(world)[rank].clone(), mesh,
                                               [Replicate() if replicate else Shard(0)], run_check=False)
                      for name, t in state.items()}
            torch.save(shards, folder / f"model_world_size_{world}_rank_{rank}.pt")
        finally:
            dist.destroy_process_group()
        for kind in ("optim", "extra_state"):
            torch.save({}, folder / f"{kind}_world_size_{world}_rank_{rank}.pt")
    return folder


def model_state(seed: float = 0.0) -> dict[str, torch.Tensor]:
    return {LANG: torch.arange(8.0).reshape(4, 2) + seed, VIS: torch.arange(12.0).reshape(6, 2)}


def test_world_size_1_claims_are_skip_with_the_reason_never_pass(tmp_path):
    checks = [vr.shard_files_check("grpo", {}, 1), vr.sharded_check("grpo", None, 10, 1),
              vr.per_rank_changes_check(None, None, 1), vr.batch_split_check({}, 1)]
    for check in checks:
        assert check.skipped and check.line().startswith("[SKIP] ") and "world size 1" in check.detail
    assert not vr.Check("x", True, "d").skipped and vr.Check("x", True, "d").line().startswith("[PASS]")


def test_shard_files_check_wants_every_ranks_files(tmp_path):
    ckpt = save_fsdp_checkpoint(tmp_path / "global_step_1/actor", model_state())
    ckpts = vr.step_checkpoints(tmp_path, "actor")
    assert list(ckpts) == [1]
    assert vr.shard_files_check("grpo", ckpts, 2).ok
    assert not vr.shard_files_check("grpo", ckpts, 4).ok  # a 2-rank checkpoint where 4 ranks were asked for
    (ckpt / "optim_world_size_2_rank_1.pt").unlink()
    check = vr.shard_files_check("grpo", ckpts, 2)
    assert not check.ok and "optim_world_size_2_rank_1.pt" in check.detail


def test_sharded_check_refuses_replicas(tmp_path):
    state = model_state()
    numel = sum(t.numel() for t in state.values())
    good = save_fsdp_checkpoint(tmp_path / "shard", state)
    check = vr.sharded_check("grpo", good, numel, 2)
    assert check.ok, check.detail
    assert "rank 0 10 + rank 1 10 = 20 parameters" in check.detail
    assert not vr.sharded_check("grpo", good, numel + 4, 2).ok  # the shards do not add up to the model
    replica = save_fsdp_checkpoint(tmp_path / "replica", state, replicate=True)
    check = vr.sharded_check("grpo", replica, numel, 2)
    assert not check.ok and "not sharded" in check.detail


def test_load_checkpoint_joins_the_shards(tmp_path):
    state = model_state()
    full = vr.load_checkpoint(save_fsdp_checkpoint(tmp_path / "c", state))
    assert all(torch.equal(full[k], v) for k, v in state.items())


def test_per_rank_changes_check_every_rank(tmp_path):
    before = save_fsdp_checkpoint(tmp_path / "s1", model_state())
    after = save_fsdp_checkpoint(tmp_path / "s2", model_state(seed=1.0))
    check = vr.per_rank_changes_check(before, after, 2)
    assert check.ok, check.detail
    half = model_state()
    half[LANG] = torch.cat([half[LANG][:2] + 1, half[LANG][2:]])  # only rank 0's shard of the language model moved
    check = vr.per_rank_changes_check(before, save_fsdp_checkpoint(tmp_path / "s3", half), 2)
    assert not check.ok and "rank 1: language 0/1" in check.detail
    moved = model_state(seed=1.0)
    moved[VIS] = torch.cat([moved[VIS][:3], moved[VIS][3:] + 1])  # rank 1's vision shard moved
    assert not vr.per_rank_changes_check(before, save_fsdp_checkpoint(tmp_path / "s4", moved), 2).ok


# A text layer as vLLM shards it at TP 2: 2 heads of 2 (q: 4 rows), 1 KV head (k, v: 2 rows each, replicated).
Q, K, V = (f"model.language_model.layers.0.self_attn.{p}_proj.weight" for p in "qkv")
O = "model.language_model.layers.0.self_attn.o_proj.weight"
HEAD = "lm_head.weight"


def tp_actor() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {Q: torch.randn(4, 4, generator=g), K: torch.randn(2, 4, generator=g), V: torch.randn(2, 4, generator=g),
            O: torch.randn(4, 4, generator=g), HEAD: torch.randn(6, 4, generator=g),
            "model.visual.blocks.0.attn.qkv.weight": torch.randn(12, 4, generator=g)}


def tp_dump(actor: dict[str, torch.Tensor], rank: int) -> dict[str, torch.Tensor]:
    """What vLLM's TP rank ``rank`` of 2 holds: q split, the one KV head replicated, o_proj split on its input,
    the vocabulary (6) split 4 + 4 with 2 padding rows, the vision qkv split piece by piece."""
    bf = torch.bfloat16
    head = torch.cat([actor[HEAD], torch.zeros(2, 4)])[rank * 4:(rank + 1) * 4]
    vis = actor["model.visual.blocks.0.attn.qkv.weight"].chunk(3)
    return {
        "language_model.model.layers.0.self_attn.qkv_proj.weight":
            torch.cat([actor[Q][rank * 2:(rank + 1) * 2], actor[K], actor[V]]).to(bf),
        "language_model.model.layers.0.self_attn.o_proj.weight": actor[O][:, rank * 2:(rank + 1) * 2].to(bf),
        "language_model.lm_head.weight": head.to(bf),
        "visual.blocks.0.attn.qkv.weight": torch.cat([p[rank * 2:(rank + 1) * 2] for p in vis]).to(bf),
    }


def test_tp_shards_compare_to_the_actor(tmp_path):
    actor = tp_actor()
    for rank in (0, 1):
        equal, compared, problems = vr.compare_vllm_to_actor(tp_dump(actor, rank), actor, rank, 2)
        assert (equal, compared) == (4, 4), problems
    assert vr.match_tp_rank(tp_dump(actor, 1), actor, 2)[0] == 1
    # rank 1's shard is not rank 0's
    assert vr.compare_vllm_to_actor(tp_dump(actor, 1), actor, 0, 2)[0] < 4


def test_sync_check_wants_every_tp_shard_in_sync(tmp_path):
    from safetensors.torch import save_file

    sync, grpo = tmp_path / "sync", tmp_path / "grpo"
    sync.mkdir()
    actors = {step: {k: v + step for k, v in tp_actor().items()} for step in (0, 1)}
    save_fsdp_checkpoint(grpo / "global_step_1/actor", actors[1])
    for pid, rank in ((100, 0), (101, 1)):
        for n in (0, 1):
            save_file(tp_dump(actors[n], rank), str(sync / f"sync-{pid}-{n:03d}.safetensors"))
    check = vr.sync_check(sync, grpo, ranks=2, tp=2)
    assert check.ok, check.detail
    assert "TP rank 0 4/4 parameters equal, TP rank 1 4/4 parameters equal" in check.detail
    # TP rank 1's sync after step 1 did not take: it still holds the starting policy's shard
    save_file(tp_dump(actors[0], 1), str(sync / "sync-101-001.safetensors"))
    assert not vr.sync_check(sync, grpo, ranks=2, tp=2).ok
    # both workers hold rank 0's shard: rank 1's half of the model is not in any engine
    save_file(tp_dump(actors[1], 0), str(sync / "sync-101-001.safetensors"))
    check = vr.sync_check(sync, grpo, ranks=2, tp=2)
    assert not check.ok and "TP shards held {0: 2}" in check.detail


def steps_log(total=(4365.0, 4365.0), mean=(2182.5, 2182.5), responses=(8.0, 8.0), prefilter=(8.0, 64.0)):
    return {i + 1: {"perf/total_num_tokens": t, "global_seqlen/mean": m, "global_seqlen/min": m - 10,
                    "training/srpo/responses": r, "training/srpo/prefilter/responses": p}
            for i, (t, m, r, p) in enumerate(zip(total, mean, responses, prefilter))}


def test_batch_checks():
    steps = steps_log()
    assert vr.batch_check(steps, 2, 4).ok
    assert not vr.batch_check(steps_log(responses=(8.0, 4.0)), 2, 4).ok  # a step trained on half the batch
    assert vr.batch_split_check(steps, 2).ok
    check = vr.batch_split_check(steps_log(mean=(4365.0, 4365.0)), 2)  # one rank got the whole batch
    assert not check.ok and "1 x 4365" in check.detail
    assert not vr.batch_split_check(steps_log(responses=(8.0, 7.0)), 2).ok  # responses do not divide over 2 ranks


def test_srpo_count_check_counts_each_response_once():
    steps = list(steps_log().values())
    assert vr.srpo_count_check(steps, 72).ok
    check = vr.srpo_count_check(steps, 36)  # every rank's responses counted twice: 72 for 36 scored
    assert not check.ok and "sum 72" in check.detail
    assert not vr.srpo_count_check([{}], 8).ok  # no count logged


def test_resume_source_check_every_rank_its_own_shard():
    line = "(WorkerDict pid=1) INFO:x:[Rank {r}] Loaded model from /w/grpo/global_step_{s}/actor/model_world_size_2_rank_{f}.pt\n"
    good = line.format(r=0, s=2, f=0) + line.format(r=1, s=2, f=1)
    assert vr.resume_source_check(good, 2, 2).ok
    assert not vr.resume_source_check(line.format(r=0, s=2, f=0) + line.format(r=1, s=2, f=0), 2, 2).ok
    assert not vr.resume_source_check(good, 3, 2).ok  # not the first run's last checkpoint
    assert not vr.resume_source_check(line.format(r=0, s=2, f=0), 2, 2).ok  # rank 1 loaded nothing


def test_merge_check_wants_the_joined_shards(tmp_path):
    from safetensors.torch import save_file

    state = model_state()
    ckpt = save_fsdp_checkpoint(tmp_path / "global_step_1/actor", state)
    merged = tmp_path / "merged"
    merged.mkdir()
    save_file({k: v.to(torch.bfloat16) for k, v in state.items()}, str(merged / "model.safetensors"))
    check = vr.merge_check("grpo", ckpt, merged)
    assert check.ok and "merge of the 2-rank checkpoint" in check.name, check.detail
    save_file({k: v[:2].to(torch.bfloat16) for k, v in state.items()}, str(merged / "model.safetensors"))  # rank 0's only
    assert not vr.merge_check("grpo", ckpt, merged).ok


def test_read_layout_defaults_to_one_process(tmp_path):
    assert vr.read_layout(tmp_path) == {"nnodes": 1, "gpus_per_node": 1, "rollout_tp": 1, "sft_sp": 1}
    (tmp_path / "layout.json").write_text('{"gpus_per_node": 2, "rollout_tp": 2}')
    assert vr.read_layout(tmp_path)["gpus_per_node"] == 2


@pytest.mark.parametrize("skipped", [0, 2])
def test_main_summary_counts_skips_apart(monkeypatch, capsys, skipped):
    checks = [vr.Check("a", True, "d")] + [vr.skip(f"s{i}", "world size 1") for i in range(skipped)]
    monkeypatch.setattr(vr, "verify", lambda *a, **k: checks)
    assert vr.main(["--workspace", "x"]) == 0
    out = capsys.readouterr().out
    assert "cpu_train: 1/1 checks passed" in out and (("2 skipped" in out) == bool(skipped))
    assert out.count("[SKIP]") == skipped
