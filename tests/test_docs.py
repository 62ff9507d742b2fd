"""The README and docs/ stay true: every relative link and anchor resolves, every ``python -m MODULE``
they name answers ``--help``.

Anchors follow GitHub's heading slugs (lower case; punctuation other than ``-`` and ``_`` dropped;
spaces become ``-``; a repeated slug gets ``-1``, ``-2``, ...), which is how the links are read on
the project page.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

_LINK_RE = re.compile(r"(?<!\\)\[(?:[^\]\\]|\\.)*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE_RE = re.compile(r"^(```|~~~)")
_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MODULE_RE = re.compile(r"python3? -m ([A-Za-z_][\w.]*)")
#: Modules named in the docs that are not the project's command lines (tools the docs show being run).
NOT_OURS = {"pytest", "pip", "venv", "torch.distributed.run", "verl.model_merger", "srpo_reward._grader_worker"}


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (links and headings in code are not links or headings)."""
    out, fenced = [], False
    for line in text.splitlines():
        if _FENCE_RE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for line in _prose_lines(path.read_text()):
        m = _HEADING_RE.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    out = []
    for line in _prose_lines(path.read_text()):
        line = re.sub(r"`[^`]*`", "", line)  # inline code is not a link
        out += _LINK_RE.findall(line)
    return out


def broken_links(path: Path) -> list[str]:
    bad = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not checked (no network here)
            continue
        file_part, _, anchor = target.partition("#")
        dest = path if not file_part else (path.parent / unquote(file_part)).resolve()
        if not dest.exists():
            bad.append(f"{target}: {dest} does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    return bad


def test_slugs_follow_github():
    assert slug("## `srpo_reward`: the reward".lstrip("# ")) == "srpo_reward-the-reward"
    assert slug("What runs here, and what needs a GPU") == "what-runs-here-and-what-needs-a-gpu"
    assert slug("1. Benchmarks to verl parquet") == "1-benchmarks-to-verl-parquet"
    assert slug("Resuming, failures, Ctrl-C") == "resuming-failures-ctrl-c"


def test_the_checker_finds_a_broken_link_and_anchor(tmp_path):
    (tmp_path / "b.md").write_text("# Here it is\n")
    page = tmp_path / "a.md"
    page.write_text(
        "# Top\n[ok](b.md#here-it-is) [self](#top) [gone](c.md) [bad anchor](b.md#nowhere)\n"
        "```\n[in code](nowhere.md)\n```\n`[inline](nowhere.md)` [web](https://example.org/x)\n"
    )
    bad = broken_links(page)
    assert len(bad) == 2, bad
    assert "c.md" in bad[0] and "#nowhere" in bad[1]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_anchors_resolve(path):
    assert broken_links(path) == []


def named_modules() -> list[str]:
    mods = set()
    for path in DOCS:
        mods.update(_MODULE_RE.findall(path.read_text()))
    return sorted(m for m in mods if m not in NOT_OURS and not m.startswith("MODULE"))


def test_the_docs_name_modules():
    assert {"srpo_data.prepare_rl", "srpo_eval.report"} <= set(named_modules())


@pytest.mark.parametrize("module", named_modules())
def test_named_module_answers_help(module):
    proc = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT), "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, f"python -m {module} --help exited {proc.returncode}:\n{proc.stderr[-2000:]}"
    out = proc.stdout.lower()
    assert "usage" in out or "powered by hydra" in out, proc.stdout[:500]  # argparse, or a Hydra entry point
