"""verify_run's NNODES=2 claim (workers ran on all nodes) on hand-made artifacts of a two-node run, each
way of breaking it seen to FAIL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recipe.srpo.cpu.verify_run import nodes_check

IDS = ["a" * 56, "b" * 56]
ACTORS = [["WorkerDict", "vLLMHttpServer", "RewardLoopWorker"], ["WorkerDict", "vLLMHttpServer", "SRPOTaskRunner"]]


def two_node_run(ws: Path, ids=IDS, actors=ACTORS, listed=IDS) -> Path:
    """The files a two-node cpu_train.sh run leaves: Ray's node list, each node's temp dir, each SFT node's log."""
    (ws / "logs").mkdir(parents=True)
    (ws / "logs/ray_nodes.json").write_text(json.dumps([{"NodeID": i, "Alive": True} for i in listed]))
    for n, (node_id, names) in enumerate(zip(ids, actors)):
        logs = ws / f"ray/node{n}/session_2026-12-07_13-24-11_1_2/logs"
        logs.mkdir(parents=True)
        (logs / "raylet.out").write_text(f"[...] Raylet started. node_id={node_id} ...\n")
        for k, name in enumerate(names):
            (logs / f"worker-{k:056x}-02000000-{100 + k}.out").write_text(f":job_id:02000000\n:actor_name:{name}\nlog\n")
        (ws / f"ray/node{n}/session_latest").symlink_to(logs.parent)  # Ray's link: not counted twice
        log = ws / "logs" / ("sft.log" if n == 0 else f"sft_node{n}.log")
        log.write_text(f"[srpo] sft: python -m torch.distributed.run --nnodes=2 --nproc_per_node=1 --node_rank={n} "
                       "--master_addr=127.0.0.1 --master_port=29500 -m verl.trainer.sft_trainer\n")
    return ws


def test_a_two_node_run_passes(tmp_path):
    check = nodes_check(two_node_run(tmp_path), 2)
    assert check.ok and not check.skipped, check.line()
    assert "node0 aaaaaaaaaaaa: WorkerDict x1, vLLMHttpServer x1" in check.detail
    assert "node1 bbbbbbbbbbbb: WorkerDict x1" in check.detail


def test_one_node_is_a_skip_not_a_pass(tmp_path):
    assert nodes_check(tmp_path, 1).skipped


@pytest.mark.parametrize("broken, problem", [
    pytest.param({"actors": [ACTORS[0], ["SRPOTaskRunner"]]}, "ray/node1: no WorkerDict or vLLMHttpServer worker",
                 id="node1-trained-nothing"),
    pytest.param({"listed": IDS[:1]}, "1 alive nodes listed, need 2", id="one-node-cluster"),
    pytest.param({"ids": [IDS[0], "c" * 56]}, "ray/node1: node cccccccccccc is not one of the cluster's nodes",
                 id="node-of-another-cluster"),
])
def test_each_break_fails(tmp_path, broken, problem):
    check = nodes_check(two_node_run(tmp_path, **broken), 2)
    assert not check.ok and problem in check.detail, check.line()


def test_an_sft_node_that_did_not_launch_fails(tmp_path):
    ws = two_node_run(tmp_path)
    (ws / "logs/sft_node1.log").unlink()
    check = nodes_check(ws, 2)
    assert not check.ok and "sft_node1.log: no torchrun --nnodes=2 --node_rank=1" in check.detail
