"""experiments.bench_sweep: the config is checked before any model loads; a tiny run on a local Ray instance
prints serial, resume and Ray timings and finds the same readouts."""

from __future__ import annotations

import re

import pytest

from experiments import bench_sweep
from lens_bias.errors import InputError


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--replot", "x.json"], "saves no result"),
    ],
)
def test_bad_config_is_refused_before_any_model_loads(no_model, argv, message):
    with pytest.raises(InputError, match=message):
        bench_sweep.main(argv)


@pytest.mark.slow
def test_a_tiny_run_prints_the_comparison_and_equal_readouts(tiny_llama_dir, capsys):
    pytest.importorskip("ray")
    argv = ["--model", str(tiny_llama_dir), "--quick", "--layers", "1", "2", "--n-pairs", "4", "--workers", "2"]
    bench_sweep.main(argv)
    out = capsys.readouterr().out
    for line in ("serial (2 threads)", "resume, every cell saved", "resume, half the cells lost", "Ray (2 workers"):
        assert line in out
    assert "overhead per cell" in out
    difference = float(re.search(r"largest \|Ray - serial\| over the 4 readouts: (\S+)", out).group(1))
    assert difference < 1e-5
