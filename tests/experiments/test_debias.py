"""The debiasing scoreboard experiment: bad input refused before any model loads; end to end, replot equal."""

from __future__ import annotations

import pytest
from cli_checks import assert_refused

from experiments import debias
from lens_bias.interventions import HeadScaling, save_intervention


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steer-multipliers", "1", "0"], "--steer-multipliers must be non-zero"),
        (["--methods", "heads", "--heads", "missing.json"], "--heads missing.json: no such file"),
        (["--n-bbq", "0"], "--n-bbq must be >= 1"),
        (["--methods", "steering", "--steer-bias-types"], "expected at least one argument"),
    ],
)
def test_bad_input_is_refused_before_the_model_loads(no_model, argv, message, capsys):
    assert_refused(debias.main, argv, message, capsys)


def test_unknown_method_is_a_usage_error(no_model, capsys):
    with pytest.raises(SystemExit) as exit_:
        debias.main(["--methods", "prayer"])
    assert exit_.value.code == 2 and "invalid choice: 'prayer'" in capsys.readouterr().err


def test_scoreboard_end_to_end_reuses_artefacts_and_replots(tiny_long_dir, tmp_path, capsys):
    heads = save_intervention(HeadScaling(((1, 0), (2, 1)), 0.0), tmp_path / "selected_heads", {})
    out = tmp_path / "debias"
    args = ["--model", str(tiny_long_dir), "--quick", "--layers", "1", "2", "--methods", "steering", "redteam",
            "heads", "--heads", str(heads), "--n-pairs", "8", "--n-stereoset", "8", "--n-crows-pairs", "8",
            "--n-bbq", "1", "--n-neutral", "4", "--n-side-bbq", "4", "--n-lms", "4", "--n-knowledge", "4",
            "--no-png", "--out", str(out)]  # fmt: skip
    result = debias.main(args)
    printed = capsys.readouterr().out
    assert list(result.values["methods"]) == ["steer gender", "red-team gender (+bias, -refusal)", "BiasScope heads x0"]
    assert (out / "debias.md").read_text().startswith("# Debiasing scoreboard of")
    assert "### Bias removed" in printed and (out / "pareto_stereoset_ss.html").is_file()
    assert sorted(p.name for p in (out / "artefacts").iterdir()) == ["redteam-gender", "steer-gender"]
    again = debias.main(args)  # artefacts and scoring cells reused: the same numbers
    assert again.values == result.values
    capsys.readouterr()
    replotted = debias.main(["--replot", str(out / "debias.json"), "--no-png"])
    assert replotted.values == result.values
