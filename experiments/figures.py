"""Every figure of the study from one command: run each experiment (or redraw each from its saved result).

Runs :data:`STEPS` in order, each into its folder under ``--out`` (default ``figures/``) after the steps whose
output it uses (:data:`TAKES`; ``similarity_lora`` takes the fine-tune, ``side_effects`` the interventions of
steering and BiasScope). ``--device``, ``--seed`` and ``--batch-size`` go to every step when given; ``--quick``
gives every step its experiment's ``--quick``. Prints each step's wall time. Benchmarks are not figures.

Sizes (:data:`SIZES`): the experiments that default to an hour-long study run smaller here (``audit``: 300
StereoSet items and CrowS-Pairs pairs, 10 BBQ questions per category; ``debias``: five methods on 150 items each;
``circuits``: four contrasts of 8 pairs, EAP-IG with 2 steps; the full audit is ``figures/audit_full``).

``--replot`` (no value) redraws every figure from the saved results under ``--out`` (all must exist, checked
before any step), no model. After a run or a replot, the index at the top of ``{--out}/README.md`` is rewritten
from every result saved under ``--out`` (:mod:`lens_bias.figures.index`); ``--index`` only rewrites it.

    python -m experiments.figures [--model NAME] [--quick] [--only steering similarity ...]
    python -m experiments.figures --replot   # or --index
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from experiments import cli
from experiments.commands import experiment
from lens_bias.errors import InputError

STEPS = (
    "bias_profile", "steering", "similarity", "finetune", "similarity_lora", "patching", "patching_crows",
    "biasscope", "circuits", "side_effects", "audit", "debias",
)  # fmt: skip
#: The sizes of the steps run smaller than their experiment's defaults (without --quick; see the docstring).
SIZES = {
    "audit": "--n-stereoset 300 --n-crows-pairs 300 --n-bbq 10 --n-persona-bbq 4 --n-rewordings 1 "
    "--n-service-templates 6 --n-service-names 1 --n-service-samples 1 --max-new-tokens 32 --refusal-vector 0.5",
    "debias": "--methods steering alignez_ccs heads lora circuit_edges --steer-bias-types gender --lora-max-steps 20 "
    "--n-pairs 50 --alignez-tokens 32 --n-stereoset 150 --n-crows-pairs 150 --n-bbq 6 --n-neutral 40 "
    "--n-bbq-disambig 40 --n-lms 40 --n-knowledge 60",
    "finetune": "--max-steps 20 --n-eval 24",
    "circuits": "--pairs gender_swap gender_definitional stereoset:gender stereoset:race "
    "--steps 2 --n-pairs 8 --n-edges 16 --n-random 2 --circuit-sizes 30 100 300 1000 3000",
}
#: The earlier steps' outputs a step takes (not with --quick).
TAKES = {
    "debias": (("--heads", "biasscope/selected_heads.json"),),
    "circuits": (("--compare-checkpoint", "finetune/model"), ("--compare-circuits", "biasscope/biasscope.json")),
}


@dataclass(frozen=True)
class Config(cli.RunConfig):
    """Which steps to run (or redraw), and the flags every step gets (omitted: each experiment's own default)."""

    only: tuple[str, ...] = field(default=STEPS, metadata={"help": "run these steps only", "choices": STEPS})
    quick: bool = field(default=False, metadata={"help": "every experiment's --quick (a smoke run)"})
    replot: bool = field(
        default=False, metadata={"help": "redraw every figure from the saved results under --out (no model)"}
    )
    index: bool = field(
        default=False, metadata={"help": "only rewrite {--out}/README.md's index from the saved results (no model)"}
    )
    # None = not passed on (each step's own default), hence the wider type than RunConfig's
    seed: int | None = field(default=None, metadata={"help": "every step's --seed (default: each step's own)"})  # type: ignore[assignment]
    batch_size: int | None = field(default=None, metadata={"help": "every step's --batch-size", "min": 1})  # type: ignore[assignment]

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
    quick = ["--quick"] if config.quick else SIZES.get(step, "").split()
    if step in ("patching", "patching_crows"):  # CrowS-Pairs minimal pairs, head targets; else gender term swaps
        crows = ["--pairs", "crows_pairs", "--targets", "z"] if step == "patching_crows" else []
        return "patching", [*model, *quick, *common, *crows], out / f"patching{'_quick' if config.quick else ''}.json"
    if step == "side_effects":
        steering = config.out / "steering" / "interventions"
        interventions = [str(steering / f"{name}.json") for name in ("gender", "refusal")]
        interventions.append(str(config.out / "biasscope" / "selected_heads.json"))
        return "side_effects", [*model, *quick, *common, "--intervention", *interventions], out / "side_effects.json"
    if step == "similarity_lora":  # the model against its fine-tune (the finetune step's merged model)
        checkpoints = ["--base", config.model, "--chat", str(config.out / "finetune" / "model")]
        return "similarity", [*checkpoints, *quick, *common], out / "similarity.json"
    if step in TAKES and not config.quick:  # an earlier step's output, not a refit
        quick += [word for flag, path in TAKES[step] for word in (flag, str(config.out / path))]
    stem = f"{step}_quick" if step == "circuits" and config.quick else step
    return step, [*model, *quick, *common], out / f"{stem}.json"


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


def main(argv: list[str] | None = None) -> None:
    config, _ = cli.parse(Config, argv, description=__doc__)
    walls: dict[str, float] = {}
    for step, module, step_args in [] if config.index else commands(config):
        print(f"== {step}: python -m experiments.{module} {' '.join(step_args)}", flush=True)
        start = time.perf_counter()
        importlib.import_module(f"experiments.{module}").main(step_args)
        walls[step] = time.perf_counter() - start
        print(f"== {step}: {walls[step]:.0f} s", flush=True)
    if walls:
        steps = ", ".join(f"{step} {wall:.0f}" for step, wall in walls.items())
        print(f"wall time (s, model loads included): {steps}; all steps {sum(walls.values()):.0f}", flush=True)
    from lens_bias.figures.index import write_index  # here, not at the top: --help speed

    print("wrote", write_index(config.out, experiment), "(index of the saved results)")


if __name__ == "__main__":
    cli.run(main)
