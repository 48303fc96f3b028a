"""The steering experiment: its config refuses bad settings before any model loads; end to end on the tiny
model it saves results, figures, vectors and interventions, and redraws from the saved result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from experiments import cli, steering
from lens_bias.errors import InputError
from lens_bias.interventions import AddVector, load_intervention

UNUSED_MODEL = "no-such-model"  # loading it would fail differently: the config errors come first


def test_quick_defaults_and_explicit_values():
    config, _ = cli.parse(steering.Config, ["--quick", "--layers", "1", "2"], quick=steering.QUICK)
    assert config.layers == (1, 2) and config.bias_types == ("gender",) and config.multipliers == (-4, 0, 4)
    assert config.n_pairs == 32 and config.normalize is True and config.out == Path("figures/steering")
    config, _ = cli.parse(steering.Config, ["--no-normalize", "--readout", "last", "--method", "first_pc"])
    assert config.normalize is False and config.readout == "last" and config.multipliers == (-4, -2, 0, 2, 4)
    assert config.method == "first_pc"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--multipliers", "-2", "2"], "--multipliers must include 0"),
        (["--refusal-multipliers", "0.5"], "--refusal-multipliers must include 0"),
    ],
)
def test_bad_settings_are_refused_before_the_model_loads(argv, message):
    with pytest.raises(InputError, match=message):
        steering.main(["--model", UNUSED_MODEL, *argv])


def test_an_unknown_direction_method_is_refused_before_the_model_loads():
    # the model name cannot load: the method's lookup must come first to give this message
    with pytest.raises(InputError, match="Unknown vector method 'pca': use one of 'first_pc', 'mean_difference'"):
        steering.main(["--model", UNUSED_MODEL, "--method", "pca"])


def test_the_config_checks_values_given_in_code():
    with pytest.raises(InputError, match="--bias-types nationality: unknown"):
        steering.Config(bias_types=("gender", "nationality"))
    with pytest.raises(InputError, match="--readout first: unknown"):
        steering.Config(readout="first")
    with pytest.raises(InputError, match="--layers is empty"):
        steering.Config(layers=())


def test_a_file_as_output_folder_is_refused(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is a file, not a folder"):
        steering.main(["--model", UNUSED_MODEL, "--out", str(tmp_path / "file" / "steering")])


@pytest.mark.slow
def test_steering_experiment_saves_results_figures_and_interventions(steering_run, capsys):
    out, result = steering_run
    assert result.config["layers"] == [1, 2] and result.config["n_pairs"] == 8  # explicit arguments beat --quick
    assert result.config["png"] is False and "template" in result.config
    study = result.values["bias"]["gender"]
    assert study["best_layer"] in (1, 2)
    assert {(row["layer"], row["multiplier"]) for row in study["likelihood_grid"]} == {
        (layer, m) for layer in (1, 2) for m in (-4, 0, 4)
    }
    saved = json.loads((out / "steering.json").read_text())
    assert saved["provenance"]["model"]["name"] and saved["config"]["seed"] == 0
    for stem in ("gender_heatmap", "gender_pca", "separability", "bias_vs_refusal", "fluency"):
        assert (out / f"{stem}.html").exists()
    intervention = load_intervention(out / "interventions" / "gender.json")
    assert isinstance(intervention, AddVector)
    assert (intervention.multiplier, list(intervention.layers)) == (4.0, [study["best_layer"]])

    capsys.readouterr()
    steering.main(["--replot", str(out / "steering.json"), "--no-png"])
    summary = capsys.readouterr().out
    assert "gender: layer" in summary and "refusal: layer" in summary and "correlation" in summary


@pytest.mark.slow
def test_bad_input_on_the_command_line_is_one_clear_line(tiny_llama_dir):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.steering",
            "--model",
            str(tiny_llama_dir),
            "--quick",
            "--layers",
            "40",
            "--no-png",
            "--out",
            str(tiny_llama_dir / "unused"),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 2
    assert "error: Layer 40 is outside the model" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.slow
def test_steering_your_own_pairs_from_jsonl(tiny_llama_dir, tmp_path):
    """``--pairs-file``: one vector per bias type of the table (the example pairs as JSONL), held-out pairs by
    target; every held-out pair's score per layer x multiplier in the per-item table."""
    import pandas as pd

    example = pd.read_csv(Path(__file__).resolve().parents[2] / "examples" / "pairs.csv", dtype=str)
    example.to_json(tmp_path / "pairs.jsonl", orient="records", lines=True)
    sizes = ["--n-pairs", "4", "--n-test", "2", "--n-neutral", "2", "--n-generations", "1", "--max-new-tokens", "2"]
    argv = ["--model", str(tiny_llama_dir), "--quick", "--layers", "1", *sizes, "--no-png", "--out", str(tmp_path)]
    result = steering.main([*argv, "--pairs-file", str(tmp_path / "pairs.jsonl")])
    assert set(result.values["bias"]) == {"gender", "age"}
    frame = pd.read_csv(tmp_path / "steering.items.csv")
    assert set(frame["condition"]) == {f"{c} layer 1 x{m}" for c in ("gender", "age") for m in (-4, 0, 4)}
    for contrast, study in result.values["bias"].items():
        rows = frame[(frame["contrast"] == contrast) & (frame["multiplier"] == 0)]
        unsteered = next(row for row in study["likelihood_grid"] if row["multiplier"] == 0)
        assert rows["logprob_diff"].mean() == pytest.approx(unsteered["mean_logprob_diff"]["value"])
        assert set(rows["group"]) <= set(example[example["bias_type"] == contrast]["target"])
