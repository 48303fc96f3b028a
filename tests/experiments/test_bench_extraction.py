"""experiments.bench_extraction: the config is checked before any model loads, the layers against the model
before any forward pass; a tiny run prints its comparison."""

from __future__ import annotations

import pytest

from experiments import bench_extraction
from lens_bias.errors import InputError


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--replot", "x.json"], "saves no result"),
    ],
)
def test_bad_config_is_refused_before_any_model_loads(monkeypatch, argv, message):
    def load_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was checked")

    monkeypatch.setattr("lens_bias.models.load_model", load_model)
    with pytest.raises(InputError, match=message):
        bench_extraction.main(argv)


def test_layers_are_checked_against_the_model(tiny_llama_dir, monkeypatch):
    def extract(*args, **kwargs):
        raise AssertionError("a forward pass ran before the layers were checked")

    monkeypatch.setattr("lens_bias.forward.activations.extract", extract)
    with pytest.raises(InputError, match="Layer 7 is outside the model"):
        bench_extraction.main(["--model", str(tiny_llama_dir), "--layers", "0", "7"])


def test_a_tiny_run_prints_the_comparison(tiny_llama_dir, capsys):
    bench_extraction.main(["--model", str(tiny_llama_dir), "--quick", "--n-prompts", "4", "--layers", "0", "3"])
    out = capsys.readouterr().out
    assert "4 prompts, layers [0, 3]" in out and "max |batched - single| = 0.00e+00" in out
