"""The two-node Ray cluster on one machine (recipe/srpo/cpu/ray_cluster.py) that NNODES=2 CPU runs use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from recipe.srpo.cpu import ray_cluster as rc


def test_each_node_gets_its_own_temp_dir_and_ports(tmp_path):
    cmds = rc.start_commands("ray", tmp_path, 30000, 3, gpus=1, cpus=16)
    assert cmds[0][:3] == ["ray", "start", "--head"] and "--port" in cmds[0]
    assert all(c[2:4] == ["--address", "127.0.0.1:30000"] for c in cmds[1:])
    for flag in ("--temp-dir", "--dashboard-agent-listen-port", "--metrics-export-port", "--min-worker-port"):
        values = [c[c.index(flag) + 1] for c in cmds]
        assert len(set(values)) == 3, (flag, values)
    assert all(c[c.index("--num-gpus") + 1] == "1" for c in cmds)
    lows = [int(c[c.index("--min-worker-port") + 1]) for c in cmds]
    highs = [int(c[c.index("--max-worker-port") + 1]) for c in cmds]
    assert all(h < lo for h, lo in zip(highs, lows[1:])), "worker port ranges overlap"
    with pytest.raises(ValueError):
        rc.start_commands("ray", tmp_path, 30000, 0, gpus=1, cpus=16)


def test_every_command_carries_the_clusters_token(tmp_path):
    env = rc.ray_env(tmp_path, {"RAY_AUTH_TOKEN": "someone-elses", "PATH": "/bin"})
    assert env["RAY_AUTH_MODE"] == "token"
    assert env["RAY_AUTH_TOKEN_PATH"] == str(tmp_path / "auth_token")
    assert "RAY_AUTH_TOKEN" not in env and env["PATH"] == "/bin"


@pytest.mark.slow
def test_two_nodes_join_only_with_the_token_and_stop_leaves_nothing(tmp_path):
    """A real cluster: the head and a joining node (both alive, one GPU slot each); a node that joins
    without RAY_AUTH_MODE=token is refused (Ray 2.60's InvalidAuthToken); stop ends every process."""
    cluster = tmp_path / "ray"
    try:
        addr = rc.start(cluster, nodes=2, gpus=1, cpus=4, ray=str(Path(sys.executable).with_name("ray")))
        nodes = rc.alive_nodes(cluster)
        assert len({n["NodeID"] for n in nodes}) == 2
        assert all(n["Resources"].get("GPU") == 1.0 for n in nodes)
        # what docs/recipe.md warns of: the join without the auth mode fails
        base = int(addr.rsplit(":", 1)[1])
        cmd = rc.start_commands(str(Path(sys.executable).with_name("ray")), cluster, base, 3, 1, 4)[2]
        env = {k: v for k, v in rc.ray_env(cluster).items() if not k.startswith("RAY_AUTH")}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode != 0
        assert "InvalidAuthToken" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-2000:]
        assert len(rc.alive_nodes(cluster)) == 2
    finally:
        rc.stop(cluster)
    assert rc.cluster_processes(cluster) == []
