"""A Ray cluster of several nodes on one machine, started as users start one on a GPU cluster.

``NNODES=2 bash examples/cpu_train.sh`` runs GRPO on it: ``ray start --head`` for node 0, then
``ray start --address=HEAD:PORT`` for every other node, each with the flags a second Ray node on the
same host needs (its own ``--temp-dir`` and ports) and its "GPU" slots (the CPU platform's Ray
resource, CPU_TRAINING.md point 5)::

    python -m recipe.srpo.cpu.ray_cluster start --dir DIR --nodes 2 --gpus-per-node 1
    eval "$(python -m recipe.srpo.cpu.ray_cluster env --dir DIR)"   # RAY_ADDRESS and the auth token
    python -m recipe.srpo.cpu.ray_cluster nodes --dir DIR --out nodes.json
    python -m recipe.srpo.cpu.ray_cluster stop --dir DIR

Ray 2.60's token authentication: a ``ray start --head`` enables it whenever a token is available (the
``RAY_AUTH_TOKEN`` / ``RAY_AUTH_TOKEN_PATH`` variables or ``~/.ray/auth_token``, which any local
``ray.init()`` writes), but a joining ``ray start --address`` and a driver's ``ray.init(address=...)``
only use one with ``RAY_AUTH_MODE=token`` (``ray/scripts/scripts.py:1069`` vs ``:1236``,
``ray/_private/worker.py:1973-1977``); without it the join fails with ``InvalidAuthToken``.  So every
command here runs with ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN_PATH=DIR/auth_token``, a token
generated for this cluster: nothing reads or writes ``~/.ray``.

``stop`` ends only this cluster's processes (those whose command line names its node folders or the
head's port, and their children), never another Ray on the machine (``ray stop`` would end them all).
The nodes' temp dirs live under a short ``/tmp/srpo-ray-*`` folder while the cluster runs (Ray's socket
paths must fit in 107 bytes), linked as ``DIR/node<i>``; ``stop`` moves them into ``DIR`` (their logs show
which node ran which worker).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
#: Ports after the head's own: 0 client server, 1 dashboard, then per node i: agent listen 10+i,
#: agent gRPC 20+i, metrics 30+i, runtime-env agent 40+i, workers 100+200i .. 299+200i.
PORT_SPAN = 100 + 200 * 8


def ray_env(cluster_dir: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every Ray command of this cluster (nodes and driver) runs with.

    Ray's memory monitor is off (``RAY_memory_monitor_refresh_ms=0``, the switch Ray's own OOM message
    names): every node of a one-machine cluster reads the whole machine's memory, so each counts the
    others' workers (and any other job on the machine) as its own pressure.  Measured: with the monitor on,
    both raylets killed verl's workers at GRPO step 2 ("2 Workers ... killed due to memory pressure", with
    other jobs on the machine), and the run then waited on the killed rollouts without end.
    """
    env = dict(os.environ if environ is None else environ)
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(cluster_dir / "auth_token"))
    env.setdefault("RAY_memory_monitor_refresh_ms", "0")
    env.pop("RAY_AUTH_TOKEN", None)  # the file is the one source of the token
    return env


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_base_port(nodes: int, start: int = 20000, stop: int = 60000) -> int:
    """A head port whose whole block of ports (:data:`PORT_SPAN`) is free for ``nodes`` nodes."""
    rng = secrets.SystemRandom()
    for _ in range(200):
        base = rng.randrange(start, stop - PORT_SPAN, 10)
        if all(_free(p) for p in (base, base + 1, base + 2, *node_ports(base, nodes - 1).values())):
            return base
    raise RuntimeError(f"no free block of {PORT_SPAN} ports between {start} and {stop} on {HOST}")


def node_ports(base: int, i: int) -> dict[str, int]:
    return {
        "--dashboard-agent-listen-port": base + 10 + i,
        "--dashboard-agent-grpc-port": base + 20 + i,
        "--metrics-export-port": base + 30 + i,
        "--runtime-env-agent-port": base + 40 + i,
        "--min-worker-port": base + 100 + 200 * i,
        "--max-worker-port": base + 299 + 200 * i,
    }


