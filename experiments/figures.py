"""Every figure of the study from one command: run each experiment (or redraw each from its saved result).

Runs, in order, each into its own folder under ``--out`` (default ``figures/``): ``bias_profile``,
``steering``, ``similarity``, ``patching`` (gender term swaps), ``patching_crows`` (CrowS-Pairs minimal
pairs, head targets), ``biasscope``, and ``side_effects`` of the interventions the steering study and
BiasScope saved. Every experiment saves its result with config and provenance and prints its summary;
``--replot`` redraws all figures from those saved results without loading a model. The benchmarks
(``experiments.bench_*``) are not figures and are run on their own.

    python -m experiments.figures [--model NAME] [--quick] [--only steering similarity ...]
    python -m experiments.figures --replot
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from experiments import cli
from lens_bias.models import EMBEDDED_MODEL

STEPS = ["bias_profile", "steering", "similarity", "patching", "patching_crows", "biasscope", "side_effects"]


def plan(step: str, args: argparse.Namespace) -> tuple[str, list[str], Path]:
    """(experiment module, its arguments, the result file it writes) for one step."""
    out = args.out / step
    common = ["--out", str(out)] + (["--no-png"] if args.no_png else [])
    model = ["--model", args.model]
    quick = ["--quick"] if args.quick else []
    patching_stem = "patching_quick" if args.quick else "patching"
    if step == "patching_crows":
        return "patching", [*model, *quick, *common, "--pairs", "crows-pairs", "--targets", "z"], out / f"{patching_stem}.json"
    if step == "patching":
        return "patching", [*model, *quick, *common], out / f"{patching_stem}.json"
    if step == "side_effects":
        steering = args.out / "steering" / "interventions"
        interventions = [str(steering / f"{name}.json") for name in ("gender", "refusal")]
        interventions.append(str(args.out / "biasscope" / "selected_heads.json"))
        sizes = ["--n-bbq", "40", "--n-lms", "40", "--n-neutral", "30"] if args.quick else []
        return "side_effects", [*model, *common, *sizes, "--intervention", *interventions], out / "side_effects.json"
    return step, [*model, *quick, *common], out / f"{step}.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=EMBEDDED_MODEL, help="model name or path (see lens_bias.load_model)")
    parser.add_argument("--only", nargs="+", default=STEPS, choices=STEPS, help="run these steps only")
    parser.add_argument("--quick", action="store_true", help="every experiment's --quick (a smoke run)")
    parser.add_argument("--replot", action="store_true", help="redraw every figure from the saved results")
    parser.add_argument("--out", type=Path, default=Path("figures"))
    parser.add_argument("--no-png", action="store_true", help="write HTML figures only")
    args = parser.parse_args(argv)
    for step in [s for s in STEPS if s in args.only]:
        module, step_args, result = plan(step, args)
        if args.replot:
            if not result.exists():
                raise FileNotFoundError(f"No saved result for {step} at {result}: run `python -m experiments.figures "
                                        f"--only {step}` first.")
            step_args = ["--replot", str(result)] + (["--no-png"] if args.no_png else [])
        print(f"== {step}: python -m experiments.{module} {' '.join(step_args)}", flush=True)
        importlib.import_module(f"experiments.{module}").main(step_args)


if __name__ == "__main__":
    cli.run(main)
