"""experiments.bench_throughput: the config is checked before any model loads; a tiny run prints its table."""

from __future__ import annotations

import pytest

from experiments import bench_throughput
from lens_bias.errors import InputError


def test_bad_config_is_refused_before_any_model_loads(monkeypatch):
    def load_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was checked")

    monkeypatch.setattr("lens_bias.models.load_model", load_model)
    with pytest.raises(InputError, match="saves no result"):
        bench_throughput.main(["--replot", "x.json"])
    with pytest.raises(InputError, match="at least one precision"):
        bench_throughput.Config(dtypes=())
    with pytest.raises(InputError, match="--harness-python /no/such/python: cannot run it"):
        bench_throughput.main(["--harness-python", "/no/such/python"])


def test_a_tiny_run_prints_each_path_against_the_reference(tiny_llama_dir, capsys):
    bench_throughput.main(["--model", str(tiny_llama_dir), "--quick", "--n-pairs", "2", "--no-plain"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2 CrowS-Pairs pairs,") and "batch 16" in lines[0]
    assert lines[2].startswith("lens_bias float32") and "1.00x   1.00x  whole 100.0%, shared 100.0%" in lines[2]
    assert lines[3].startswith("lens_bias bf16_mixed")
    assert lines[4].startswith("lm-evaluation-harness:")
