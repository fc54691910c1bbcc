"""Folders published whole: absent or complete, never half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.folders import publish_folder


def test_writes_once_then_returns_the_folder(tmp_path: Path) -> None:
    calls: list[Path] = []

    def write(scratch: Path) -> None:
        calls.append(scratch)
        (scratch / "a.txt").write_text("a")

    target = tmp_path / "cache" / "set"
    assert publish_folder(target, write) == target
    assert publish_folder(target, write) == target
    assert len(calls) == 1
    assert (target / "a.txt").read_text() == "a"
    assert sorted(p.name for p in target.parent.iterdir()) == ["set"]  # no scratch left


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    def write(scratch: Path) -> None:
        (scratch / "half.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        publish_folder(tmp_path / "set", write)
    assert list(tmp_path.iterdir()) == []


def test_a_concurrent_winner_is_returned(tmp_path: Path) -> None:
    target = tmp_path / "set"

    def write(scratch: Path) -> None:
        (scratch / "mine.txt").write_text("mine")
        target.mkdir()  # another process published it meanwhile
        (target / "theirs.txt").write_text("theirs")

    assert publish_folder(target, write) == target
    assert [p.name for p in target.iterdir()] == ["theirs.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["set"]
