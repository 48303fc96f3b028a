"""The shared command line: flags from a config dataclass, --quick, validation before work, the error policy."""

from __future__ import annotations

import errno
import importlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from experiments import cli, flags, lock
from lens_bias.embedded import EMBEDDED_MODEL
from lens_bias.errors import InputError
from lens_bias.provenance import Result


@dataclass(frozen=True)
class Config(cli.RunConfig):
    layers: tuple[int, ...] = (4, 8)
    multipliers: tuple[float, ...] = (-1.0, 0.0, 1.0)
    n_pairs: int | None = field(default=None, metadata={"min": 1})
    normalize: bool = field(default=True, metadata={"flag": "--raw-norms"})
    readout: str = field(default="last", metadata={"choices": ["last", "mean_from_difference"]})
    out: Path = Path("figures/demo")
    batch_size: int = 8  # redeclared: keeps RunConfig's check


def test_flags_come_from_the_fields():
    config, replot = cli.parse(
        Config,
        ["--layers", "1", "2", "--raw-norms", "--no-png", "--n-pairs", "7", "--multipliers", "-2", "2", "--seed", "3"],
    )
    assert replot is None
    assert config.layers == (1, 2) and config.multipliers == (-2.0, 2.0) and config.n_pairs == 7
    assert config.normalize is False and config.png is False and config.seed == 3
    assert config.out == Path("figures/demo") and config.batch_size == 8


def test_quick_replaces_defaults_but_explicit_values_win():
    quick = {"n_pairs": 3, "layers": [1]}
    assert cli.parse(Config, ["--quick"], quick=quick)[0].layers == (1,)
    config, _ = cli.parse(Config, ["--quick", "--n-pairs", "5"], quick=quick)
    assert (config.n_pairs, config.layers) == (5, (1,))
    assert cli.parse(Config, [], quick=quick)[0].n_pairs is None


