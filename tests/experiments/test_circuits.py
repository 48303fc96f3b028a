"""experiments.circuits: the flags and their choices; end to end on the tiny model (runs, saves, draws,
redraws from the saved result)."""

from __future__ import annotations

import pytest

from experiments import circuits, cli, commands
from experiments.config import metadata
from lens_bias.circuits.scores import METHODS
from lens_bias.figures.index import render_index


def test_config_defaults_quick_and_choices():
    config, _ = cli.parse(circuits.Config, [])
    assert (config.method, config.n_pairs, config.stem) == ("eap_ig", 16, "circuits")
    config, _ = cli.parse(circuits.Config, ["--quick"], quick=circuits.QUICK)
    assert (config.n_pairs, config.steps, config.circuit_sizes, config.stem) == (
        4,
        2,
        (10, 100, 1000),
        "circuits_quick",
    )
    assert tuple(metadata(circuits.Config, "method")["choices"]) == METHODS


@pytest.mark.slow
def test_circuits_experiment(tiny_llama_dir, tmp_path, capsys):
    argv = ["--model", str(tiny_llama_dir), "--quick", "--n-pairs", "2", "--min-gap", "0", "--no-png"]
    result = circuits.main([*argv, "--circuit-sizes", "5", "1000", "--out", str(tmp_path)])
    curve = result.values["curve"]
    assert [row["size"] for row in curve] == [5, result.values["graph"]["n_edges"]]  # capped at every edge
    assert curve[-1]["faithfulness"] == pytest.approx(1.0, abs=1e-3)  # every edge: the clean run
    assert curve[-1]["completeness"] == pytest.approx(0.0, abs=1e-3)  # its complement is empty: corrupted
    assert result.tensors["exact_effects"].shape == (16, 2) and len(result.values["top_edges"]) == 20
    for figure in ("diagram", "faithfulness"):
        assert (tmp_path / f"circuits_quick_{figure}.html").exists()
    printed = capsys.readouterr().out
    circuits.main(["--replot", str(tmp_path / "circuits_quick.json"), "--no-png"])
    assert capsys.readouterr().out == printed  # the summary is printed from the saved result
    index = render_index(tmp_path, commands.experiment)
    assert "## circuits: [`circuits_quick.json`]" in index and circuits.summarize(result) in index
