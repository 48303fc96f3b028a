"""Fixtures of the experiment tests: a guard that no model loads before the checks, one shared steering run."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import experiments

#: The steering experiment at its smallest on the tiny model (its saved interventions feed side_effects).
STEERING_ARGS = ["--quick", "--layers", "1", "2", "--bias-types", "gender", "--n-pairs", "8", "--n-test", "6",
                 "--n-neutral", "4", "--n-generations", "2", "--max-new-tokens", "4", "--no-png"]  # fmt: skip


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if any experiment loads a model: its checks of the config must come first."""

    def load_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the config was checked")

    monkeypatch.setattr("lens_bias.models.load_model", load_model)  # what experiments import inside their run
    for info in pkgutil.iter_modules(experiments.__path__):
        module = importlib.import_module(f"experiments.{info.name}")
        if hasattr(module, "load_model"):
            monkeypatch.setattr(module, "load_model", load_model)


@pytest.fixture(scope="session")
def steering_argv(tiny_llama_dir) -> list[str]:
    """The arguments (but ``--out``) of the small steering run on the tiny model."""
    return ["--model", str(tiny_llama_dir), *STEERING_ARGS]


@pytest.fixture(scope="session")
def steering_run(tiny_llama_dir, tmp_path_factory):
    """``(out folder, Result)`` of one small steering run on the tiny model."""
    from experiments import steering

    out = tmp_path_factory.mktemp("steering")
    return out, steering.main(["--model", str(tiny_llama_dir), *STEERING_ARGS, "--out", str(out)])