def start_commands(ray: str, cluster_dir: Path, base: int, nodes: int, gpus: int, cpus: int) -> list[list[str]]:
    """The ``ray start`` command of each node: the head, then ``nodes - 1`` joining nodes."""
    if nodes < 1 or nodes > 8:
        raise ValueError(f"--nodes {nodes}: between 1 and 8 nodes on one machine")
    cmds = []
    for i in range(nodes):
        role = (["--head", "--port", str(base), "--ray-client-server-port", str(base + 1),
                 "--dashboard-port", str(base + 2), "--include-dashboard", "false"] if i == 0
                else ["--address", f"{HOST}:{base}"])
        ports = [str(x) for kv in node_ports(base, i).items() for x in kv]
        cmds.append([ray, "start", *role, "--node-ip-address", HOST, "--temp-dir", str(node_dir(cluster_dir, i)),
                     "--num-cpus", str(cpus), "--num-gpus", str(gpus), *ports, "--disable-usage-stats"])
    return cmds


def alive_nodes(cluster_dir: Path, timeout: float = 60.0) -> list[dict]:
    """``ray.nodes()`` of this cluster, read by a driver in a fresh process (given up after ``timeout``)."""
    code = (
        "import json, sys, ray\n"
        "ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
        "print('NODES ' + json.dumps([{k: n[k] for k in ('NodeID', 'Alive', 'NodeManagerAddress', 'Resources')} "
        "for n in ray.nodes()]))\n"
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code, address(cluster_dir)], env=ray_env(cluster_dir),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"no answer from the Ray cluster at {address(cluster_dir)} in {timeout:.0f} s") from exc
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("NODES ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"cannot read the nodes of the Ray cluster at {address(cluster_dir)}: "
                           f"{(proc.stderr or proc.stdout)[-2000:]}")
    return [n for n in json.loads(lines[-1][len("NODES "):]) if n["Alive"]]


def node_dir(cluster_dir: Path, i: int) -> Path:
    """Node i's Ray temp dir: under the short root while the cluster runs, in ``cluster_dir`` after stop."""
    root = cluster_dir / "temp_root"
    return Path(root.read_text().strip()) / f"node{i}" if root.is_file() else cluster_dir / f"node{i}"


def address(cluster_dir: Path) -> str:
    path = cluster_dir / "address"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no Ray cluster was started in {cluster_dir}")
    return path.read_text().strip()


def start(cluster_dir: Path, nodes: int, gpus: int, cpus: int, ray: str) -> str:
    cluster_dir = cluster_dir.resolve()
    if (cluster_dir / "address").exists():
        raise FileExistsError(f"{cluster_dir} already holds a cluster ({cluster_dir / 'address'}); stop it first")
    cluster_dir.mkdir(parents=True, exist_ok=True)
    token = cluster_dir / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    base = pick_base_port(nodes)
    short = Path(tempfile.mkdtemp(prefix="srpo-ray-", dir="/tmp"))
    (cluster_dir / "temp_root").write_text(f"{short}\n")
    for i in range(nodes):
        node_dir(cluster_dir, i).mkdir()
        (cluster_dir / f"node{i}").symlink_to(node_dir(cluster_dir, i))
    (cluster_dir / "address").write_text(f"{HOST}:{base}\n")
    env = ray_env(cluster_dir)
    for i, cmd in enumerate(start_commands(ray, cluster_dir, base, nodes, gpus, cpus)):
        print(f"[ray_cluster] node {i}: RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH={token} {' '.join(cmd)}",
              file=sys.stderr, flush=True)
        with open(cluster_dir / f"node{i}.log", "w") as log:
            # its own session: a signal to the caller's process group (Ctrl-C, a killed run) must not take the
            # nodes down half-way; stop() ends them, and the trap of the caller calls it
            proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=300,
                                  start_new_session=True)
        if proc.returncode:
            stop(cluster_dir)
            raise RuntimeError(f"ray start of node {i} failed (exit {proc.returncode}): "
                               f"{(cluster_dir / f'node{i}.log').read_text()[-2000:]}")
    deadline = time.monotonic() + 120
    while True:
        seen = alive_nodes(cluster_dir)
        if len(seen) == nodes:
            break
        if time.monotonic() > deadline:
            stop(cluster_dir)
            raise RuntimeError(f"{len(seen)} of {nodes} Ray nodes alive after 120 s")
        time.sleep(2)
    print(f"[ray_cluster] {nodes} nodes up at {HOST}:{base}: "
          + ", ".join(f"{n['NodeID'][:12]} ({n['Resources'].get('GPU', 0):g} GPU)" for n in seen), file=sys.stderr)
    return f"{HOST}:{base}"


