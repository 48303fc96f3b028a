"""Where does the model carry a stereotype? Activation patching on term-swap pairs.

``--pairs gender-swap`` (default): pairs come from the project's gender templates (:func:`lens_bias.data.patching_pairs.gender_swap_pairs`):
one template (``--group``, default ``occupation-t0``: "The {occupation} walked into the room and"), the
clean prompt with a term stereotyped one way (nurse -> " she"), the corrupted prompt with a term
stereotyped the other way (carpenter -> " he"). Metric: logit(clean's stereotyped pronoun) - logit(the
other pronoun) at the last prompt token. Kept: pairs whose clean and corrupted prompts tokenize to the
same length (the others are counted as dropped); among those the pairs of the most common length, so
that positions line up across pairs and scores can be averaged position by position; among those, in a
seeded random order, the first ``--n-pairs`` whose clean metric exceeds the corrupted one by at least
``--min-gap`` nats (the model shows the stereotype there, so normalised scores are well defined; how
many of the screened pairs do is reported).

``--pairs crows-pairs``: CrowS-Pairs sentences (``--crows-types``, default all nine types), clean = the more
stereotyping sentence, corrupted = the other, kept where the two differ in one span of tokens of the same
length and share the rest of the sentence after it (:func:`lens_bias.patching.minimal_pair_inputs`).
Metric: the summed log-probability of that shared continuation. Pairs differ in length and wording, so
positions do not line up across pairs: only whole-layer head targets (``z``, ``k``, ``v``) are averaged.

For each target, exact activation patching (``--direction``, default denoising: clean activations into
the corrupted run; score 1 = clean behaviour restored, 0 = corrupted) and attribution patching, their
agreement (Pearson, top-10 overlap), and heatmaps of the pair-mean scores (layer x position with token
labels, or layer x head). Writes ``{out}/patching.json`` + ``.safetensors`` (per-pair scores) and
``{out}/patching_{target}_{exact|attribution}.{html,png}`` (``patching_quick*`` with ``--quick``).

    python -m experiments.patching [--model NAME] [--targets resid_pre attn_out mlp_out z] [--n-pairs 24]
        [--group occupation-t0] [--direction denoising] [--seed 0] [--out figures/patching] [--quick]
    python -m experiments.patching --pairs crows-pairs --targets z [--crows-types race-color gender]
    python -m experiments.patching --replot figures/patching/patching.json
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

from experiments import cli
from lens_bias.data import CROWS_BIAS_TYPES, crows_pairs_contrast, load_crows_pairs
from lens_bias.data.patching_pairs import gender_swap_groups, gender_swap_pairs
from lens_bias.data.records import fingerprint
from lens_bias.models import EMBEDDED_MODEL, load_model, model_record
from lens_bias.patching import (
    DIRECTIONS,
    TARGETS,
    PatchResult,
    agreement,
    attribution_patch,
    minimal_pair_inputs,
    patch,
    patching_inputs,
    screen_pairs,
)
from lens_bias.plotting import heatmap, save_figure
from lens_bias.provenance import Result, collect_provenance, set_seed

DEFAULT_TARGETS = ["resid_pre", "attn_out", "mlp_out", "z"]
QUICK = {"n_pairs": 2, "targets": ["resid_pre", "z"]}
METRIC_NAMES = {"gender-swap": "logit(stereotyped pronoun of the clean term) - logit(other pronoun), nats",
                "crows-pairs": "summed log P of the sentence after the swapped term, nats"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=EMBEDDED_MODEL, help="model name or path (see lens_bias.load_model)")
    parser.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS, choices=list(TARGETS))
    parser.add_argument("--n-pairs", type=int, default=24, help="pairs sampled from the template (0 = all)")
    parser.add_argument("--pairs", default="gender-swap", choices=["gender-swap", "crows-pairs"])
    parser.add_argument("--group", default="occupation-t0", choices=gender_swap_groups(),
                        help="gender-swap pairs: the template the pairs come from")
    parser.add_argument("--crows-types", nargs="+", default=None, choices=CROWS_BIAS_TYPES,
                        help="crows-pairs: bias types (default all)")
    parser.add_argument("--direction", default="denoising", choices=DIRECTIONS)
    parser.add_argument("--min-gap", type=float, default=1.0,
                        help="keep pairs whose clean - corrupted metric is at least this (nats)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64, help="rows per patched forward")
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=Path("figures/patching"))
    parser.add_argument("--no-png", action="store_true", help="write HTML figures only")
    parser.add_argument("--replot", type=Path, default=None, help="redraw the figures from a saved result")
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK['n_pairs']} pairs, targets {' '.join(QUICK['targets'])} (a smoke run)")
    args = cli.parse_args(parser, argv, quick=QUICK)
    if args.pairs == "crows-pairs" and any(TARGETS[t].unit != "head" for t in args.targets):
        parser.error("crows-pairs sentences do not share positions across pairs: use whole-layer head targets "
                     "(--targets z, k or v)")
    return args


def select_crows_pairs(model, types, n_pairs: int, min_gap: float, seed: int, batch_size: int):
    """CrowS-Pairs minimal pairs (see the module docstring), screened by :func:`lens_bias.patching.screen_pairs`.
    Returns (inputs, counts)."""
    candidates = crows_pairs_contrast(load_crows_pairs(types))
    usable = minimal_pair_inputs(model.tokenizer, candidates)
    screening = screen_pairs(model, usable.pairs, lambda block: minimal_pair_inputs(model.tokenizer, block),
                             n_pairs=n_pairs, min_gap=min_gap, seed=seed, batch_size=batch_size)
    counts = {"candidates": len(candidates), **{f"dropped_{k}": len(v) for k, v in usable.dropped.items()},
              "usable": len(usable.pairs), "screened": screening.n_screened,
              "screened_with_gap": screening.n_with_gap, "min_gap_nats": min_gap, "used": len(screening.pairs)}
    return minimal_pair_inputs(model.tokenizer, screening.pairs), counts


def select_pairs(model, group: str, n_pairs: int, min_gap: float, seed: int, batch_size: int):
    """Pairs of one template: same clean/corrupted token length; of the most common length (positions
    line up); screened in a seeded random order until ``n_pairs`` (0 = all) have a clean minus corrupted
    metric of at least ``min_gap`` nats (the model shows the stereotype: scores can be normalised).
    Returns (inputs, counts)."""
    candidates = gender_swap_pairs(groups=[group])
    usable = patching_inputs(model.tokenizer, candidates)
    lengths = usable.clean.lengths.tolist()
    modal = Counter(lengths).most_common(1)[0][0]
    aligned = [pair for pair, length in zip(usable.pairs, lengths) if length == modal]
    screening = screen_pairs(model, aligned, lambda block: patching_inputs(model.tokenizer, block),
                             n_pairs=n_pairs, min_gap=min_gap, seed=seed, batch_size=batch_size)
    counts = {"candidates": len(candidates),
              "dropped_length_mismatch": len(usable.dropped["length_mismatch"]),
              "dropped_same_answer_token": len(usable.dropped["same_answer_token"]),
              "aligned_length_tokens": modal, "dropped_other_length": len(usable.pairs) - len(aligned),
              "aligned": len(aligned), "screened": screening.n_screened,
              "screened_with_gap": screening.n_with_gap, "min_gap_nats": min_gap, "used": len(screening.pairs)}
    return patching_inputs(model.tokenizer, screening.pairs), counts


def x_labels(result: PatchResult) -> tuple[list[str], str]:
    """Column labels and axis title of a result's heatmap: positions (token labels), heads, or one column
    per (position, head), position-major."""
    axes = result.axes[2:]
    if axes == ("pos",):
        return result.position_labels(), "position (token)"
    if axes == ("head",):
        return result.head_labels(), "head"
    return ([f"{position} {head}" for position in result.position_labels() for head in result.head_labels()],
            "position (token), head")


def _pairs_label(config: dict) -> str:
    if config.get("pairs") == "crows-pairs":
        return f"CrowS-Pairs ({', '.join(config['crows_types'] or ['all types'])})"
    return f"template {config['group']}"


def draw(result: Result, target: str, method: str):
    """Heatmap of the pair-mean scores of one target and method of a saved (or fresh) result."""
    entry = result.values["targets"][target]
    mean = np.asarray(entry[f"mean_{method}"], dtype=float)  # JSON null (NaN: padding) -> NaN
    mean = mean.reshape(len(entry["layers"]), -1)
    what = "patched score" if method == "exact" else "attribution estimate"
    title = (f"{target} {result.config['direction']}: {what} (1 = clean, 0 = corrupted)<br><sup>"
             f"{result.provenance['model']['name']}, {_pairs_label(result.config)}, mean of {entry['n_pairs']} "
             "pairs</sup>")
    return heatmap(mean, entry["x_labels"], [str(layer) for layer in entry["layers"]], title=title,
                   x_title=entry["x_title"], y_title="layer", zmid=0)


def save_figures(result: Result, stem: Path, *, png: bool) -> list[Path]:
    """Every heatmap of a result: ``{stem}_{target}_{exact|attribution}.{html,png}``."""
    return [path for target in result.values["targets"] for method in ("exact", "attribution")
            for path in save_figure(draw(result, target, method), f"{stem}_{target}_{method}", png=png)]


def main(argv: list[str] | None = None) -> Result:
    args = parse_args(argv)
    if args.replot:
        result = Result.load(args.replot)
        print("wrote", *save_figures(result, args.replot.with_suffix(""), png=not args.no_png))
        return result
    set_seed(args.seed)
    model = load_model(args.model, device=args.device)
    if args.pairs == "crows-pairs":
        inputs, counts = select_crows_pairs(model, args.crows_types, args.n_pairs, args.min_gap, args.seed,
                                            args.batch_size)
        print(f"crows-pairs: {counts['candidates']} candidate pairs, {counts['usable']} minimal pairs (dropped: "
              f"{counts['dropped_length_mismatch']} of different token lengths, {counts['dropped_not_one_span']} "
              f"not one swapped span, {counts['dropped_no_shared_continuation']} swapped at the end)", end="; ")
    else:
        inputs, counts = select_pairs(model, args.group, args.n_pairs, args.min_gap, args.seed, args.batch_size)
        print(f"{args.group}: {counts['candidates']} candidate pairs, {counts['dropped_length_mismatch']} dropped "
              f"(clean and corrupted of different token lengths), {counts['dropped_other_length']} of another "
              f"length than the most common ({counts['aligned_length_tokens']} tokens)", end="; ")
    print(f"of {counts['screened']} screened, {counts['screened_with_gap']} have clean - corrupted >= "
          f"{args.min_gap} nats; {counts['used']} used")
    metric = inputs.metric()

    values, tensors = {"pairs": counts, "targets": {}}, {}
    for target in args.targets:
        exact = patch(model, inputs.clean, inputs.corrupted, metric, target=target, direction=args.direction,
                      batch_size=args.batch_size, progress=f"{target}: exact")
        approx = attribution_patch(model, inputs.clean, inputs.corrupted, metric, target=target,
                                   direction=args.direction)
        report = agreement(exact, approx, k=10)
        labels, x_title = x_labels(exact)
        values["targets"][target] = {"agreement": report, "axes": list(exact.axes), "layers": exact.layers,
                                     "x_labels": labels, "x_title": x_title,
                                     "n_pairs": int((~exact.degenerate).sum()), "exact_config": exact.config,
                                     "mean_exact": exact.mean(), "mean_attribution": approx.mean()}
        tensors[f"{target}.exact"], tensors[f"{target}.attribution"] = exact.scores, approx.scores
        print(f"{target:>10}: {exact.config['n_forwards']} forwards; attribution vs exact: Pearson "
              f"{report['pearson']:.3f}, top-{report['k']} overlap {report['top_k_overlap']:.2f}")
    gap = exact.clean_metric - exact.corrupted_metric
    values["metric"] = {"name": METRIC_NAMES[args.pairs],
                        "clean_mean": exact.clean_metric.mean(), "corrupted_mean": exact.corrupted_metric.mean(),
                        "share_clean_above_corrupted": (gap > 0).float().mean(),
                        "n_degenerate": int(exact.degenerate.sum())}
    tensors["clean_metric"], tensors["corrupted_metric"] = exact.clean_metric, exact.corrupted_metric
    print(f"metric: clean {exact.clean_metric.mean():.2f}, corrupted {exact.corrupted_metric.mean():.2f} nats; "
          f"clean > corrupted in {int((gap > 0).sum())} of {len(gap)} pairs; {int(exact.degenerate.sum())} degenerate")
    config = {**vars(args), "out": str(args.out), "replot": None,
              "pair_ids": [pair.id for pair in inputs.pairs], "position_labels": exact.position_labels(),
              "clean_texts": inputs.clean.texts, "corrupted_texts": inputs.corrupted.texts,
              "normalisation": "(patched - corrupted) / (clean - corrupted), both directions",
              "agreement": "lens_bias.patching.agreement on pair-mean effects, k=10"}
    result = Result(name="patching", values=values, config=config, tensors=tensors,
                    provenance=collect_provenance(model_record=model_record(model).to_dict(),
                                                  data={args.pairs: fingerprint(inputs.pairs)},
                                                  seed=args.seed))
    stem = args.out / ("patching_quick" if args.quick else "patching")
    print("wrote", result.save(stem), *save_figures(result, stem, png=not args.no_png))
    return result


if __name__ == "__main__":
    cli.run(main)
