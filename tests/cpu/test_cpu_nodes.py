"""examples/cpu_nodes.sh: the SFT stage of NNODES=2 as one launch per node (NODE_RANK 0 and 1, one
MASTER_PORT); the first node that fails ends the others and the stage fails with its exit status."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# a stand-in for the run script: records its node's variables; node 1 exits FAIL, node 0 sleeps SLEEP0
FAKE_SCRIPT = """echo "node ${NODE_RANK} of ${NNODES} ${MASTER_ADDR}:${MASTER_PORT} STAGES=${STAGES} pid $$" >> "$RECORD"
if [[ ${NODE_RANK} == 1 ]]; then
    until grep -q "^node 0 " "$RECORD" 2>/dev/null; do sleep 0.1; done  # node 0 is up
    exit "${FAIL:-0}"
fi
sleep "${SLEEP0:-0}"
"""


def run_nodes(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    (tmp_path / "logs").mkdir()
    (tmp_path / "fake.sh").write_text(FAKE_SCRIPT)
    driver = (f'set -euo pipefail; WORKSPACE={tmp_path}; PYTHON={sys.executable}; say() {{ echo "$*" >&2; }}; '
              f'source {ROOT}/examples/cpu_nodes.sh; cpu_nodes_sft {tmp_path}/fake.sh')
    start = time.monotonic()
    proc = subprocess.run(["bash", "-c", driver], env={"PATH": "/usr/bin:/bin", "NNODES": "2",
                          "RECORD": str(tmp_path / "record.txt"), **env}, capture_output=True, text=True, timeout=120)
    return proc, time.monotonic() - start


def test_every_node_is_launched_with_its_rank_and_one_port(tmp_path):
    proc, _ = run_nodes(tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = sorted((tmp_path / "record.txt").read_text().splitlines())
    assert [ln.split()[1] for ln in lines] == ["0", "1"]
    assert len({ln.split()[4] for ln in lines}) == 1 and lines[0].split()[4].startswith("127.0.0.1:")
    assert all("STAGES=sft" in ln for ln in lines)


def test_a_failing_node_ends_the_others_and_the_stage(tmp_path):
    proc, _ = run_nodes(tmp_path, FAIL="3", SLEEP0="300")
    assert proc.returncode == 3
    assert "sft: node 1 failed (exit 3); ending the other nodes" in proc.stderr
    pid0 = next(ln.split()[-1] for ln in (tmp_path / "record.txt").read_text().splitlines() if ln.split()[1] == "0")
    assert not Path(f"/proc/{pid0}").exists() or "zombie" in Path(f"/proc/{pid0}/status").read_text().lower()
