"""Append-only JSONL store of finished steps, durable line by line.

Every record is one JSON line with a ``key`` (a stable hash of sample, step and endpoint
configuration, see :func:`srpo_data.builder.pipeline.step_key`).  A line is written with one
``write`` of the whole line, then flushed and fsynced before :meth:`JsonlStore.append` returns,
so a record the pipeline has acted on survives SIGKILL.  A kill in the middle of a write leaves
at most one torn last line: it is dropped (and the file truncated to the last newline) when the
store is opened again.  A key that appears twice (impossible in normal runs) keeps its first
record.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


def _truncate_torn_tail(path: Path) -> int:
    """Cut a last line that has no newline (a write killed midway); returns bytes removed."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return 0
        # Walk back to the previous newline in chunks.
        pos = size
        chunk = 65536
        cut = 0
        while pos > 0:
            start = max(0, pos - chunk)
            fh.seek(start)
            data = fh.read(pos - start)
            idx = data.rfind(b"\n")
            if idx >= 0:
                cut = start + idx + 1
                break
            pos = start
        fh.truncate(cut)
        fh.flush()
        os.fsync(fh.fileno())
        return size - cut


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Records of a JSONL file; undecodable lines (a torn tail) are skipped."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        for raw in fh:
            line = raw.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(rec, dict):
                yield rec


class JsonlStore:
    """Keyed, append-only, fsync-per-record JSONL file.  Thread-safe appends.

    ``keep="first"`` (the step store) ignores a second record with a known key;
    ``keep="last"`` (the failure log) appends it and lets it replace the first in memory.
    """

    def __init__(self, path: Path, keep: str = "first", valid: Callable[[dict[str, Any]], bool] | None = None):
        if keep not in ("first", "last"):
            raise ValueError(f"keep must be 'first' or 'last', got {keep!r}")
        self.path = path
        self.keep = keep
        self.records: dict[str, dict[str, Any]] = {}
        self.torn_bytes = 0
        #: Records ignored at load because ``valid`` refused them (their step is called again).
        self.invalid = 0
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            self.torn_bytes = _truncate_torn_tail(path)
            for rec in read_jsonl(path):
                key = rec.get("key")
                if valid is not None and not valid(rec):
                    self.invalid += 1  # e.g. a reply stored by an older version without checks
                    continue
                if isinstance(key, str) and (keep == "last" or key not in self.records):
                    self.records[key] = rec
        self._fh = path.open("ab")

    def get(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (blocking: call it through ``asyncio.to_thread`` from async code)."""
        key = record["key"]
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            if self.keep == "first" and key in self.records:
                return
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.records[key] = record

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()
