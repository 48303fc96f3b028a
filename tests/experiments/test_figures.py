"""experiments.figures: each step's planned command line, the flags passed on, --replot of saved results."""

from __future__ import annotations

import importlib
import shlex

import pytest

from experiments import cli, figures, flags, patching
from lens_bias.errors import InputError
from lens_bias.figures.index import END, START
from lens_bias.provenance import Result


def _accepts(module_name: str, argv: list[str]) -> None:
    """The experiment's command line accepts ``argv`` (parsed only: files it names need not exist yet)."""
    module = importlib.import_module(f"experiments.{module_name}")
    flags.parser_for(module.Config, None).parse_args(argv)


@pytest.mark.parametrize("quick", [False, True])
def test_every_steps_planned_command_line_is_accepted_by_its_experiment(tmp_path, quick):
    config = figures.Config(model="some-model", quick=quick, out=tmp_path, png=False)
    for step in figures.STEPS:
        module, step_args, result = figures.plan(step, config)
        _accepts(module, step_args)
        assert result.parent == tmp_path / step
        assert ("--quick" in step_args) == quick
        assert step_args[step_args.index("--out") + 1] == str(tmp_path / step) and "--no-png" in step_args
        assert "--seed" not in step_args and "--device" not in step_args and "--batch-size" not in step_args


def test_every_study_is_a_step_after_the_steps_whose_output_it_reads(tmp_path):
    studies = {"bias_profile", "steering", "similarity", "patching", "circuits", "biasscope", "side_effects"}
    assert {figures.plan(step, figures.Config())[0] for step in figures.STEPS} >= studies | {"audit", "debias"}
    assert "finetune" in figures.STEPS  # every experiment that draws or prints a study, not the benchmarks
    config = figures.Config(out=tmp_path)
    planned = {step: figures.plan(step, config)[1] for step in figures.STEPS}
    reads = {  # step: (flag, the file of an earlier step it names)
        "similarity_lora": ("--chat", ("finetune", tmp_path / "finetune" / "model")),
        "debias": ("--heads", ("biasscope", tmp_path / "biasscope" / "selected_heads.json")),
        "circuits": ("--compare-circuits", ("biasscope", tmp_path / "biasscope" / "biasscope.json")),
    }
    for step, (flag, (producer, path)) in reads.items():
        assert planned[step][planned[step].index(flag) + 1] == str(path)
        assert figures.STEPS.index(producer) < figures.STEPS.index(step)
    for producer in ("steering", "biasscope"):  # side_effects takes their saved interventions
        assert figures.STEPS.index(producer) < figures.STEPS.index("side_effects")
        assert any(arg.startswith(str(tmp_path / producer)) for arg in planned["side_effects"])
    assert planned["similarity_lora"][:2] == ["--base", config.model]


def test_the_long_studies_run_smaller_and_quick_shrinks_every_step(tmp_path):
    for step, sizes in figures.SIZES.items():
        module, step_args, _ = figures.plan(step, figures.Config(out=tmp_path))
        parsed = flags.parser_for(importlib.import_module(f"experiments.{module}").Config, None).parse_args(step_args)
        assert sizes.split()[0] in step_args and not parsed.quick
        defaults = importlib.import_module(f"experiments.{module}").Config()
        for name in ("n_stereoset", "n_crows_pairs", "n_bbq", "n_pairs", "max_steps", "n_eval", "n_edges"):
            if hasattr(parsed, name):  # every size it sets is below the experiment's default (None: all)
                default = getattr(defaults, name)
                assert default is None or getattr(parsed, name) <= default, (step, name)
    quick = figures.Config(out=tmp_path, quick=True)
    for step in figures.STEPS:
        _, step_args, _ = figures.plan(step, quick)
        given = {arg for arg in step_args if arg.startswith("--")}
        assert not given & set(figures.SIZES.get(step, "").split())  # the experiment's own --quick sizes
    assert figures.plan("circuits", quick)[2] == tmp_path / "circuits" / "circuits_quick.json"
    assert "--heads" not in figures.plan("debias", quick)[1]  # --quick's methods fit no heads
    assert "--compare-checkpoint" not in figures.plan("circuits", quick)[1]
    assert "--compare-circuits" not in figures.plan("circuits", quick)[1]
    full = " ".join(figures.plan("circuits", figures.Config(out=tmp_path))[1])  # the finetune step's model
    assert f"--compare-checkpoint {tmp_path / 'finetune' / 'model'}" in full


