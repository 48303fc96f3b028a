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
