"""The side-effects experiment: it refuses a missing --intervention, bad sizes and unusable intervention files
before any model loads; end to end it scores a saved steering intervention on the tiny model."""

from __future__ import annotations

import pytest
import torch

import lens_bias.side_effects
from experiments import side_effects as side_effects_experiment
from lens_bias.directions import SteeringVector
from lens_bias.errors import InputError
from lens_bias.interventions import AddVector, save_intervention

UNUSED_MODEL = "no-such-model"  # loading it would fail differently: these errors come first


def test_an_intervention_is_required_unless_replotting():
    with pytest.raises(InputError, match=r"give --intervention FILE \[FILE \.\.\.\] \(or --replot RESULT.json\)"):
        side_effects_experiment.main(["--model", UNUSED_MODEL])
    with pytest.raises(InputError, match="give --intervention"):
        side_effects_experiment.main(["--model", UNUSED_MODEL, "--intervention"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--n-bbq-disambig", "0"], "--n-bbq-disambig must be >= 2"),
        (["--n-lms", "1"], "--n-lms must be >= 2"),
        (["--n-neutral", "-1"], "--n-neutral must be >= 2"),
        (["--n-knowledge", "1"], "--n-knowledge must be >= 2"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
    ],
)
def test_bad_sizes_are_refused_before_the_model_loads(argv, message, tmp_path):
    with pytest.raises(InputError, match=message):
        side_effects_experiment.main(["--model", UNUSED_MODEL, "--intervention", str(tmp_path / "x.json"), *argv])


def test_all_neutral_sentences_and_questions_is_none():
    config = side_effects_experiment.Config(intervention=("x.json",))
    assert config.n_neutral is None and config.side_effect_config().n_neutral is None
    assert config.n_knowledge is None and config.side_effect_config().n_knowledge is None
    assert side_effects_experiment.Config(n_knowledge=5).side_effect_config().n_knowledge == 5


def test_intervention_files_are_checked_before_the_model_loads(tmp_path):
    with pytest.raises(InputError, match=r"missing\.json: no saved result there"):
        side_effects_experiment.main(["--model", UNUSED_MODEL, "--intervention", str(tmp_path / "missing.json")])
    vector = SteeringVector(name="demo", layers=(0,), directions=torch.ones(1, 4), residual_norms=torch.ones(1))
    path = save_intervention(
        AddVector(vector, 1.0, [0], start="instruction_end"), tmp_path / "chat_only", provenance={}
    )
    with pytest.raises(ValueError, match="side-effect readouts score raw text"):
        side_effects_experiment.main(["--model", UNUSED_MODEL, "--intervention", str(path)])


def test_a_vector_of_another_model_is_refused_before_the_baseline(tiny_llama_dir, tmp_path, monkeypatch):
    def baseline_ran(*args, **kwargs):
        raise AssertionError("the baseline was scored before the interventions were checked against the model")

    monkeypatch.setattr(lens_bias.side_effects, "capability_scores", baseline_ran)
    foreign = SteeringVector("smollm_gender", (2,), torch.ones(1, 576), torch.ones(1))  # the embedded model's width
    path = save_intervention(AddVector(foreign, 1.0, start=None), tmp_path / "foreign", provenance={})
    argv = ["--model", str(tiny_llama_dir), "--device", "cpu", "--intervention", str(path), "--out", str(tmp_path)]
    with pytest.raises(InputError, match=r"'smollm_gender' has width 576, but .* has d_model 64"):
        side_effects_experiment.main(argv)


@pytest.mark.slow
def test_side_effects_experiment_takes_a_saved_steering_intervention(
    steering_run, tiny_llama_dir, tiny_long_dir, tmp_path
):
    steering_out, _ = steering_run
    gender = str(steering_out / "interventions" / "gender.json")
    with pytest.raises(ValueError, match="more than the model's context"):  # BBQ contexts exceed 256 tiny tokens
        side_effects_experiment.main(
            [
                "--model",
                str(tiny_llama_dir),
                "--intervention",
                gender,
                "--n-bbq-disambig",
                "3",
                "--n-lms",
                "4",
                "--no-png",
                "--out",
                str(tmp_path),
            ]
        )
    result = side_effects_experiment.main(
        [
            "--model",
            str(tiny_long_dir),
            "--intervention",
            gender,
            "--n-neutral",
            "4",
            "--n-bbq-disambig",
            "3",
            "--n-lms",
            "4",
            "--n-knowledge",
            "4",
            "--no-png",
            "--out",
            str(tmp_path),
        ]
    )
    report = result.values["reports"][gender]
    assert {e["name"] for e in report["effects"]} == {
        "neutral_logprob",
        "bbq_disambig_accuracy",
        "stereoset_lms",
        "knowledge_accuracy",
    }
    assert result.config["side_effect_config"]["n_knowledge"] == 4
    assert result.config["intervention"] == [gender] and result.config["side_effect_config"]["n_stereoset"] == 4
    assert (tmp_path / "side_effects.html").exists()
