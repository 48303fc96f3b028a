"""The one artefact cache: reuse only what provably belongs to the key; everything else is a warning and a recompute."""

import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from lens_bias.cache import cached, canonical, key_sha256, record_path, remove_stale_staging


class Counter:
    """A compute that writes ``text`` to a file (or a folder of two files) and counts its calls."""

    def __init__(self, text: str = "value", folder: bool = False) -> None:
        self.text, self.folder, self.calls = text, folder, 0

    def __call__(self, staging: Path) -> None:
        self.calls += 1
        if self.folder:
            (staging / "sub").mkdir(parents=True)
            (staging / "a.txt").write_text(self.text)
            (staging / "sub" / "b.txt").write_text(self.text * 2)
        else:
            staging.write_text(self.text)


def read(path: Path) -> str:
    return (path / "a.txt").read_text() if path.is_dir() else path.read_text()


class _strict:
    """Any warning inside the block is an error."""

    def __enter__(self):
        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


@pytest.mark.parametrize("folder", [False, True])
def test_computed_once_then_reused(tmp_path, folder):
    compute = Counter(folder=folder)
    first = cached(tmp_path / "art", {"model": "m", "seed": 0}, compute, read)
    with _strict():
        second = cached(tmp_path / "art", {"seed": 0, "model": "m"}, compute, read)  # key order does not matter
    assert (first.value, first.reused, second.value, second.reused, compute.calls) == ("value", False, "value", True, 1)
    record = json.loads(record_path(tmp_path / "art").read_text())
    assert record["key"] == {"model": "m", "seed": 0}
    assert sorted(record["files"]) == (["a.txt", "sub/b.txt"] if folder else [""])
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_another_key_warns_names_the_difference_and_recomputes(tmp_path):
    cached(tmp_path / "art", {"model": "m", "seed": 0}, Counter("old"), read)
    compute = Counter("new")
    with pytest.warns(UserWarning, match=r"another configuration \(it differs in seed\)"):
        again = cached(tmp_path / "art", {"model": "m", "seed": 1}, compute, read)
    assert (again.value, again.reused, compute.calls) == ("new", False, 1)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p.write_text("valuE"), "SHA-256 mismatch"),  # same size, one byte flipped
        (lambda p: p.write_text("val"), "has 3 bytes, 5 were written"),
        (lambda p: p.unlink(), "No such file"),
        (lambda p: record_path(p).write_text("{not json"), "record .* is unreadable"),
        (lambda p: record_path(p).unlink(), "no record: an interrupted write"),
    ],
)
@pytest.mark.fault
def test_damage_is_a_warning_and_a_recompute(tmp_path, damage, reason):
    cached(tmp_path / "art", {"k": 1}, Counter(), read)
    damage(tmp_path / "art")
    compute = Counter()
    with pytest.warns(UserWarning, match=reason):
        again = cached(tmp_path / "art", {"k": 1}, compute, read)
    assert (again.value, again.reused, compute.calls) == ("value", False, 1)
    with _strict():
        assert cached(tmp_path / "art", {"k": 1}, compute, read).reused


@pytest.mark.fault
def test_a_file_that_does_not_load_is_recomputed(tmp_path):
    cached(tmp_path / "art", {"k": 1}, Counter("not a number"), read)
    compute = Counter("42")
    with pytest.warns(UserWarning, match="unreadable \\(ValueError"):
        again = cached(tmp_path / "art", {"k": 1}, compute, lambda p: int(read(p)))
    # the damaged artefact belonged to the key, so it was recomputed: the new one loads
    assert (again.value, compute.calls) == (42, 1)


def test_verify_false_checks_sizes_only(tmp_path):
    cached(tmp_path / "art", {"k": 1}, Counter(), read)
    (tmp_path / "art").write_text("valuE")
    with _strict():
        assert cached(tmp_path / "art", {"k": 1}, Counter(), read, verify=False).value == "valuE"


@pytest.mark.fault
def test_a_failing_compute_leaves_the_previous_artefact_and_no_staging(tmp_path):
    cached(tmp_path / "art", {"k": 1}, Counter("old", folder=True), read)

    def fails(staging: Path) -> None:
        staging.mkdir()
        (staging / "a.txt").write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), pytest.warns(UserWarning, match="another configuration"):
        cached(tmp_path / "art", {"k": 2}, fails, read)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art", "art.cache.json"]
    with _strict():
        assert cached(tmp_path / "art", {"k": 1}, Counter(), read).value == "old"


def test_a_compute_that_writes_nothing_is_a_bug(tmp_path):
    with pytest.raises(RuntimeError, match="wrote nothing"):
        cached(tmp_path / "art", {"k": 1}, lambda staging: None, read)


@pytest.mark.fault
def test_staging_of_a_killed_process_is_removed_next_time(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    stale = tmp_path / f".art.{host}.{int(dead.stdout)}.tmp"
    stale.mkdir()
    (stale / "weights").write_bytes(b"x" * 100)
    live = tmp_path / f".art.{host}.{os.getpid()}.tmp"  # a live process's (this one's): left alone
    live.write_text("")
    other_host = tmp_path / ".art.elsewhere.1.tmp"
    other_host.write_text("")
    assert remove_stale_staging(tmp_path / "art") == [stale]
    assert not stale.exists() and other_host.exists() and live.exists()
    live.unlink()
    stale.mkdir()
    cached(tmp_path / "art", {"k": 1}, Counter(), read)
    assert not stale.exists()


def test_keys_are_canonical():
    assert key_sha256({"a": (1, 2), "b": {"y": 1, "x": 2}}) == key_sha256({"b": {"x": 2, "y": 1}, "a": [1, 2]})
    assert key_sha256({"a": 1}) != key_sha256({"a": 2})
    assert canonical({"a": (1, 2)}) == {"a": [1, 2]}
