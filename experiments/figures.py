"""Every figure of the study from one command: run each experiment (or redraw each from its saved result).

Runs, in order, each into its own folder under ``--out`` (default ``figures/``): ``bias_profile``,
``steering``, ``similarity``, ``patching`` (gender term swaps), ``patching_crows`` (CrowS-Pairs minimal
pairs, head targets), ``biasscope``, and ``side_effects`` of the interventions the steering study and
BiasScope saved. Every experiment saves its result with config and provenance and prints its summary;
``--replot`` redraws all figures from those saved results without loading a model. ``--device``,
``--seed`` and ``--batch-size`` are passed on to every step when given. The benchmarks
(``experiments.bench_*``) are not figures and are run on their own.

``--replot`` takes no value here: as ``--replot`` without a value in every experiment, it redraws from the
saved results under ``--out`` (each step's result in its folder; all must exist, checked before any step).

After a run or a replot, the index at the top of ``{--out}/README.md`` is rewritten from every result saved
under ``--out`` (:mod:`lens_bias.figures.index`: command, provenance, figures with captions, headline numbers);
``--index`` only rewrites it, from what is saved, without running anything.

    python -m experiments.figures [--model NAME] [--quick] [--only steering similarity ...]
    python -m experiments.figures --replot
    python -m experiments.figures --index
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from experiments import cli
from experiments.commands import command_line, experiment_config
from lens_bias.errors import InputError

if TYPE_CHECKING:  # imported where used: --help must not load torch
    from lens_bias.figures.index import Experiment

STEPS = ("bias_profile", "steering", "similarity", "patching", "patching_crows", "biasscope", "side_effects")


@dataclass(frozen=True)
class Config(cli.RunConfig):
    """Which steps to run (or redraw), and the flags every step gets. ``--device``, ``--seed`` and
    ``--batch-size`` are passed on to every step when given; omitted, each experiment keeps its own default."""

    only: tuple[str, ...] = field(default=STEPS, metadata={"help": "run these steps only", "choices": STEPS})
    quick: bool = field(default=False, metadata={"help": "every experiment's --quick (a smoke run)"})
    replot: bool = field(
        default=False, metadata={"help": "redraw every figure from the saved results under --out (no model)"}
    )
    index: bool = field(
        default=False, metadata={"help": "only rewrite {--out}/README.md's index from the saved results (no model)"}
    )
    # None = not passed on (each step's own default), hence the wider type than RunConfig's
    seed: int | None = field(
        default=None,  # type: ignore[assignment]
        metadata={"help": "every step's --seed (default: each step's own)"},
    )
    batch_size: int | None = field(
        default=None,  # type: ignore[assignment]
        metadata={"help": "every step's --batch-size (default: each step's own)", "min": 1},
    )

    def __post_init__(self) -> None:
        if not self.only:
            raise InputError("--only needs at least one step.")
        unknown = [step for step in self.only if step not in STEPS]
        if unknown:
            raise InputError(f"Unknown steps {unknown}: use {', '.join(STEPS)}.")
        if self.index and (self.replot or self.quick):
            raise InputError("--index runs nothing: drop --replot/--quick (a run or --replot rewrites the index too).")
        super().__post_init__()

    @property
    def steps(self) -> list[str]:
        """The steps to run, in the study's order."""
        return [step for step in STEPS if step in self.only]


def plan(step: str, config: Config) -> tuple[str, list[str], Path]:
    """(experiment module, its arguments, the result file it writes) for one step."""
    out = config.out / step
    shared = [
        *(["--device", config.device] if config.device is not None else []),
        *(["--seed", str(config.seed)] if config.seed is not None else []),
        *(["--batch-size", str(config.batch_size)] if config.batch_size is not None else []),
    ]
    common = ["--out", str(out), *([] if config.png else ["--no-png"]), *shared]
    model = ["--model", config.model]
    quick = ["--quick"] if config.quick else []
    patching_stem = "patching_quick" if config.quick else "patching"
    if step == "patching_crows":
        crows = ["--pairs", "crows_pairs", "--targets", "z"]
        return "patching", [*model, *quick, *common, *crows], out / f"{patching_stem}.json"
    if step == "patching":
        return "patching", [*model, *quick, *common], out / f"{patching_stem}.json"
    if step == "side_effects":
        steering = config.out / "steering" / "interventions"
        interventions = [str(steering / f"{name}.json") for name in ("gender", "refusal")]
        interventions.append(str(config.out / "biasscope" / "selected_heads.json"))
        sizes = ["--n-bbq-disambig", "40", "--n-lms", "40", "--n-neutral", "30"] if config.quick else []
        return "side_effects", [*model, *common, *sizes, "--intervention", *interventions], out / "side_effects.json"
    return step, [*model, *quick, *common], out / f"{step}.json"


def commands(config: Config) -> list[tuple[str, str, list[str]]]:
    """``(step, experiment module, its arguments)`` for every step of ``config``: the run, or with
    ``replot`` the redraw of each saved result (all of which must exist: checked before any step runs)."""
    planned = {step: plan(step, config) for step in config.steps}
    if not config.replot:
        return [(step, module, step_args) for step, (module, step_args, _) in planned.items()]
    missing = [f"{step} ({result})" for step, (_, _, result) in planned.items() if not result.exists()]
    if missing:
        steps = " ".join(step.split(" ")[0] for step in missing)
        raise InputError(
            f"No saved result for {', '.join(missing)}: run `python -m experiments.figures --only "
            f"{steps}` first (with the same --out and --quick)."
        )
    return [
        (step, module, ["--replot", str(result), *([] if config.png else ["--no-png"])])
        for step, (module, _, result) in planned.items()
    ]


def experiment(name: str) -> Experiment | None:
    """What the index shows of ``experiments.<name>``'s results (its command line from a saved config, its
    ``summarize``), or None when there is no such experiment (the result is an artefact)."""
    from lens_bias.figures.index import Experiment

    config = experiment_config(name)
    if config is None:
        return None
    summarize = getattr(importlib.import_module(f"experiments.{name}"), "summarize", None)
    return Experiment(lambda saved: command_line(name, config, saved), summarize if callable(summarize) else None)


def main(argv: list[str] | None = None) -> None:
    config, _ = cli.parse(Config, argv, description=__doc__)
    for step, module, step_args in [] if config.index else commands(config):
        print(f"== {step}: python -m experiments.{module} {' '.join(step_args)}", flush=True)
        importlib.import_module(f"experiments.{module}").main(step_args)
    from lens_bias.figures.index import write_index  # here, not at the top: --help speed

    print("wrote", write_index(config.out, experiment), "(index of the saved results)")


if __name__ == "__main__":
    cli.run(main)
