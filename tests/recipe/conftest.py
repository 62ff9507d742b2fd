"""Shared fixtures of the recipe tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

_STUB = """#!/usr/bin/env bash
{ printf 'CALL'; printf '\\t%s' "$@"; printf '\\n'; } >> "$STUB_LOG"
"""


@dataclass
class RecordingPython:
    """A ``PYTHON`` stub for the run scripts: each call's arguments are recorded, nothing runs."""

    path: Path
    log: Path

    @property
    def env(self) -> dict[str, str]:
        return {"PYTHON": str(self.path), "STUB_LOG": str(self.log)}

    def calls(self) -> list[list[str]]:
        return [line.split("\t")[1:] for line in self.log.read_text().splitlines()]


@pytest.fixture
def recording_python(tmp_path) -> RecordingPython:
    stub = tmp_path / "python"
    stub.write_text(_STUB)
    stub.chmod(0o755)
    return RecordingPython(stub, tmp_path / "calls.log")