def cluster_processes(cluster_dir: Path) -> list:
    """This cluster's processes: command line names its folder or head port, plus their descendants."""
    import psutil

    cluster_dir = cluster_dir.resolve()
    marks = [f"{cluster_dir}/"]
    if (cluster_dir / "temp_root").is_file():
        marks.append(f"{(cluster_dir / 'temp_root').read_text().strip()}/")
    try:
        marks.append(address(cluster_dir))
    except FileNotFoundError:
        pass
    me = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    found: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if proc.pid in me or not any(m in cmdline for m in marks):
            continue
        try:
            family = [proc, *proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        found.update({p.pid: p for p in family if p.pid not in me})
    return list(found.values())


def stop(cluster_dir: Path, timeout: float = 15.0) -> int:
    """End this cluster's processes (SIGTERM, then SIGKILL after ``timeout``); return how many there were."""
    import psutil

    procs = cluster_processes(cluster_dir)
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    root = cluster_dir / "temp_root"
    if root.is_file():
        short = Path(root.read_text().strip())
        for link in sorted(cluster_dir.glob("node*")):
            if link.is_symlink():
                link.unlink()
                if (short / link.name).is_dir():
                    shutil.move(str(short / link.name), str(link))
        shutil.rmtree(short, ignore_errors=True)
        root.unlink()
    (cluster_dir / "address").unlink(missing_ok=True)
    print(f"[ray_cluster] stopped {len(procs)} processes of {cluster_dir} ({len(alive)} needed SIGKILL)",
          file=sys.stderr)
    return len(procs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recipe.srpo.cpu.ray_cluster", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_start = sub.add_parser("start", help="ray start --head, then ray start --address for each other node")
    p_start.add_argument("--nodes", type=int, default=2)
    p_start.add_argument("--gpus-per-node", type=int, default=1, help="declared 'GPU' slots per node")
    p_start.add_argument("--cpus-per-node", type=int, default=16, help="logical CPU slots per node")
    p_start.add_argument("--ray", default=str(Path(sys.executable).with_name("ray")), help="the ray CLI")
    sub.add_parser("env", help="print the shell exports a driver needs (RAY_ADDRESS, the auth token)")
    p_nodes = sub.add_parser("nodes", help="write the alive nodes (ray.nodes()) as JSON")
    p_nodes.add_argument("--out", type=Path, required=True)
    sub.add_parser("stop", help="end this cluster's processes (only these)")
    for p in (p_start, *sub.choices.values()):
        if not any(a.dest == "dir" for a in p._actions):
            p.add_argument("--dir", type=Path, required=True, help="the cluster's folder (token, node temp dirs)")
    args = parser.parse_args(argv)
    cluster_dir = args.dir.resolve()
    if args.cmd == "start":
        print(start(cluster_dir, args.nodes, args.gpus_per_node, args.cpus_per_node, args.ray))
    elif args.cmd == "env":
        env = ray_env(cluster_dir, {})
        print(f"export RAY_ADDRESS={address(cluster_dir)} RAY_AUTH_MODE={env['RAY_AUTH_MODE']} "
              f"RAY_AUTH_TOKEN_PATH={env['RAY_AUTH_TOKEN_PATH']}")
    elif args.cmd == "nodes":
        args.out.write_text(json.dumps(alive_nodes(cluster_dir), indent=1) + "\n")
        print(args.out)
    else:
        stop(cluster_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
