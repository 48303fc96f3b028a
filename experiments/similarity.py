"""Cosine-similarity maps between bias-type steering vectors, within one model or across two checkpoints.

Within a model (``--model``): per layer, the bias x bias cosine matrix of the StereoSet bias-type vectors
(and the gender prompt-set vector), each vector's split-half reliability, a shuffled-label null, the mean
off-diagonal similarity with a bootstrap interval, and a layer x layer map per vector.
Across checkpoints (``--base`` and ``--chat``, same architecture, processed identically): per layer the
similarity of each bias vector with itself across the two, and the mean off-diagonal similarity in each
with intervals and their difference: "RLHF makes different biases' representations more similar"
becomes a number with an interval.

    python -m experiments.similarity [--model NAME] [--quick]
    python -m experiments.similarity --base llama-2-7b --chat llama-2-7b-chat
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from plotly.subplots import make_subplots

from experiments import cli
from lens_bias.data import STEREOSET_BIAS_TYPES, contrast_split
from lens_bias.models import EMBEDDED_MODEL, load_model, model_record
from lens_bias.plotting import heatmap, lines_with_ci, save_figures
from lens_bias.provenance import Result, collect_provenance, set_seed
from lens_bias.similarity import (
    bias_by_bias,
    compare_checkpoints,
    layer_by_layer,
    off_diagonal_mean,
    shuffled_null,
    split_half,
)
from lens_bias.stats import Estimate
from lens_bias.steering import fit_vector


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=EMBEDDED_MODEL, help="model for the within-model maps")
    parser.add_argument("--base", default=None, help="first checkpoint (e.g. llama-2-7b) for a comparison")
    parser.add_argument("--chat", default=None, help="second checkpoint (e.g. llama-2-7b-chat)")
    parser.add_argument("--contrasts", nargs="+", default=[*STEREOSET_BIAS_TYPES, "gender-prompts"])
    parser.add_argument("--layers", type=int, nargs="*", default=None, help="default: every layer")
    parser.add_argument("--n-pairs", type=int, default=100, help="training pairs per contrast")
    parser.add_argument("--readout", choices=["last", "mean_from_difference"], default="mean_from_difference")
    parser.add_argument("--method", choices=["mean_difference", "first_pc"], default="mean_difference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--out", type=Path, default=Path("figures/similarity"))
    parser.add_argument("--no-png", action="store_true")
    parser.add_argument("--quick", action="store_true", help="24 pairs, every third layer")
    parser.add_argument("--replot", type=Path, default=None, help="redraw figures from a saved result")
    return cli.parse_args(parser, argv, quick={"n_pairs": 24})


def vectors_for(model, args, layers):
    """Vectors and paired activations per contrast, built identically for every checkpoint."""
    vectors, activations, data = {}, {}, {}
    for name in args.contrasts:
        split = contrast_split(name, n_train=args.n_pairs, seed=args.seed)
        fitted = fit_vector(model, split, layers, readout=args.readout, method=args.method, batch_size=args.batch_size,
                            seed=args.seed, held_out=False, progress=name)
        vectors[name], activations[name], data[name] = fitted.vector, fitted.train, split.describe()
    return vectors, activations, data


def within_model(vectors, activations, seed):
    names = list(vectors)
    null = torch.stack([shuffled_null(activations[a], activations[b], seed=seed)
                        for i, a in enumerate(names) for b in names[i + 1:]])  # [pairs, draws, layers]
    return {
        "contrasts": names,
        "layers": list(next(iter(vectors.values())).layers),
        "bias_by_bias": bias_by_bias(vectors).tolist(),
        "split_half": {name: split_half(activations[name], seed=seed).tolist() for name in names},
        "null_abs_q95": null.abs().flatten(0, 1).quantile(0.95, dim=0).tolist(),
        "off_diagonal": [e.to_dict() for e in off_diagonal_mean(activations, seed=seed)],
        "layer_by_layer": {name: layer_by_layer(vectors[name]).tolist() for name in names},
    }


def _shown(layers: list[int]) -> list[int]:
    """The first, last and two evenly spaced layers in between (the layers figures and summaries show)."""
    return sorted({layers[0], layers[len(layers) // 3], layers[2 * len(layers) // 3], layers[-1]})


def draw(result: Result) -> dict[str, object]:
    """Figures from a saved similarity result: name -> plotly figure."""
    values, model = result.values, result.provenance["model"]["name"]
    figures = {}
    within = values.get("within")
    if within:
        layers, names = within["layers"], within["contrasts"]
        shown = _shown(layers)
        grid = make_subplots(rows=1, cols=len(shown), subplot_titles=[f"layer {l}" for l in shown])
        for col, layer in enumerate(shown, start=1):
            sub = heatmap(within["bias_by_bias"][layers.index(layer)], names, names, title="t", x_title="bias type",
                          y_title="bias type", zmid=0, text_fmt=".2f")
            for trace in sub.data:
                trace.update(zmin=-1, zmax=1, showscale=col == len(shown))
                grid.add_trace(trace, row=1, col=col)
            grid.update_yaxes(showticklabels=col == 1, row=1, col=col)
        grid.update_layout(title=f"Cosine similarity between bias vectors ({model})", width=320 * len(shown) + 100)
        figures["bias_by_bias"] = grid
        series = {"mean off-diagonal cosine": [Estimate.from_dict(e) for e in within["off_diagonal"]]}
        series.update({f"split-half {n}": [Estimate(v, v, v, 0) for v in within["split_half"][n]] for n in names})
        series["shuffled-label null |cos| (95th pct)"] = [Estimate(v, v, v, 0) for v in within["null_abs_q95"]]
        figures["baselines"] = lines_with_ci(layers, series, title=f"Bias-vector similarity and its baselines ({model})",
                                             x_title="layer", y_title="cosine similarity")
        for name in names:
            figures[f"layers_{name}"] = heatmap(within["layer_by_layer"][name], layers, layers,
                                                title=f"{name}: cosine between layers ({model})",
                                                x_title="layer", y_title="layer", zmid=0)
    cross = values.get("cross")
    if cross:
        series = {"base: mean off-diagonal": [Estimate.from_dict(e) for e in cross["off_diagonal_a"]],
                  "chat: mean off-diagonal": [Estimate.from_dict(e) for e in cross["off_diagonal_b"]],
                  "chat - base": [Estimate.from_dict(e) for e in cross["difference"]]}
        figures["cross_off_diagonal"] = lines_with_ci(cross["layers"], series, title="Bias-bias similarity: base vs chat",
                                                      x_title="layer", y_title="cosine similarity")
        figures["cross_self"] = lines_with_ci(
            cross["layers"], {b: [Estimate(v, v, v, 0) for v in vs] for b, vs in cross["self_similarity"].items()},
            title="Same bias vector across checkpoints", x_title="layer", y_title="cosine(base, chat)")
    return figures


def summarize(result: Result) -> str:
    """Headline numbers at four layers: bias x bias cosines next to their baselines; the cross-checkpoint
    comparison when there is one."""
    values, lines = result.values, []
    within = values.get("within")
    if within:
        layers, names = within["layers"], within["contrasts"]
        for layer in _shown(layers):
            i = layers.index(layer)
            matrix = within["bias_by_bias"][i]
            pairs = ", ".join(f"{a}/{b} {matrix[x][y]:.2f}" for x, a in enumerate(names) for y, b in enumerate(names) if x < y)
            halves = ", ".join(f"{n} {within['split_half'][n][i]:.2f}" for n in names)
            lines.append(f"layer {layer}: mean off-diagonal cosine {Estimate.from_dict(within['off_diagonal'][i])}; "
                         f"shuffled-label null |cos| q95 {within['null_abs_q95'][i]:.2f}")
            lines.append(f"    pairs: {pairs}")
            lines.append(f"    split-half reliability: {halves}")
    cross = values.get("cross")
    if cross:
        for layer in _shown(cross["layers"]):
            i = cross["layers"].index(layer)
            self_sim = ", ".join(f"{b} {vs[i]:.2f}" for b, vs in cross["self_similarity"].items())
            lines.append(f"layer {layer}: off-diagonal base {Estimate.from_dict(cross['off_diagonal_a'][i])}, chat "
                         f"{Estimate.from_dict(cross['off_diagonal_b'][i])}, chat - base "
                         f"{Estimate.from_dict(cross['difference'][i])}; same vector across checkpoints: {self_sim}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> Result:
    args = parse_args(argv)
    if args.replot:
        result = Result.load(args.replot)
        print(summarize(result))
        save_figures(draw(result), args.replot.parent, png=not args.no_png)
        return result
    if (args.base is None) != (args.chat is None):
        raise SystemExit("Give both --base and --chat for a cross-checkpoint comparison (or neither).")
    set_seed(args.seed)
    names = [args.base, args.chat] if args.base else [args.model]
    models, built = {}, {}
    for name in names:
        model = load_model(name, device=args.device, dtype=args.dtype)
        layers = args.layers or list(range(0, model.cfg.n_layers, 3 if args.quick else 1))
        built[name] = vectors_for(model, args, layers)
        models[name] = model_record(model).to_dict()
        del model
    values = {"within": within_model(*built[names[-1]][:2], args.seed)}
    if args.base:
        comparison = compare_checkpoints(built[args.base][0], built[args.chat][0], built[args.base][1],
                                         built[args.chat][1], seed=args.seed)
        values["cross"] = {"layers": list(comparison.layers), "self_similarity": comparison.self_similarity,
                           "off_diagonal_a": [e.to_dict() for e in comparison.off_diagonal_a],
                           "off_diagonal_b": [e.to_dict() for e in comparison.off_diagonal_b],
                           "difference": [e.to_dict() for e in comparison.difference]}
    config = {**vars(args), "out": str(args.out), "replot": None}
    result = Result(name="similarity", values=values, config=config,
                    provenance=collect_provenance(model_record=models[names[-1]], seed=args.seed,
                                                  data={k: v["train_fingerprint"] for k, v in built[names[-1]][2].items()})
                    | {"models": models, "contrasts": built[names[-1]][2]})
    print(summarize(result))
    print("wrote", result.save(args.out / "similarity"))
    for name, vector in built[names[-1]][0].items():
        vector.save(args.out / "vectors" / name)
    save_figures(draw(result), args.out, png=not args.no_png)
    return result


if __name__ == "__main__":
    cli.run(main)
