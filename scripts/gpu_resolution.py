"""pip's resolution of the GPU stack (``scripts/setup.sh --gpu``), written to or checked against
``scripts/gpu_resolution.txt``; nothing is installed (``pip install --dry-run``).

    .venv/bin/python scripts/gpu_resolution.py --write    # after changing a pin in pyproject.toml
    .venv/bin/python scripts/gpu_resolution.py --check    # exit 1 when today's resolution differs

The resolved requirement is the project with its ``test`` and ``gpu`` extras, as setup.sh --gpu
installs it (``pip install --dry-run --ignore-installed --report OUT.json ".[test,gpu]"``), for
this interpreter's Python and platform.  flash-attn (the ``gpu-flash-attn`` extra) is not part of
it: it is an sdist whose build imports torch and CUDA, so pip cannot even read its metadata here;
setup.sh --gpu installs it in a second step, and the file records its pin on a comment line.
tests/test_gpu_resolution.py checks the file against pyproject.toml offline, and compares it
with a fresh dry run when PyPI can be reached.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
RESOLUTION = ROOT / "scripts" / "gpu_resolution.txt"
#: What setup.sh --gpu installs in its first step (its second is the flash-attn extra).
EXTRAS = ("test", "gpu")
FLASH_ATTN_EXTRA = "gpu-flash-attn"
PROJECT = "srpo"


def _toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _expand(extras: dict[str, list[str]], name: str, seen: tuple[str, ...] = ()) -> list[str]:
    """An extra's requirements, with the project's own extras it names (``srpo[recipe]``) spelt out."""
    out: list[str] = []
    for text in extras.get(name, []):
        head = text.split(";")[0].strip()
        m = re.fullmatch(rf"{PROJECT}\s*\[([^\]]+)\]", head)
        if m is None:
            out.append(text)
            continue
        for inner in (x.strip() for x in m.group(1).split(",")):
            if inner not in seen:
                out.extend(_expand(extras, inner, (*seen, name)))
    return out


def requirements(pyproject: Path = PYPROJECT) -> dict[str, list[str]]:
    """The requirement lists that decide the GPU resolution: dependencies and the extras involved (and
    the CPU stack's, ``cpu``, for comparing both), each with the project's own extras it names spelt out."""
    project = _toml(pyproject)["project"]
    extras = project.get("optional-dependencies", {})
    out = {"dependencies": list(project["dependencies"])}
    for name in (*EXTRAS, FLASH_ATTN_EXTRA, "cpu"):
        out[name] = _expand(extras, name)
    return out


def inputs_fingerprint(pyproject: Path = PYPROJECT) -> str:
    """A hash of :func:`requirements`: it changes whenever a pin that the resolution depends on does."""
    reqs = {k: sorted(v) for k, v in requirements(pyproject).items() if k != "cpu"}
    return hashlib.sha256(json.dumps(reqs, sort_keys=True).encode()).hexdigest()[:16]


def environment() -> str:
    return f"python {sys.version_info.major}.{sys.version_info.minor} {sys.platform} {platform.machine()}"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def resolve(project_dir: Path = ROOT, python: str = sys.executable, timeout: float = 900) -> dict[str, str]:
    """``{name: version}`` of everything pip would install for ``.[test,gpu]`` (a dry run)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        spec = f"{project_dir}[{','.join(EXTRAS)}]"
        cmd = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--no-input",
               "--report", str(report), spec]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"pip's dry run failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
        data = json.loads(report.read_text(encoding="utf-8"))
    got = {canonical(i["metadata"]["name"]): i["metadata"]["version"] for i in data["install"]}
    got.pop(PROJECT, None)
    return dict(sorted(got.items()))


def flash_attn_pin(pyproject: Path = PYPROJECT) -> str:
    (pin,) = requirements(pyproject)[FLASH_ATTN_EXTRA]
    return pin


def render(resolved: dict[str, str], pyproject: Path = PYPROJECT) -> str:
    head = [
        "# pip's resolution of the GPU stack, scripts/setup.sh --gpu step 1: the project's test and gpu extras",
        '# (pip install --dry-run --ignore-installed --report OUT.json ".[test,gpu]"), nothing installed.',
        "# Made by: .venv/bin/python scripts/gpu_resolution.py --write   (compare today's: --check)",
        "# with pip's global constraint of this machine (torch<=2.14.1), which leaves torch 2.11.0 alone.",
        f"# environment: {environment()}",
        f"# inputs: {inputs_fingerprint(pyproject)}   (hash of pyproject's dependencies and test/gpu/gpu-flash-attn extras)",
        f"# step 2, not resolvable by a dry run (its sdist build imports torch and CUDA): {flash_attn_pin(pyproject)}",
    ]
    return "\n".join(head + [f"{k}=={v}" for k, v in resolved.items()]) + "\n"


def read(path: Path = RESOLUTION) -> tuple[dict[str, str], dict[str, str]]:
    """``(header fields, {name: version})`` of a resolution file."""
    fields: dict[str, str] = {}
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# ") and ": " in line:
            key, _, value = line[2:].partition(": ")
            fields[key.strip()] = value.split("   (")[0].strip()
        elif line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[canonical(name)] = version
    return fields, pins


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help=f"write {RESOLUTION.relative_to(ROOT)}")
    mode.add_argument("--check", action="store_true", help="exit 1 when a fresh dry run differs from the file")
    args = p.parse_args(argv)
    resolved = resolve()
    if args.write:
        RESOLUTION.write_text(render(resolved), encoding="utf-8")
        print(f"{len(resolved)} packages -> {RESOLUTION}")
        return 0
    _, pinned = read()
    diff = {k: (pinned.get(k), resolved.get(k)) for k in sorted(set(pinned) | set(resolved)) if pinned.get(k) != resolved.get(k)}
    for name, (old, new) in diff.items():
        print(f"{name}: file {old}, today {new}")
    print(f"{len(diff)} of {len(resolved)} packages differ")
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
