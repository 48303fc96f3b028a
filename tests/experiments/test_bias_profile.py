"""experiments.bias_profile: its config is checked before any model loads; end to end on the tiny model."""

from __future__ import annotations

import pytest

from experiments import bias_profile, cli
from lens_bias.data.stereoset import BIAS_TYPES as STEREOSET_BIAS_TYPES
from lens_bias.errors import InputError


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--test-fraction", "0"], r"--test-fraction must be in \(0, 1\), got 0.0"),
        (["--test-fraction", "1"], r"--test-fraction must be in \(0, 1\), got 1.0"),
        (["--test-fraction", "-0.2"], r"--test-fraction must be in \(0, 1\)"),
    ],
)
def test_bad_config_is_refused_before_the_model_loads(argv, message, no_model):
    with pytest.raises(InputError, match=message):
        bias_profile.main(argv)


def test_config_defaults_and_all_pairs():
    config, replot = cli.parse(bias_profile.Config, ["--quick"], quick=bias_profile.QUICK)
    assert replot is None and config.n_stereoset == 24 and config.batch_size == 16
    assert config.bias_types == STEREOSET_BIAS_TYPES  # the experiment's copy (kept light for --help) agrees
    assert bias_profile.Config(n_stereoset=None).n_stereoset is None  # None = every held-out pair
    with pytest.raises(InputError, match="Unknown bias types"):
        bias_profile.Config(bias_types=("gender", "age"))
    with pytest.raises(SystemExit):  # not a choice: a usage error
        cli.parse(bias_profile.Config, ["--bias-types", "age"])


@pytest.mark.slow
def test_bias_profile_experiment(tiny_llama_dir, tmp_path, capsys):
    result = bias_profile.main(
        [
            "--model",
            str(tiny_llama_dir),
            "--quick",
            "--n-stereoset",
            "6",
            "--bias-types",
            "gender",
            "race",
            "--no-png",
            "--out",
            str(tmp_path),
        ]
    )
    assert result.config["n_stereoset"] == 6 and set(result.values["per_bias_type"]) == {"gender", "race"}
    assert result.values["per_bias_type"]["gender"]["likelihood"]["n"] == 6
    assert (tmp_path / "bias_profile.html").exists()
    printed = capsys.readouterr().out
    assert "gender: likelihood share" in printed
    replotted = bias_profile.main(["--replot", str(tmp_path / "bias_profile.json"), "--no-png"])
    assert replotted.values == result.values
    assert bias_profile.summarize(result) in capsys.readouterr().out
