"""experiments.similarity: its config is checked before any work; end to end on the tiny model."""

from __future__ import annotations

import pytest

from experiments import cli, similarity
from lens_bias.data.contrast_splits import CONTRASTS
from lens_bias.errors import InputError
from lens_bias.figures.similarity import summary
from lens_bias.models import EMBEDDED_MODEL
from lens_bias.similarity import study


def test_the_bias_types_are_the_raw_text_contrasts():
    """The experiment spells its choices out (it imports no library module at its top: --help speed); they are
    the named contrasts read as raw text (all but refusal), the names steering's --bias-types takes."""
    assert tuple(name for name in CONTRASTS if name != "refusal") == similarity.BIAS_TYPES
    assert similarity.Config().model == EMBEDDED_MODEL


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--base", "llama-2-7b"], "Give both --base and --chat"),
        (["--chat", "llama-2-7b-chat"], "Give both --base and --chat"),
        (["--layers"], "--layers needs at least one layer"),
    ],
)
def test_bad_config_is_refused_before_the_model_loads(argv, message, no_model):
    with pytest.raises(InputError, match=message):
        similarity.main(argv)


@pytest.mark.parametrize(
    "argv", [["--bias-types", "refusal"], ["--bias-types", "age"], ["--dtype", "int8"], ["--readout", "first"]]
)
def test_unknown_choices_are_usage_errors(argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse(similarity.Config, argv)
    assert exit_info.value.code == 2


def test_config_checks_its_values_when_built_directly():
    with pytest.raises(InputError, match="Unknown bias types"):
        similarity.Config(bias_types=("refusal",))
    with pytest.raises(InputError, match="Unknown --dtype"):
        similarity.Config(dtype="int8")
    config, _ = cli.parse(similarity.Config, ["--quick"], quick=similarity.QUICK)
    assert (config.n_pairs, config.layer_step, config.layers) == (24, 3, None)
    assert similarity.Config(base="a", chat="b").checkpoints == ["a", "b"]


def test_a_layer_outside_the_model_is_refused_before_any_forward_pass(tiny_llama_dir, tmp_path, monkeypatch):
    def no_forward(*args, **kwargs):
        raise AssertionError("a forward pass ran before the layers were checked")

    monkeypatch.setattr(study, "fit_vector", no_forward)
    with pytest.raises(InputError, match="Layer 40 is outside the model"):
        similarity.main(["--model", str(tiny_llama_dir), "--layers", "40", "--out", str(tmp_path)])


@pytest.mark.slow
def test_similarity_experiment_within_model(tiny_llama_dir, tmp_path, capsys):
    result = similarity.main(
        [
            "--model",
            str(tiny_llama_dir),
            "--quick",
            "--bias-types",
            "gender",
            "race",
            "--n-pairs",
            "8",
            "--no-png",
            "--out",
            str(tmp_path),
        ]
    )
    within = result.values["within"]
    assert within["layers"] == [0, 3] and within["contrasts"] == ["gender", "race"]  # every third layer
    assert (tmp_path / "bias_by_bias.html").exists() and (tmp_path / "baselines.html").exists()
    assert (tmp_path / "vectors" / "gender.json").exists()
    assert "mean off-diagonal cosine" in capsys.readouterr().out
    replotted = similarity.main(["--replot", str(tmp_path / "similarity.json"), "--no-png"])
    assert replotted.values == result.values
    assert summary(result) in capsys.readouterr().out
