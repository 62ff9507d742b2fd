"""The durable JSONL step store: torn tails, duplicate keys, reopen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srpo_data.stage1.builder.store import JsonlStore


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"", id="clean-file"),
        pytest.param(b'{"key": "c", "content": "half', id="torn-last-line"),
        # The newline is written with the record: a record without it was never acted on.
        pytest.param(b'{"key": "c"}', id="complete-json-without-newline-is-still-cut"),
        pytest.param(b"\xff\xfe garbage", id="binary-garbage-tail"),
    ],
)
def test_reopen_drops_a_torn_tail_and_appends_cleanly(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "steps.jsonl"
    path.write_bytes(b'{"key": "a", "v": 1}\n{"key": "b", "v": 2}\n' + tail)
    store = JsonlStore(path)
    assert sorted(store.records) == ["a", "b"]
    store.append({"key": "d", "v": 4})
    store.close()
    again = JsonlStore(path)
    assert sorted(again.records) == ["a", "b", "d"]
    assert all(json.loads(line)["key"] for line in _lines(path))
    again.close()


def test_first_record_of_a_key_wins_and_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"
    store = JsonlStore(path, keep="first")
    store.append({"key": "k", "v": 1})
    store.append({"key": "k", "v": 2})
    store.close()
    assert len(_lines(path)) == 1
    assert JsonlStore(path).get("k") == {"key": "k", "v": 1}


def test_failure_log_keeps_the_last_record(tmp_path: Path) -> None:
    path = tmp_path / "failures.jsonl"
    log = JsonlStore(path, keep="last")
    log.append({"key": "k", "reason": "http_500"})
    log.append({"key": "k", "reason": "timeout"})
    log.close()
    assert len(_lines(path)) == 2
    assert JsonlStore(path, keep="last").get("k")["reason"] == "timeout"  # type: ignore[index]


def test_bad_keep_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keep"):
        JsonlStore(tmp_path / "x.jsonl", keep="newest")


def _rec(key: str, content: str = "x") -> dict[str, object]:
    return {"key": key, "content": content, "finish_reason": "stop", "role": "policy"}


def test_indexed_store_reads_records_from_disk_and_survives_a_stale_index(tmp_path: Path) -> None:
    from srpo_data.stage1.builder.store import IndexedJsonlStore

    path = tmp_path / "steps.jsonl"
    store = IndexedJsonlStore(path)
    store.append(_rec("a", "first"))
    store.append(_rec("a", "second"))  # the first record of a key wins
    store.append(_rec("b"))
    store.close()
    assert len(_lines(path)) == 2
    # lines written by a run killed after its fsync but before the index update are found
    with path.open("ab") as fh:
        fh.write((json.dumps(_rec("c")) + "\n").encode())
        fh.write(b'{"key": "torn"')  # and a torn tail is cut
    again = IndexedJsonlStore(path)
    assert again.get("a")["content"] == "first" and "c" in again and "torn" not in again  # type: ignore[index]
    assert len(again) == 3 and again.torn_bytes > 0
    again.close()
    # a file replaced behind the index's back: the index is rebuilt from the file
    path.write_text(json.dumps(_rec("z")) + "\n")
    fresh = IndexedJsonlStore(path)
    assert "z" in fresh and "a" not in fresh and len(fresh) == 1
    fresh.close()
