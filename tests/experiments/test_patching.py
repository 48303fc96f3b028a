"""experiments.patching: the config is checked before any model loads; end to end on the tiny model (runs,
saves, draws, redraws from the saved result)."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments import cli, patching
from experiments.config import metadata
from lens_bias.data import CROWS_BIAS_TYPES
from lens_bias.data.gender_swap import gender_swap_groups
from lens_bias.errors import InputError
from lens_bias.figures.patching import draw
from lens_bias.patching import DIRECTIONS, TARGETS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pairs.csv"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--pairs", "crows_pairs", "--targets", "z", "resid_pre"], "do not share positions"),
        (["--stem", "sub/patching"], "without folders"),
    ],
)
def test_bad_config_is_refused_before_any_model_loads(no_model, argv, message):
    with pytest.raises(InputError, match=message):
        patching.main(argv)


def test_config_defaults_quick_and_all_pairs():
    config, _ = cli.parse(patching.Config, [])
    assert (config.n_pairs, config.targets, config.stem) == (24, patching.DEFAULT_TARGETS, "patching")
    config, _ = cli.parse(patching.Config, ["--quick"], quick=patching.QUICK)
    assert (config.n_pairs, config.targets, config.stem) == (2, ("resid_pre", "z"), "patching_quick")
    assert cli.parse(patching.Config, ["--n-pairs", "all"])[0].n_pairs is None  # every pair with the gap
    assert patching.Config(pairs="crows_pairs", targets=("z", "k", "v")).crows_types is None
    with pytest.raises(InputError, match="at least one target"):
        patching.Config(targets=())


def test_the_choices_are_the_librarys():
    """The experiment spells its choices out (it imports no library module at its top: --help speed)."""
    assert tuple(TARGETS) == patching.TARGETS
    assert tuple(name for name, target in TARGETS.items() if target.unit == "head") == patching.HEAD_TARGETS
    assert tuple(gender_swap_groups()) == patching.GROUPS
    assert tuple(CROWS_BIAS_TYPES) == patching.CROWS_TYPES
    assert set(metadata(patching.Config, "direction")["choices"]) == set(DIRECTIONS)


@pytest.mark.slow
def test_patching_experiment(tiny_llama_dir, tmp_path, capsys):
    result = patching.main(
        ["--model", str(tiny_llama_dir), "--quick", "--min-gap", "0", "--no-png", "--out", str(tmp_path)]
    )
    assert set(result.values["targets"]) == {"resid_pre", "z"}  # the --quick targets
    assert result.config["n_pairs"] == 2 and result.config["stem"] == "patching_quick"
    for target in ("resid_pre", "z"):
        for method in ("exact", "attribution"):
            assert (tmp_path / f"patching_quick_{target}_{method}.html").exists()
    printed = capsys.readouterr().out
    replotted = patching.main(["--replot", str(tmp_path / "patching_quick.json"), "--no-png"])
    assert replotted.values["targets"].keys() == result.values["targets"].keys()
    assert capsys.readouterr().out == printed  # the summary is printed from the saved result


@pytest.mark.slow
def test_patching_experiment_on_crows_pairs(tiny_llama_dir, tmp_path):
    result = patching.main(
        [
            "--model",
            str(tiny_llama_dir),
            "--pairs",
            "crows_pairs",
            "--targets",
            "z",
            "--n-pairs",
            "3",
            "--min-gap",
            "0",
            "--no-png",
            "--out",
            str(tmp_path),
        ]
    )
    assert result.values["pairs"]["used"] == 3 and result.values["targets"]["z"]["axes"] == ["pair", "layer", "head"]
    assert result.values["metric"]["name"].startswith("summed log P")
    assert "CrowS-Pairs" in draw(result, "z", "exact").layout.title.text
    with pytest.raises(InputError, match="do not share positions"):  # positions do not line up across sentences
        cli.parse(patching.Config, ["--pairs", "crows_pairs", "--targets", "resid_pre"])


@pytest.mark.slow
def test_patching_your_own_pairs_from_a_csv(tiny_llama_dir, tmp_path):
    """``--pairs-file``: the example CSV's pairs patched the crows_pairs way; the per-item table reads back."""
    import pandas as pd

    argv = ["--model", str(tiny_llama_dir), "--pairs-file", str(EXAMPLE), "--targets", "z", "--n-pairs", "2"]
    result = patching.main([*argv, "--min-gap", "0", "--no-png", "--out", str(tmp_path)])
    assert result.values["pairs"]["candidates"] == 18 and result.values["pairs"]["used"] == 2
    frame = pd.read_parquet(tmp_path / "patching.items.parquet")
    pd.testing.assert_frame_equal(frame, result.to_frame())
    assert set(frame["item_id"]) == set(result.config["pair_ids"]) and set(frame["condition"]) == {"z"}
    assert len(frame) == 2 * 4 * 4  # pairs x layers x heads of the tiny model
    assert len(pd.read_csv(tmp_path / "patching.items.csv")) == len(frame)