def test_replot_covers_the_new_steps(tmp_path):
    steps = ["finetune", "similarity_lora", "circuits", "audit", "debias"]
    config = figures.Config(out=tmp_path, replot=True, only=tuple(steps), png=False)
    for step in steps:
        result = figures.plan(step, config)[2]
        result.parent.mkdir(parents=True)
        result.write_text("{}")
    planned = {step: (module, step_args) for step, module, step_args in figures.commands(config)}
    assert planned["similarity_lora"] == (
        "similarity",
        ["--replot", str(tmp_path / "similarity_lora" / "similarity.json"), "--no-png"],
    )
    assert planned["debias"] == ("debias", ["--replot", str(tmp_path / "debias" / "debias.json"), "--no-png"])
    assert planned["circuits"][1][1] == str(tmp_path / "circuits" / "circuits.json")


def test_shared_flags_are_passed_on_when_given(tmp_path):
    config, _ = cli.parse(
        figures.Config, ["--device", "cpu", "--seed", "3", "--batch-size", "4", "--out", str(tmp_path)]
    )
    for step in figures.STEPS:
        _, step_args, _ = figures.plan(step, config)
        joined = " ".join(step_args)
        assert "--device cpu" in joined and "--seed 3" in joined and "--batch-size 4" in joined


def test_the_config(tmp_path):
    config, replot = cli.parse(figures.Config, ["--replot", "--quick", "--only", "similarity", "bias_profile"])
    with pytest.raises(SystemExit):  # --replot takes no value here: the saved results under --out
        cli.parse(figures.Config, ["--replot", "x.json"])
    assert replot is None and config.replot and config.quick
    assert config.steps == ["bias_profile", "similarity"]  # the study's order
    assert cli.parse(figures.Config, [])[0].steps == list(figures.STEPS)
    with pytest.raises(SystemExit):
        cli.parse(figures.Config, ["--only", "everything"])
    with pytest.raises(InputError, match="--batch-size must be >= 1"):
        figures.main(["--batch-size", "0"])
    with pytest.raises(InputError, match="Unknown steps"):
        figures.Config(only=("everything",))


def test_replot_refuses_missing_results_before_redrawing_anything(tmp_path, capsys):
    with pytest.raises(InputError, match=r"No saved result for steering .*--only steering side_effects"):
        figures.main(["--replot", "--only", "steering", "side_effects", "--out", str(tmp_path)])
    assert "==" not in capsys.readouterr().out


def test_index_only_rewrites_the_readme_from_the_saved_results(tmp_path, capsys, no_model):
    readme = tmp_path / "README.md"
    readme.write_text("# Figures\n\nMeasured by hand: 0.42 [0.10, 0.90]\n")
    provenance = {"git": None, "model": None, "data": {}, "seed": 0, "timestamp_utc": "2026-01-02T03:04:05+00:00"}
    config = patching.Config(n_pairs=2, out=tmp_path / "patching")
    Result("patching", {}, config.to_dict(), provenance).save(tmp_path / "patching" / "patching")
    figures.main(["--index", "--out", str(tmp_path)])
    assert capsys.readouterr().out == f"wrote {readme} (index of the saved results)\n"  # no step ran
    text = readme.read_text()
    assert text.startswith(f"# Figures\n\n{START}\n")
    assert text.endswith(f"{END}\n\nMeasured by hand: 0.42 [0.10, 0.90]\n")  # the hand-written rest, kept
    assert f"- command: `python -m experiments.patching --out {shlex.quote(str(config.out))} --n-pairs 2`" in text
    assert "- seed 0; git not in a git checkout; saved 2026-01-02 03:04:05 UTC" in text
    assert "Figures not drawn (run --replot)" in text
    with pytest.raises(InputError, match="--index runs nothing"):
        figures.main(["--index", "--replot", "--out", str(tmp_path)])
    with pytest.raises(InputError, match="No folder"):
        figures.main(["--index", "--out", str(tmp_path / "missing")])


@pytest.mark.slow
def test_figures_runs_and_replots_every_step(tiny_long_dir, tmp_path, capsys):
    figures.main(
        [
            "--model",
            str(tiny_long_dir),
            "--quick",
            "--only",
            "bias_profile",
            "similarity",
            "--no-png",
            "--out",
            str(tmp_path),
        ]
    )
    assert (tmp_path / "bias_profile" / "bias_profile.json").exists()
    assert (tmp_path / "similarity" / "similarity.json").exists()
    capsys.readouterr()
    figures.main(["--replot", "--only", "bias_profile", "similarity", "--no-png", "--out", str(tmp_path)])
    assert "== similarity: python -m experiments.similarity --replot" in capsys.readouterr().out
    index = (tmp_path / "README.md").read_text()
    assert "## bias_profile: [`bias_profile/bias_profile.json`]" in index and "## similarity: [" in index
    assert "figures not drawn" not in index.lower()
    with pytest.raises(InputError, match="--only steering"):
        figures.main(["--replot", "--only", "steering", "--out", str(tmp_path)])
