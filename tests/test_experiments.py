"""Experiment modules end to end on the tiny random model: they run, save results with their config, write
figures, print a summary, redraw from the saved result, and hand their interventions to the side-effect
experiment. (What the numbers are is tested on the embedded model in the library's own tests.)"""

from __future__ import annotations

import json

import pytest

from experiments import bias_profile, biasscope, patching, similarity, steering
from experiments import side_effects as side_effects_experiment
from lens_bias.side_effects import load_intervention
from lens_bias.steering import AddVector


@pytest.fixture(scope="module")
def steering_run(tiny_llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("steering")
    result = steering.main(["--model", str(tiny_llama_dir), "--quick", "--layers", "1", "2", "--bias-types", "gender",
                            "--n-pairs", "8", "--n-test", "6", "--n-neutral", "4", "--n-generations", "2",
                            "--max-new-tokens", "4", "--no-png", "--out", str(out)])
    return out, result


def test_steering_experiment_saves_results_figures_and_interventions(steering_run, capsys):
    out, result = steering_run
    assert result.config["layers"] == [1, 2] and result.config["n_pairs"] == 8  # explicit arguments beat --quick
    study = result.values["bias"]["gender"]
    assert study["best_layer"] in (1, 2)
    assert {(row["layer"], row["multiplier"]) for row in study["likelihood_grid"]} == {
        (layer, m) for layer in (1, 2) for m in (-4, 0, 4)}
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


def test_side_effects_experiment_takes_a_saved_steering_intervention(steering_run, tiny_llama_dir, tiny_long_dir,
                                                                    tmp_path):
    out, _ = steering_run
    with pytest.raises(ValueError, match="more than the model's context"):  # BBQ contexts exceed 256 tiny tokens
        side_effects_experiment.main(["--model", str(tiny_llama_dir), "--intervention",
                                      str(out / "interventions" / "gender.json"), "--n-bbq", "3", "--n-lms", "4",
                                      "--no-png", "--out", str(tmp_path)])
    result = side_effects_experiment.main(["--model", str(tiny_long_dir), "--intervention",
                                           str(out / "interventions" / "gender.json"), "--n-neutral", "4",
                                           "--n-bbq", "3", "--n-lms", "4", "--no-png", "--out", str(tmp_path)])
    report = result.values["reports"][str(out / "interventions" / "gender.json")]
    assert {e["name"] for e in report["effects"]} == {"neutral_logprob", "bbq_disambig_accuracy", "stereoset_lms"}
    assert (tmp_path / "side_effects.html").exists()
    with pytest.raises(SystemExit):
        side_effects_experiment.parse_args([])


def test_similarity_experiment_within_model(tiny_llama_dir, tmp_path, capsys):
    result = similarity.main(["--model", str(tiny_llama_dir), "--quick", "--contrasts", "gender", "race",
                              "--n-pairs", "8", "--no-png", "--out", str(tmp_path)])
    within = result.values["within"]
    assert within["layers"] == [0, 3] and within["contrasts"] == ["gender", "race"]  # every third layer
    assert (tmp_path / "bias_by_bias.html").exists() and (tmp_path / "baselines.html").exists()
    assert "mean off-diagonal cosine" in capsys.readouterr().out


def test_bias_profile_experiment(tiny_llama_dir, tmp_path):
    result = bias_profile.main(["--model", str(tiny_llama_dir), "--quick", "--n-pairs", "6", "--bias-types", "gender",
                                "race", "--no-png", "--out", str(tmp_path)])
    assert result.config["n_pairs"] == 6 and set(result.values["per_bias_type"]) == {"gender", "race"}
    assert result.values["per_bias_type"]["gender"]["likelihood"]["n"] == 6
    assert (tmp_path / "bias_profile.html").exists()


def test_patching_experiment(tiny_llama_dir, tmp_path):
    result = patching.main(["--model", str(tiny_llama_dir), "--quick", "--min-gap", "0", "--no-png",
                            "--out", str(tmp_path)])
    assert set(result.values["targets"]) == {"resid_pre", "z"}  # the --quick targets
    for target in ("resid_pre", "z"):
        for method in ("exact", "attribution"):
            assert (tmp_path / f"patching_quick_{target}_{method}.html").exists()
    replotted = patching.main(["--replot", str(tmp_path / "patching_quick.json"), "--no-png"])
    assert replotted.values["targets"].keys() == result.values["targets"].keys()


def test_patching_experiment_on_crows_pairs(tiny_llama_dir, tmp_path):
    result = patching.main(["--model", str(tiny_llama_dir), "--pairs", "crows-pairs", "--targets", "z", "--n-pairs",
                            "3", "--min-gap", "-1000", "--no-png", "--out", str(tmp_path)])
    assert result.values["pairs"]["used"] == 3 and result.values["targets"]["z"]["axes"] == ["pair", "layer", "head"]
    assert result.values["metric"]["name"].startswith("summed log P")
    assert "CrowS-Pairs" in patching.draw(result, "z", "exact").layout.title.text
    with pytest.raises(SystemExit):  # positions do not line up across CrowS-Pairs sentences
        patching.parse_args(["--pairs", "crows-pairs", "--targets", "resid_pre"])


@pytest.mark.slow
def test_biasscope_experiment_on_the_embedded_model(tmp_path):
    """The whole pipeline at its smallest (one 5-step injection, 2 random draws): plumbing and figures; the
    method's behaviour is tested in test_localize / test_inject."""
    result = biasscope.main(["--quick", "--seeds", "0", "--steps", "5", "--n-random", "2", "--n-crows", "8",
                             "--n-stereoset", "8", "--n-neutral", "8", "--n-bbq", "4", "--n-lms", "8",
                             "--n-templates", "2", "--no-png", "--out", str(tmp_path)])
    assert len(result.values["selected_heads"]) == 5
    assert set(result.values["bias_reduction"]) == {"injected entity", "real countries", "CrowS-Pairs nationality",
                                                    "StereoSet race"}
    for stem in ("head_scores_patching", "head_scores_dla", "topk_overlap", "bias_reduction", "side_effects"):
        assert (tmp_path / f"{stem}.html").exists()
    assert (tmp_path / "selected_heads.json").exists()


def test_bad_input_on_the_command_line_is_one_clear_line(tiny_llama_dir):
    import subprocess
    import sys
    from pathlib import Path

    run = subprocess.run([sys.executable, "-m", "experiments.steering", "--model", str(tiny_llama_dir), "--quick",
                          "--layers", "40", "--no-png", "--out", str(tiny_llama_dir / "unused")],
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 2
    assert "error: Layer 40 is outside the model" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("module", ["bench_extraction", "bench_patching", "bias_profile", "biasscope", "figures",
                                    "patching", "side_effects", "similarity", "steering"])
def test_every_experiment_runs_as_a_module(module):
    import subprocess
    import sys
    from pathlib import Path

    run = subprocess.run([sys.executable, "-m", f"experiments.{module}", "--help"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("usage:")


def test_figures_runs_and_replots_every_step(tiny_long_dir, tmp_path, capsys):
    import argparse
    import importlib

    from experiments import figures

    # every step's planned command line is accepted by its experiment
    for quick in (False, True):
        args = argparse.Namespace(model=str(tiny_long_dir), quick=quick, out=tmp_path, no_png=True)
        for step in figures.STEPS:
            module, step_args, result = figures.plan(step, args)
            importlib.import_module(f"experiments.{module}").parse_args(step_args)
            assert result.parent == tmp_path / step
    figures.main(["--model", str(tiny_long_dir), "--quick", "--only", "bias_profile", "similarity", "--no-png",
                  "--out", str(tmp_path)])
    assert (tmp_path / "bias_profile" / "bias_profile.json").exists()
    assert (tmp_path / "similarity" / "similarity.json").exists()
    capsys.readouterr()
    figures.main(["--replot", "--only", "bias_profile", "similarity", "--no-png", "--out", str(tmp_path)])
    assert "== similarity: python -m experiments.similarity --replot" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="--only steering"):
        figures.main(["--replot", "--only", "steering", "--out", str(tmp_path)])
