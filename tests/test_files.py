"""Atomic writes: a file is replaced only once complete; an interrupt leaves the old file and no temporary file."""

from __future__ import annotations

import os

import pytest

from lens_bias.files import atomic_path, write_text_atomic


def test_a_clean_exit_replaces_the_file_and_creates_the_folder(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target and not target.exists()
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert write_text_atomic(target, "again") == target and target.read_text() == "again"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


@pytest.mark.parametrize("interrupt", [RuntimeError, KeyboardInterrupt])
def test_an_interrupt_midway_leaves_the_old_file_and_no_temporary_file(tmp_path, interrupt):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(interrupt), atomic_path(target) as tmp:
        tmp.write_text("half wri")
        raise interrupt()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    with pytest.raises(interrupt), atomic_path(tmp_path / "never.txt") as tmp:
        tmp.write_text("half")
        raise interrupt()
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_the_file_gets_the_permissions_open_would_give(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "a") as tmp:
            tmp.write_text("x")
        (tmp_path / "b").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == (tmp_path / "b").stat().st_mode & 0o777 == 0o640
