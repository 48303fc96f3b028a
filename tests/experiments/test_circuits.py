"""experiments.circuits: the flags and their choices; end to end on the tiny model with two contrasts and mean
ablation (runs, saves, draws, redraws from the saved result)."""

from __future__ import annotations

import pytest

from experiments import circuits, cli, commands
from experiments.config import metadata
from lens_bias.circuits.scores import METHODS
from lens_bias.errors import InputError
from lens_bias.figures.index import render_index


def test_config_defaults_quick_and_choices():
    config, _ = cli.parse(circuits.Config, [])
    assert (config.pairs, config.method, config.n_pairs, config.ablation, config.stem) == (
        ("gender_swap",),
        "eap_ig",
        16,
        "corrupted",
        "circuits",
    )
    config, _ = cli.parse(circuits.Config, ["--quick"], quick=circuits.QUICK)
    assert (config.n_pairs, config.steps, config.circuit_sizes, config.overlap_edges, config.stem) == (
        4,
        2,
        (10, 100, 1000),
        100,
        "circuits_quick",
    )
    assert tuple(metadata(circuits.Config, "method")["choices"]) == METHODS
    config, _ = cli.parse(circuits.Config, ["--pairs", "gender_swap", "stereoset:race", "crows_pairs:race-color"])
    assert config.pairs == ("gender_swap", "stereoset:race", "crows_pairs:race-color")
    for bad in (["stereoset:age"], ["gender_swap", "gender_swap"]):
        with pytest.raises(InputError, match="--pairs takes distinct contrasts"):
            cli.parse(circuits.Config, ["--pairs", *bad])


@pytest.mark.slow
def test_circuits_experiment(tiny_llama_dir, tmp_path, capsys):
    argv = ["--model", str(tiny_llama_dir), "--quick", "--n-pairs", "2", "--min-gap", "0", "--no-png"]
    argv += ["--pairs", "gender_swap", "crows_pairs:gender", "--ablation", "mean", "--overlap-edges", "50"]
    argv += ["--n-edges", "4", "--n-random", "1", "--compare-checkpoint", str(tiny_llama_dir)]
    result = circuits.main([*argv, "--circuit-sizes", "5", "1000", "--out", str(tmp_path)])
    n_edges = result.values["contrasts"]["gender_swap"]["graph"]["n_edges"]
    for name in ("gender_swap", "crows_pairs:gender"):
        values = result.values["contrasts"][name]
        curve = values["curve"]
        assert values["ablation"] == "mean" and [row["size"] for row in curve] == [5, n_edges]  # capped
        assert curve[-1]["faithfulness"] == pytest.approx(1.0, abs=1e-3)  # every edge: the clean run
        assert curve[-1]["completeness"] == pytest.approx(0.0, abs=1e-3)  # its complement: the empty circuit
        assert result.tensors[f"{name}.exact_effects"].shape == (4, 2) and len(values["top_edges"]) == 20
        assert len(result.config["pair_ids"][name]) == 2
        for figure in ("diagram", "faithfulness"):
            assert (tmp_path / f"circuits_quick_{name.replace(':', '_')}_{figure}.html").exists()
    overlap = result.values["overlap"]
    assert overlap["names"] == ["gender_swap", "crows_pairs:gender"] and overlap["n_edges"] == 50
    matrix = result.tensors["overlap_jaccard"]
    assert matrix[0, 1] == matrix[1, 0] and all(0 <= v <= 1 for v in matrix.flatten().tolist())
    assert (tmp_path / "circuits_quick_overlap.html").exists()
    compared = result.values["checkpoint"]  # the same weights as the second checkpoint: the same circuits
    assert compared["model"]["name"] and all(row["jaccard"] == 1.0 for row in compared["contrasts"].values())
    assert compared["split_half"] == overlap["split_half"] and (tmp_path / "circuits_quick_checkpoints.html").exists()
    printed = capsys.readouterr().out
    circuits.main(["--replot", str(tmp_path / "circuits_quick.json"), "--no-png"])
    assert capsys.readouterr().out == printed  # the summary is printed from the saved result
    index = render_index(tmp_path, commands.experiment)
    assert "## circuits: [`circuits_quick.json`]" in index and circuits.summarize(result) in index
    argv = ["--model", str(tiny_llama_dir), "--quick", "--n-pairs", "2", "--min-gap", "0", "--no-png", "--n-edges", "2"]
    argv += ["--circuit-sizes", "5", "--n-random", "0", "--no-split-half", "--overlap-edges", "50"]
    argv += ["--compare-circuits", str(tmp_path / "circuits_quick.json"), "--out", str(tmp_path / "again")]
    again = circuits.main(argv).values["saved"]  # the first run's gender_swap circuit among the saved ones
    assert again["others"] == [f"{kind}{name}.scores" for kind in ("", "checkpoint.") for name in overlap["names"]]
    assert again["jaccard"][0][0] == 1.0 and again["source"] == str(tmp_path / "circuits_quick.json")
    assert (tmp_path / "again" / "circuits_quick_saved.html").exists()
