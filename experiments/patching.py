"""Where does the model carry a gender stereotype? Activation patching on term-swap pairs.

Pairs come from the project's gender templates (:func:`lens_bias.data.patching_pairs.gender_swap_pairs`):
one template (``--group``, default ``occupation-t0``: "The {occupation} walked into the room and"), the
clean prompt with a term stereotyped one way (nurse -> " she"), the corrupted prompt with a term
stereotyped the other way (carpenter -> " he"). Metric: logit(clean's stereotyped pronoun) - logit(the
other pronoun) at the last prompt token. Kept: pairs whose clean and corrupted prompts tokenize to the
same length (the others are counted as dropped); among those the pairs of the most common length, so
that positions line up across pairs and scores can be averaged position by position; among those, in a
seeded random order, the first ``--n-pairs`` whose clean metric exceeds the corrupted one by at least
``--min-gap`` nats (the model shows the stereotype there, so normalised scores are well defined; how
many of the screened pairs do is reported).

For each target, exact activation patching (``--direction``, default denoising: clean activations into
the corrupted run; score 1 = clean behaviour restored, 0 = corrupted) and attribution patching, their
agreement (Pearson, top-10 overlap), and heatmaps of the pair-mean scores (layer x position with token
labels, or layer x head). Writes ``{out}/patching.json`` + ``.safetensors`` (per-pair scores) and
``{out}/patching_{target}_{exact|attribution}.{html,png}`` (``patching_quick*`` with ``--quick``).

    python -m experiments.patching [--model NAME] [--targets resid_pre attn_out mlp_out z] [--n-pairs 24]
        [--group occupation-t0] [--direction denoising] [--seed 0] [--out figures/patching] [--quick]
    python -m experiments.patching --replot figures/patching/patching.json
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from lens_bias.data.patching_pairs import gender_swap_groups, gender_swap_pairs
from lens_bias.data.records import fingerprint
from lens_bias.models import EMBEDDED_MODEL, load_model, model_record
from lens_bias.patching import (
    DIRECTIONS,
    TARGETS,
    PatchingInputs,
    PatchResult,
    agreement,
    attribution_patch,
    logit_diff_metric,
    patch,
    patching_inputs,
)
from lens_bias.plotting import heatmap, save_figure
from lens_bias.provenance import Result, collect_provenance, set_seed

DEFAULT_TARGETS = ["resid_pre", "attn_out", "mlp_out", "z"]
QUICK = {"n_pairs": 2, "targets": ["resid_pre", "z"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=EMBEDDED_MODEL, help="model name or path (see lens_bias.load_model)")
    parser.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS, choices=list(TARGETS))
    parser.add_argument("--n-pairs", type=int, default=24, help="pairs sampled from the template (0 = all)")
    parser.add_argument("--group", default="occupation-t0", choices=gender_swap_groups(),
                        help="the template the pairs come from")
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
    args = parser.parse_args(argv)
    if args.quick:  # smaller defaults; arguments given explicitly still win
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    return args


def metric_gaps(model, inputs: PatchingInputs, batch_size: int) -> torch.Tensor:
    """``[n_pairs]`` clean minus corrupted metric (nats) of every pair of ``inputs``, unpatched."""
    values = []
    for batch in (inputs.clean, inputs.corrupted):
        out = []
        for start in range(0, len(batch), batch_size):
            rows = slice(start, start + batch_size)
            chunk = batch[rows]
            with torch.inference_mode():
                logits = model(chunk.tokens.to(model.cfg.device))
            out.append(logit_diff_metric(inputs.positive_ids[rows], inputs.negative_ids[rows])(logits, chunk).cpu())
        values.append(torch.cat(out))
    return values[0] - values[1]


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
    random.Random(seed).shuffle(aligned)
    chosen, screened = [], 0
    for start in range(0, len(aligned), batch_size):
        block = aligned[start:start + batch_size]
        gaps = metric_gaps(model, patching_inputs(model.tokenizer, block), batch_size)
        screened += len(block)
        chosen += [pair for pair, gap in zip(block, gaps.tolist()) if gap >= min_gap]
        if n_pairs and len(chosen) >= n_pairs:
            break
    if not chosen:
        raise ValueError(f"None of the {screened} screened pairs of {group} has a clean - corrupted metric of "
                         f">= {min_gap} nats: lower --min-gap or choose another --group.")
    n_with_gap = len(chosen)
    chosen = sorted(chosen[:n_pairs] if n_pairs else chosen, key=lambda pair: pair.id)
    counts = {"candidates": len(candidates),
              "dropped_length_mismatch": len(usable.dropped["length_mismatch"]),
              "dropped_same_answer_token": len(usable.dropped["same_answer_token"]),
              "aligned_length_tokens": modal, "dropped_other_length": len(usable.pairs) - len(aligned),
              "aligned": len(aligned), "screened": screened,
              "screened_with_gap": n_with_gap, "min_gap_nats": min_gap, "used": len(chosen)}
    return patching_inputs(model.tokenizer, chosen), counts


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


def draw(result: Result, target: str, method: str):
    """Heatmap of the pair-mean scores of one target and method of a saved (or fresh) result."""
    entry = result.values["targets"][target]
    mean = np.asarray(entry[f"mean_{method}"], dtype=float)  # JSON null (NaN: padding) -> NaN
    mean = mean.reshape(len(entry["layers"]), -1)
    what = "patched score" if method == "exact" else "attribution estimate"
    title = (f"{target} {result.config['direction']}: {what} (1 = clean, 0 = corrupted)<br><sup>"
             f"{result.provenance['model']['name']}, {result.config['group']}, mean of {entry['n_pairs']} "
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
    inputs, counts = select_pairs(model, args.group, args.n_pairs, args.min_gap, args.seed, args.batch_size)
    metric = inputs.metric()
    print(f"{args.group}: {counts['candidates']} candidate pairs, {counts['dropped_length_mismatch']} dropped "
          f"(clean and corrupted of different token lengths), {counts['dropped_other_length']} of another "
          f"length than the most common ({counts['aligned_length_tokens']} tokens); of {counts['screened']} "
          f"screened, {counts['screened_with_gap']} have clean - corrupted >= {args.min_gap} nats; "
          f"{counts['used']} used")

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
    values["metric"] = {"name": "logit(stereotyped pronoun of the clean term) - logit(other pronoun), nats",
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
                                                  data={"gender_swap_pairs": fingerprint(inputs.pairs)},
                                                  seed=args.seed))
    stem = args.out / ("patching_quick" if args.quick else "patching")
    print("wrote", result.save(stem), *save_figures(result, stem, png=not args.no_png))
    return result


if __name__ == "__main__":
    main()
