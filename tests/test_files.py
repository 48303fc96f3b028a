"""Atomic writes: a file is replaced only once complete; an interrupt leaves the old file and no temporary file."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys

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


@pytest.mark.fault
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


@pytest.mark.fault
def test_the_file_gets_the_permissions_open_would_give(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_path(tmp_path / "a") as tmp:
            tmp.write_text("x")
        (tmp_path / "b").write_text("x")
    finally:
        os.umask(old)
    assert (tmp_path / "a").stat().st_mode & 0o777 == (tmp_path / "b").stat().st_mode & 0o777 == 0o640


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


@pytest.mark.fault
def test_a_temporary_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    host = socket.gethostname()
    stale = tmp_path / f".out.json.{host}.{_dead_pid()}.tmp"  # what a SIGKILL mid-write leaves
    stale.write_bytes(b"x" * 1000)
    live = tmp_path / f".out.json.{host}.{os.getppid()}.tmp"  # a running process's: left alone
    other_host = tmp_path / f".out.json.elsewhere.{_dead_pid()}.tmp"
    live.write_text("")
    other_host.write_text("")
    with atomic_path(tmp_path / "out.json") as tmp:
        assert tmp.name == f".out.json.{host}.{os.getpid()}.tmp"
        tmp.write_text("{}")
    assert not stale.exists() and other_host.exists() and live.exists()


@pytest.mark.fault
def test_a_full_disk_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "result.json"
    target.write_text("old")
    with pytest.raises(OSError) as raised, atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert raised.value.errno == errno.ENOSPC
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["result.json"]
