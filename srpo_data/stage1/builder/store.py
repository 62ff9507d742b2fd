"""Append-only JSONL store of finished steps, durable line by line.

Every record is one JSON line with a ``key`` (a stable hash of sample, step and endpoint
configuration, see :func:`srpo_data.stage1.builder.pipeline.step_key`).  A line is written with one
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


def _open_append_only(path: Path) -> int:
    """Make ``path`` ready for appending: its folder exists, the file exists, and a torn last
    line (a run killed mid-write) is cut off; returns the number of bytes cut."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.touch()
        return 0
    return _truncate_torn_tail(path)


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
        #: Records ignored at load because ``valid`` refused them (their step is called again).
        self.invalid = 0
        self._lock = threading.Lock()
        self.torn_bytes = _open_append_only(path)
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


class IndexedJsonlStore:
    """The step store at scale: the same append-only, fsynced ``steps.jsonl``, but the records
    stay on disk.  An SQLite index beside it (``steps.jsonl.index.sqlite``: key -> byte offset
    and length) answers lookups, so memory does not grow with the number of samples.

    The JSONL file is the truth and the index can always be rebuilt from it: it records how
    many bytes of the file it covers, lines past that point (a run killed after its last
    fsync) are indexed when the store is opened, and an index that does not match the file
    (the file was truncated or replaced) is rebuilt.  ``valid`` refuses records at indexing
    time (their step is called again); a key that appears twice keeps its first record.
    """

    def __init__(self, path: Path, valid: Callable[[dict[str, Any]], bool] | None = None):
        import sqlite3

        self.path = path
        self.valid = valid
        self.invalid = 0
        self._lock = threading.Lock()
        self.torn_bytes = _open_append_only(path)
        self.index_path = path.with_name(path.name + ".index.sqlite")
        self._db = sqlite3.connect(self.index_path, check_same_thread=False, isolation_level=None)
        # The index is rebuildable from the JSONL file: no fsync of its own is needed.
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS idx (key TEXT PRIMARY KEY, off INTEGER NOT NULL, len INTEGER NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
        self._rfd = os.open(path, os.O_RDONLY)
        self._catch_up()
        self._fh = path.open("ab")
        self._size = path.stat().st_size
        self._count = self._db.execute("SELECT COUNT(*) FROM idx").fetchone()[0]

    def _indexed_bytes(self) -> int:
        row = self._db.execute("SELECT v FROM meta WHERE k='bytes'").fetchone()
        return int(row[0]) if row else 0

    def _index_matches_file(self, indexed: int, size: int) -> bool:
        if indexed > size:
            return False
        row = self._db.execute("SELECT key, off, len FROM idx ORDER BY off DESC LIMIT 1").fetchone()
        if row is None:
            return True  # nothing indexed yet: index the file from ``indexed`` on
        rec = self._read(row[1], row[2])
        return rec is not None and rec.get("key") == row[0]

    def _catch_up(self) -> None:
        size = self.path.stat().st_size
        indexed = self._indexed_bytes()
        if not self._index_matches_file(indexed, size):
            self._db.execute("DELETE FROM idx")
            indexed = 0
        if indexed == size:
            return
        self._db.execute("BEGIN")
        with self.path.open("rb") as fh:
            fh.seek(indexed)
            off = indexed
            for raw in fh:
                n = len(raw)
                line = raw.strip()
                if line:
                    try:
                        rec = json.loads(line)
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        rec = None
                    if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                        if self.valid is not None and not self.valid(rec):
                            self.invalid += 1
                        else:
                            self._db.execute("INSERT OR IGNORE INTO idx VALUES (?, ?, ?)", (rec["key"], off, n))
                off += n
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('bytes', ?)", (off,))
        self._db.execute("COMMIT")

    def _read(self, off: int, length: int) -> dict[str, Any] | None:
        try:
            rec = json.loads(os.pread(self._rfd, length, off))
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            return None
        return rec if isinstance(rec, dict) else None

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT off, len FROM idx WHERE key=?", (key,)).fetchone()
            if row is None:
                return None
            return self._read(row[0], row[1])

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM idx WHERE key=?", (key,)).fetchone() is not None

    def __len__(self) -> int:
        return self._count

    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (blocking: call it through ``asyncio.to_thread`` from async code)."""
        key = record["key"]
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        with self._lock:
            if self._db.execute("SELECT 1 FROM idx WHERE key=?", (key,)).fetchone() is not None:
                return
            off = self._size
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._size += len(line)
            self._db.execute("INSERT INTO idx VALUES (?, ?, ?)", (key, off, len(line)))
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('bytes', ?)", (self._size,))
            self._count += 1

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()
                os.close(self._rfd)
                self._db.close()
