"""Side effects of saved interventions: what each one costs, next to the unintervened model, on the same items.

Takes any saved intervention file (``lens_bias.interventions.load_intervention``): a head scaling written
by ``experiments.biasscope`` (``selected_heads.json``) or a steering vector at a layer and multiplier
written by ``experiments.steering`` (``interventions/{name}.json``). Each is evaluated on its own against
one shared baseline: neutral-text log-probability, BBQ disambiguated accuracy and the StereoSet LMS, each
with a 95% bootstrap interval and the paired change (see :mod:`lens_bias.side_effects`).

    python -m experiments.side_effects --intervention figures/steering/interventions/gender.json \\
        figures/biasscope/selected_heads.json
    python -m experiments.side_effects --replot figures/side_effects/side_effects.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments import cli
from lens_bias.interventions import load_intervention
from lens_bias.models import EMBEDDED_MODEL, load_model, model_record
from lens_bias.plotting import save_figure, side_effect_table
from lens_bias.provenance import Result, collect_provenance, set_seed
from lens_bias.side_effects import (
    SideEffectConfig,
    capability_scores,
    check_applicable,
    side_effects,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intervention", type=Path, nargs="+", help="saved intervention files (.json)")
    parser.add_argument("--model", default=EMBEDDED_MODEL, help="model name or path (see lens_bias.load_model)")
    parser.add_argument("--n-neutral", type=int, default=None, help="neutral sentences (default: all 110)")
    parser.add_argument("--n-bbq", type=int, default=150, help="disambiguated BBQ questions")
    parser.add_argument("--n-lms", type=int, default=150, help="StereoSet items for the LMS")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=Path("figures/side_effects"))
    parser.add_argument("--no-png", action="store_true", help="write HTML figures only")
    parser.add_argument("--replot", type=Path, default=None, help="redraw the table from a saved result")
    args = parser.parse_args(argv)
    if not args.replot and not args.intervention:
        parser.error("give --intervention FILE [FILE ...] (or --replot RESULT.json)")
    return args


def run(args: argparse.Namespace) -> Path:
    """Score the baseline once, then every intervention; save the reports with their config."""
    set_seed(args.seed)
    loaded = {str(path): load_intervention(path) for path in args.intervention}
    check_applicable(list(loaded.values()))  # fail before loading the model
    model = load_model(args.model, device=args.device)
    config = SideEffectConfig(n_neutral=args.n_neutral, n_bbq=args.n_bbq, n_stereoset=args.n_lms, seed=args.seed,
                              batch_size=args.batch_size)
    baseline = capability_scores(model, (), config, progress=True)
    reports = {}
    for name, intervention in loaded.items():
        report = side_effects(model, [intervention], config, baseline=baseline, progress=True)
        reports[name] = report.to_dict()
        print(f"{name}: " + "; ".join(f"{e.name} {e.baseline} -> {e.intervened}, change {e.delta}"
                                      for e in report.effects) + f"; significantly worse: {report.harmed() or 'none'}")
    details = next(iter(reports.values()))["details"]
    result = Result(name="side_effects", values={"reports": reports},
                    config={**vars(args), "intervention": [str(p) for p in args.intervention], "out": str(args.out),
                            "replot": None, "side_effect_config": vars(config)},
                    provenance=collect_provenance(model_record=model_record(model).to_dict(), seed=args.seed,
                                                  data=details["fingerprints"]))
    path = result.save(args.out / "side_effects")
    print("wrote", path)
    return path


def main(argv: list[str] | None = None) -> Result:
    args = parse_args(argv)
    path = args.replot or run(args)
    result = Result.load(path)  # the table is drawn from the saved result, as on --replot
    print("wrote", *save_figure(side_effect_table(result.values["reports"]), Path(path).parent / "side_effects",
                                png=not args.no_png))
    return result


if __name__ == "__main__":
    cli.run(main)