def test_the_config_is_plain_json():
    config, _ = cli.parse(Config, ["--device", "cpu"])
    assert config.to_dict() == {
        "model": EMBEDDED_MODEL,
        "device": "cpu",
        "dtype": None,
        "seed": 0,
        "batch_size": 8,
        "out": "figures/demo",
        "png": True,
        "layers": [4, 8],
        "multipliers": [-1.0, 0.0, 1.0],
        "n_pairs": None,
        "normalize": True,
        "readout": "last",
    }


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--n-pairs", "0"], "--n-pairs must be >= 1, got 0"),
        (["--n-pairs", "-1"], "--n-pairs must be >= 1, got -1"),
        (["--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    ],
)
def test_sizes_are_checked_before_any_work(argv, message):
    with pytest.raises(InputError, match=message):
        cli.parse(Config, argv)


def test_an_output_location_that_is_a_file_is_refused(tmp_path):
    blocker = tmp_path / "result.json"
    blocker.write_text("{}")
    for out in (blocker, blocker / "below"):
        with pytest.raises(InputError, match="is a file, not a folder"):
            cli.parse(Config, ["--out", str(out)])


def test_unknown_choice_is_a_usage_error():
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(Config, ["--readout", "middle"])
    assert exit_info.value.code == 2


def test_replot_of_another_experiments_result_is_refused(tmp_path):
    path = Result("similarity", values={}, config={}, provenance={}).save(tmp_path / "similarity")
    with pytest.raises(InputError, match=r"holds a 'similarity' result.*experiments\.similarity --replot"):
        cli.load_result(path, "steering")
    with pytest.raises(InputError, match="No saved result"):
        cli.load_result(tmp_path / "missing.json", "steering")
    (tmp_path / "junk.json").write_text('{"format": "other"}')
    with pytest.raises(InputError, match="not a saved lens_bias result"):
        cli.load_result(tmp_path / "junk.json", "steering")


def _run_policy(body: str) -> subprocess.CompletedProcess:
    code = (
        f"from experiments import cli\nfrom lens_bias.errors import InputError\ndef main():\n    {body}\ncli.run(main)"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.fault
def test_input_errors_end_in_one_line_and_exit_2():
    done = _run_policy("raise InputError('pass a folder')")
    assert done.returncode == 2
    assert done.stderr.splitlines()[0] == "error: pass a folder" and "Traceback" not in done.stderr


def test_programming_errors_keep_their_traceback():
    done = _run_policy("raise TypeError('a bug')")
    assert done.returncode == 1 and "Traceback" in done.stderr and "TypeError: a bug" in done.stderr


def test_all_means_no_limit_for_an_optional_size():
    assert cli.parse(Config, ["--n-pairs", "all"])[0].n_pairs is None
    assert cli.parse(Config, ["--n-pairs", "3"])[0].n_pairs == 3
    with pytest.raises(SystemExit):
        cli.parse(Config, ["--n-pairs", "many"])


def _tiny_main(out: Path, runs: list[str], argv: list[str] | None = None) -> Result:
    """``cli.main`` of an experiment whose run saves a result in ``--out`` (and records that it ran)."""

    def run(config: Config) -> Path:
        runs.append(str(config.out))
        assert lock.read_holder(config.out / lock.LOCK_NAME)["pid"] == os.getpid()  # held while the run works
        return Result("demo", values={}, config=config.to_dict(), provenance={}).save(config.out / "demo")

    argv = argv if argv is not None else ["--out", str(out)]
    return cli.main(Config, argv, description=None, quick=None, result_name="demo", run=run, report=lambda *a: None)


def test_a_run_holds_a_lock_on_its_output_folder_and_releases_it(tmp_path):
    runs: list[str] = []
    _tiny_main(tmp_path / "out", runs)
    assert runs == [str(tmp_path / "out")] and lock.read_holder(tmp_path / "out" / lock.LOCK_NAME) is None


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    runs: list[str] = []
    with lock.output_lock(tmp_path):
        with pytest.raises(
            InputError,
            match=rf"--out {tmp_path} is in use by another run \(pid \d+ on host .*\).*wait.*or pass another --out",
        ):
            _tiny_main(tmp_path, runs)
        _tiny_main(tmp_path, runs, ["--replot", str(Result("demo", {}, {}, {}).save(tmp_path / "old"))])  # no lock
    assert runs == []
    _tiny_main(tmp_path, runs)  # released
    assert runs == [str(tmp_path)]


@pytest.mark.fault
def test_a_live_run_in_another_process_blocks_the_folder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom experiments import lock\n"
         f"with lock.output_lock({str(tmp_path)!r}):\n    print('held', flush=True)\n    sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=rf"in use by another run \(pid {holder.pid} "):
            _tiny_main(tmp_path, [])
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0 and lock.read_holder(tmp_path / lock.LOCK_NAME) is None
    _tiny_main(tmp_path, [])


@pytest.mark.fault
def test_the_lock_of_a_killed_run_is_taken_over_with_a_warning(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom experiments import lock\n"
         f"with lock.output_lock({str(tmp_path)!r}):\n    print('held', flush=True)\n    time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    holder.kill()  # SIGKILL: no cleanup runs; the OS releases the lock
    holder.wait(timeout=60)
    runs: list[str] = []
    taken_over = rf"stale lock of pid {holder.pid} on host .*: that run ended without releasing it"
    with pytest.warns(UserWarning, match=taken_over):
        _tiny_main(tmp_path, runs)
    assert runs == [str(tmp_path)] and lock.read_holder(tmp_path / lock.LOCK_NAME) is None


def test_a_lock_file_naming_a_holder_is_taken_over_when_no_process_holds_the_lock(tmp_path):
    import json

    left = {"pid": 1, "host": "other-host", "started": "2026-01-01T00:00:00+00:00"}
    (tmp_path / lock.LOCK_NAME).write_text(json.dumps(left))
    taken_over = r"stale lock of pid 1 on host other-host, started 2026-01-01T00:00:00\+00:00: that run ended"
    with pytest.warns(UserWarning, match=taken_over):
        _tiny_main(tmp_path, [])


def test_help_shows_each_default_and_quick_value():
    text = flags.parser_for(Config, None, {"n_pairs": 3, "layers": (1,), "normalize": False}).format_help()
    flat = " ".join(text.split())
    assert "--layers LAYERS [LAYERS ...] (default: 4 8; --quick: 1)" in flat
    assert "('all': no limit) (default: all; --quick: 3)" in flat
    assert "--raw-norms (--quick: on)" in flat
    assert "--readout {last,mean_from_difference} (default: last)" in flat
    assert "--dtype {float32,bfloat16,float16,bf16_mixed} weights' dtype (default: load_model's" in flat


def test_dtype_is_a_shared_flag():
    assert cli.parse(Config, ["--dtype", "bfloat16"])[0].dtype == "bfloat16"
    with pytest.raises(SystemExit):
        cli.parse(Config, ["--dtype", "int8"])


def test_replot_without_a_value_takes_the_one_saved_result_under_out(tmp_path):
    saved = Result("demo", values={}, config={}, provenance={}).save(tmp_path / "demo")
    replot = cli.parse(Config, ["--replot", "--out", str(tmp_path)])[1]
    assert replot == tmp_path and cli.saved_result(replot, "demo") == saved
    assert cli.parse(Config, ["--replot", str(saved)])[1] == saved
    drawn: list[Path] = []
    cli.main(Config, ["--replot", "--out", str(tmp_path)], description=None, quick=None, result_name="demo",
             run=lambda c: pytest.fail("ran"), report=lambda r, path, c: drawn.append(path))  # fmt: skip
    assert drawn == [saved]
    Result("demo", values={}, config={}, provenance={}).save(tmp_path / "demo_quick")
    with pytest.raises(InputError, match=r"holds 2 saved 'demo' results .*--replot RESULT.json"):
        cli.saved_result(tmp_path, "demo")
    with pytest.raises(InputError, match="holds no 'other' result"):
        cli.saved_result(tmp_path, "other")


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_a_seed_numpy_and_torch_cannot_take_is_refused(seed):
    with pytest.raises(InputError, match=r"--seed must be in \[0, 2\*\*32\)"):
        cli.parse(Config, ["--seed", seed])


def _free_port() -> int:
    """A local port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _ray_run(out: Path, timeout_s: float, **popen: Any) -> subprocess.Popen:
    """An experiment with ``--executor ray --address`` a local port where no Ray head listens."""
    argv = ["-m", "experiments.patching", "--executor", "ray", "--address", f"127.0.0.1:{_free_port()}"]
    env = {**os.environ, "LENS_BIAS_RAY_TIMEOUT": str(timeout_s)}
    return subprocess.Popen([sys.executable, *argv, "--out", str(out)], env=env, text=True, **popen)


@pytest.mark.fault
def test_a_ray_address_where_no_head_listens_times_out_in_one_error_line(tmp_path):
    run = _ray_run(tmp_path, 1, stderr=subprocess.PIPE)
    try:
        _, stderr = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 2 and "Traceback" not in stderr, stderr
    assert re.match(r"error: --address 127\.0\.0\.1:\d+: no Ray head answers there within 1 s", stderr)
    assert lock.read_holder(tmp_path / lock.LOCK_NAME) is None


@pytest.mark.fault
def test_sigterm_while_waiting_for_a_ray_head_ends_the_run_and_releases_its_lock(tmp_path):
    run = _ray_run(tmp_path, 120, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):  # the run holds its lock, then waits for the head
            holder = lock.read_holder(tmp_path / lock.LOCK_NAME)
            if holder is not None and holder["pid"] == run.pid:
                break
            time.sleep(0.05)
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=30)
    finally:
        run.kill()
    assert run.returncode == 128 + signal.SIGTERM
    assert lock.read_holder(tmp_path / lock.LOCK_NAME) is None


@pytest.mark.fault
def test_a_full_disk_or_a_read_only_file_system_is_one_error_line():
    for number, name in ((errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")):
        done = _run_policy(f"raise OSError({number}, {name!r}, 'figures/x/result.json')")
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.splitlines()[0] == f"error: cannot write figures/x/result.json: {name}."


@pytest.mark.fault
def test_an_out_under_an_unwritable_folder_is_refused_before_the_run(tmp_path, monkeypatch):
    locked = tmp_path / "shared"
    real = Path.mkdir

    def mkdir(self, *args, **kwargs):  # root writes anywhere: refuse below `locked`, as for another user
        if locked in self.parents:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    with pytest.raises(InputError, match=rf"Cannot create {locked / 'out'} .*\(Permission denied\)"):
        _tiny_main(locked / "out", [])


@pytest.mark.fault
def test_a_lock_file_of_another_user_is_refused_naming_it(tmp_path, monkeypatch):
    lock_file = tmp_path / lock.LOCK_NAME
    lock_file.write_text("")
    real = os.open

    def open_(path, flags, *args, **kwargs):  # the lock file is another user's: this one may not write it
        if os.fspath(path) == str(lock_file) and flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    runs: list[str] = []
    with pytest.raises(InputError, match=rf"cannot take the run lock {lock_file} \(Permission denied\)"):
        _tiny_main(tmp_path, runs)
    assert runs == []


@pytest.mark.fault
def test_every_file_a_run_writes_has_the_permissions_of_the_umask(tmp_path):
    import numpy as np

    from lens_bias.cache import cached
    from lens_bias.cells import CellStore

    old = os.umask(0o027)  # not the usual 0o022: the modes must follow the umask, not be fixed
    try:
        _tiny_main(tmp_path / "out", [])  # the lock and a result
        CellStore(tmp_path / "out" / "cells").put({"i": 0}, {"x": np.zeros(2)})
        cached(tmp_path / "cache" / "artefact", {"k": 1}, lambda staging: staging.write_text("a"), Path.read_text)
    finally:
        os.umask(old)
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert {path.name.split(".")[-1] for path in files} >= {"lock", "json", "safetensors"}
    assert {path.relative_to(tmp_path).as_posix(): oct(path.stat().st_mode & 0o777) for path in files} == {
        path.relative_to(tmp_path).as_posix(): oct(0o640) for path in files
    }


MISSING = (
    "mine: missing column 'positive', 'negative', 'target'; the columns present are 'stereo', 'anti', 'group'. It "
    "needs positive, negative, target (map other column names with columns={FIELD: COLUMN}, on the command line "
    "--columns FIELD=COLUMN)."
)


def test_a_bad_pairs_file_ends_in_one_error_line_naming_the_column(tmp_path):
    """Checked when the flags are parsed: no model loads (the model name does not exist)."""
    (tmp_path / "mine.csv").write_text("stereo,anti,group\n she, he,nurse\n")
    argv = ["--model", "no-such-model", "--pairs-file", str(tmp_path / "mine.csv"), "--out", str(tmp_path / "out")]
    done = subprocess.run(
        [sys.executable, "-m", "experiments.steering", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0] == f"error: {MISSING}"
    for experiment in ("similarity", "patching", "audit"):  # the one check of every experiment that takes pairs
        config = importlib.import_module(f"experiments.{experiment}").Config
        with pytest.raises(InputError, match=re.escape(MISSING)):
            cli.parse(config, [*argv, "--targets", "z"] if experiment == "patching" else argv)
