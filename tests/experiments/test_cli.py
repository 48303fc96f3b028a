"""The shared command line: flags from a config dataclass, --quick, validation before work, the error policy."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from experiments import cli
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
        "model": cli.EMBEDDED_MODEL,
        "device": "cpu",
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
        assert (config.out / cli.LOCK_NAME).is_file()  # held while the run works
        return Result("demo", values={}, config=config.to_dict(), provenance={}).save(config.out / "demo")

    argv = argv if argv is not None else ["--out", str(out)]
    return cli.main(Config, argv, description=None, quick=None, result_name="demo", run=run, report=lambda *a: None)


def test_a_run_holds_a_lock_on_its_output_folder_and_releases_it(tmp_path):
    runs: list[str] = []
    _tiny_main(tmp_path / "out", runs)
    assert runs == [str(tmp_path / "out")] and not (tmp_path / "out" / cli.LOCK_NAME).exists()


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    runs: list[str] = []
    with cli.output_lock(tmp_path):
        with pytest.raises(
            InputError,
            match=rf"--out {tmp_path} is in use by another run \(pid \d+ on host .*\).*wait.*or pass another --out",
        ):
            _tiny_main(tmp_path, runs)
        _tiny_main(tmp_path, runs, ["--replot", str(Result("demo", {}, {}, {}).save(tmp_path / "old"))])  # no lock
    assert runs == []
    _tiny_main(tmp_path, runs)  # released
    assert runs == [str(tmp_path)]


def test_a_live_run_in_another_process_blocks_the_folder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom experiments import cli\n"
         f"with cli.output_lock({str(tmp_path)!r}):\n    print('held', flush=True)\n    sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=rf"in use by another run \(pid {holder.pid} "):
            _tiny_main(tmp_path, [])
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0 and not (tmp_path / cli.LOCK_NAME).exists()
    _tiny_main(tmp_path, [])


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path):
    import json
    import socket

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock = {"pid": int(dead.stdout), "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"}
    (tmp_path / cli.LOCK_NAME).write_text(json.dumps(lock))
    runs: list[str] = []
    with pytest.warns(UserWarning, match=rf"stale lock .* pid {lock['pid']} .* no longer runs; taking it over"):
        _tiny_main(tmp_path, runs)
    assert runs == [str(tmp_path)] and not (tmp_path / cli.LOCK_NAME).exists()


def test_a_lock_held_on_another_host_is_refused(tmp_path):
    import json

    lock = {"pid": 1, "host": "other-host", "started": "2026-01-01T00:00:00+00:00"}
    (tmp_path / cli.LOCK_NAME).write_text(json.dumps(lock))
    with pytest.raises(InputError, match=rf"pid 1 on host other-host.*delete {tmp_path / cli.LOCK_NAME}"):
        _tiny_main(tmp_path, [])
