"""Main job: how much does a model prefer the stereotyped option, per bias type?

On held-out StereoSet pairs (split by target term) it measures, per bias type (gender, race, religion,
profession), the likelihood preference (mean per-token log P(stereotype) - log P(anti-stereotype) and the
share of pairs preferring the stereotype) and the A/B choice (P(stereotyped option) with the model's
position bias and format mass), all with bootstrap 95% intervals. Writes
``{out}/bias_profile.json`` (values + config + provenance) and ``{out}/bias_profile.{html,png}``.

    python -m experiments.bias_profile [--model NAME] [--n-pairs 120] [--quick]
    python -m experiments.bias_profile --replot figures/bias_profile/bias_profile.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from experiments import cli
from lens_bias.data import (
    STEREOSET_BIAS_TYPES,
    fingerprint,
    load_stereoset,
    sample,
    split_by_target,
    stereoset_pairs,
    to_ab_items,
)
from lens_bias.metrics import ab_preference, likelihood_preference
from lens_bias.models import EMBEDDED_MODEL, load_model, model_record
from lens_bias.plotting import bars_with_ci, save_figure
from lens_bias.prompts import template_for
from lens_bias.provenance import Result, collect_provenance, set_seed
from lens_bias.stats import Estimate

QUICK = {"n_pairs": 24}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=EMBEDDED_MODEL, help="model name or path (see lens_bias.load_model)")
    parser.add_argument("--bias-types", nargs="+", default=list(STEREOSET_BIAS_TYPES), choices=STEREOSET_BIAS_TYPES)
    parser.add_argument("--n-pairs", type=int, default=120, help="held-out pairs per bias type (0 = all)")
    parser.add_argument("--test-fraction", type=float, default=0.3, help="share of target terms held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=Path("figures/bias_profile"))
    parser.add_argument("--no-png", action="store_true", help="write HTML figures only")
    parser.add_argument("--quick", action="store_true", help="24 pairs per bias type (a smoke run)")
    parser.add_argument("--replot", type=Path, default=None, help="redraw the figure from a saved result")
    return cli.parse_args(parser, argv, quick=QUICK)


def held_out_pairs(bias_type: str, n_pairs: int | None, test_fraction: float, seed: int):
    """Held-out StereoSet pairs (intra- and intersentence) of one bias type, split by target term; ``n_pairs``
    of them drawn with ``seed`` (sorted by id), or all for None."""
    _, test = split_by_target(stereoset_pairs(load_stereoset(bias_types=[bias_type])), test_fraction, seed)
    return sample(test, n_pairs, seed, key=lambda pair: pair.id)


def draw(result: Result):
    """The figure of a saved bias-profile result."""
    types = list(result.values["per_bias_type"])
    per = result.values["per_bias_type"]
    series = {
        "likelihood: share preferring stereotype": [Estimate.from_dict(per[t]["likelihood"]["share_positive"]) for t in types],
        "A/B: P(stereotyped option)": [Estimate.from_dict(per[t]["ab"]["p_positive"]) for t in types],
        "A/B: position bias P(A)": [Estimate.from_dict(per[t]["ab"]["position_bias"]) for t in types],
    }
    model = result.provenance["model"]["name"]
    return bars_with_ci(types, series, title=f"Preference for the stereotype on held-out StereoSet pairs ({model})",
                        y_title="share / probability (0.5 = no preference)", reference_line=0.5)


def main(argv: list[str] | None = None) -> Result:
    args = parse_args(argv)
    if args.replot:
        result = Result.load(args.replot)
        print("wrote", *save_figure(draw(result), args.replot.with_suffix(""), png=not args.no_png))
        return result
    set_seed(args.seed)
    model = load_model(args.model, device=args.device)
    template = template_for(model)
    per_type, fingerprints = {}, {}
    for bias_type in args.bias_types:
        pairs = held_out_pairs(bias_type, args.n_pairs or None, args.test_fraction, args.seed)
        fingerprints[f"stereoset-{bias_type}-test"] = fingerprint(pairs)
        likelihood = likelihood_preference(model, pairs, batch_size=args.batch_size, seed=args.seed,
                                           progress=f"{bias_type}: likelihood")
        ab = ab_preference(model, to_ab_items(pairs, seed=args.seed), template, batch_size=args.batch_size,
                           seed=args.seed, progress=f"{bias_type}: A/B")
        per_type[bias_type] = {"likelihood": likelihood.to_dict(), "ab": ab.to_dict()}
        print(f"{bias_type:>10}: likelihood share {likelihood.share_positive}, mean diff "
              f"{likelihood.mean_logprob_diff} | A/B P(stereo) {ab.p_positive}, position bias "
              f"{ab.position_bias}, format mass {ab.format_mass}")
    config = {**vars(args), "out": str(args.out), "replot": None,
              "template": template.describe(model.tokenizer), "split": "stereoset dev, test side of split_by_target",
              "likelihood_by": "mean per-token log-prob", "ci": "bootstrap 95%"}
    result = Result(name="bias_profile", values={"per_bias_type": per_type}, config=config,
                    provenance=collect_provenance(model_record=model_record(model).to_dict(),
                                                  data=fingerprints, seed=args.seed))
    path = result.save(args.out / "bias_profile")
    print("wrote", path, *save_figure(draw(result), args.out / "bias_profile", png=not args.no_png))
    return result


if __name__ == "__main__":
    cli.run(main)
