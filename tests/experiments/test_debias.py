"""The debiasing scoreboard experiment: bad input refused before any model loads; end to end, replot equal."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import torch
from cli_checks import assert_refused

from experiments import commands, debias
from lens_bias.directions import SteeringVector
from lens_bias.errors import InputError
from lens_bias.figures.index import render_index
from lens_bias.interventions import AddVector, HeadScaling, save_intervention


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steer-multipliers", "1", "0"], "multipliers (--steer-multipliers) must be non-zero"),
        (["--methods", "heads", "--heads", "missing.json"], "heads_file (--heads) missing.json: no such file"),
        (["--methods", "redteam", "--redteam-bias-type", "astrology"], "Unknown bias type 'astrology'"),
        (["--n-bbq", "0"], "--n-bbq must be >= 1"),
        (["--methods", "steering", "--steer-bias-types"], "expected at least one argument"),
    ],
)
def test_bad_input_is_refused_before_the_model_loads(no_model, argv, message, capsys):
    assert_refused(debias.main, argv, message, capsys)


def test_unknown_method_is_refused_naming_the_registered_ones(no_model, capsys):
    assert_refused(
        debias.main, ["--methods", "prayer"], "Unknown debiasing method 'prayer'; known: alignez_ccs", capsys
    )


def test_scoreboard_end_to_end_reuses_artefacts_and_replots(tiny_long_dir, tmp_path, capsys):
    heads = save_intervention(HeadScaling(((1, 0), (2, 1)), 0.0), tmp_path / "selected_heads", {})
    out = tmp_path / "debias"
    args = ["--model", str(tiny_long_dir), "--quick", "--layers", "1", "2", "--methods", "steering", "redteam",
            "heads", "--heads", str(heads), "--n-pairs", "8", "--n-stereoset", "8", "--n-crows-pairs", "8",
            "--n-bbq", "1", "--n-neutral", "4", "--n-bbq-disambig", "4", "--n-lms", "4", "--n-knowledge", "4",
            "--no-png", "--out", str(out)]  # fmt: skip
    result = debias.main(args)
    printed = capsys.readouterr().out
    assert list(result.values["methods"]) == ["steer gender", "red-team gender (+bias, -refusal)", "BiasScope heads x0"]
    assert (out / "debias.md").read_text().startswith("# Debiasing scoreboard of")
    assert "### Bias removed" in printed and (out / "pareto_stereoset_ss.html").is_file()
    saved = ["redteam-gender", "redteam-gender.cache.json", "steer-gender", "steer-gender.cache.json"]
    assert sorted(p.name for p in (out / "artefacts").iterdir()) == saved
    again = debias.main(args)  # artefacts and scoring cells reused: the same numbers
    assert again.values == result.values
    capsys.readouterr()
    replotted = debias.main(["--replot", str(out / "debias.json"), "--no-png"])
    assert replotted.values == result.values
    index = render_index(tmp_path, commands.experiment)  # the index's section: the scoreboard's tables
    assert "## debias: [`debias/debias.json`]" in index and debias.summarize(result) in index


def test_a_registered_method_plugs_into_the_scoreboard_by_name(tiny_long_dir, tmp_path, capsys):
    from lens_bias.debias.methods import REGISTRY, Candidate, MethodConfig, register

    @register("toy_heads")
    @dataclass(frozen=True)
    class ToyHeads(MethodConfig):
        """A user's method: the first head of layer 1 scaled by --head-scale."""

        scale: float = field(default=0.0, metadata={"option": "head_scale"})

        def fit(self, model, context):
            return Candidate(f"toy heads x{self.scale:g}", "head ablation", (HeadScaling(((1, 0),), self.scale),))

    args = ["--model", str(tiny_long_dir), "--quick", "--layers", "1", "--methods", "toy_heads", "--head-scale", "0.5",
            "--n-stereoset", "4", "--n-crows-pairs", "4", "--n-bbq", "1", "--n-neutral", "2", "--n-bbq-disambig", "2",
            "--n-lms", "2", "--n-knowledge", "2", "--no-png", "--out", str(tmp_path / "debias")]  # fmt: skip
    try:
        result = debias.main(args)
    finally:
        del REGISTRY["toy_heads"]
    assert list(result.values["methods"]) == ["toy heads x0.5"] and "| toy heads x0.5 |" in capsys.readouterr().out


def _vector() -> SteeringVector:
    return SteeringVector("v", (1,), torch.ones(1, 8), torch.ones(1), "resid_pre", {})


@pytest.mark.fault
def test_bad_lora_data_or_heads_files_are_refused_before_the_model_loads(no_model, tmp_path, capsys):
    repeated = tmp_path / "pairs.csv"
    repeated.write_text("biased_text,debiased_text\na b,c d\nbiased_text,debiased_text\n", encoding="utf-8")
    one_claim = tmp_path / "one_claim.csv"
    one_claim.write_text("biased_text,debiased_text,target\na b,c d,t\ne f,g h,t\n", encoding="utf-8")
    not_heads = save_intervention(AddVector(_vector(), 1.0, [1]), tmp_path / "vector", {})
    listed = tmp_path / "list.json"
    listed.write_text("[[1, 0]]")
    refusals = [
        (["--lora-data", str(repeated)], "repeats the header"),
        (["--lora-data", str(one_claim)], "all 2 pairs share the target 't'"),
        (["--heads", str(not_heads)], "holds a add_vector, not a head scaling"),
        (["--heads", str(listed)], f"{listed} is not a lens_bias.Result/1 file (a JSON array or value)"),
    ]
    for argv, message in refusals:
        assert_refused(debias.main, ["--methods", "steering", "lora", "heads", *argv], message, capsys)


@pytest.mark.fault
def test_heads_outside_the_model_are_refused_before_the_first_method_is_fitted(tiny_llama_dir, tmp_path, monkeypatch):
    from lens_bias.debias.methods.steering import Steering

    def never(*args, **kwargs):
        raise AssertionError("a method was fitted before every method was checked")

    monkeypatch.setattr(Steering, "fit", never)
    heads = save_intervention(HeadScaling(((99, 0),), 0.0), tmp_path / "selected_heads", {})
    argv = ["--model", str(tiny_llama_dir), "--methods", "steering", "heads", "--heads", str(heads)]
    with pytest.raises(InputError, match=r"Heads \[\(99, 0\)\] are outside the model"):
        debias.main([*argv, "--layers", "1", "--out", str(tmp_path / "out")])
