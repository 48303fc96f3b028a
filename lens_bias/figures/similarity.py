"""The similarity study's figures and summary, from its saved result (``experiments.similarity``): bias x
bias cosines at four layers, the baselines per layer, each vector's layer x layer map, and the base vs chat
comparison (:func:`draw`); the headline numbers (:func:`summary`)."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lens_bias.figures.primitives import heatmap, lines_with_ci
from lens_bias.provenance import Result
from lens_bias.stats import Estimate


def _shown(layers: list[int]) -> list[int]:
    """The first, last and two evenly spaced layers in between (the layers figures and summaries show)."""
    return sorted({layers[0], layers[len(layers) // 3], layers[2 * len(layers) // 3], layers[-1]})


def draw(result: Result) -> dict[str, go.Figure]:
    """Figures from a saved similarity result: name -> plotly figure."""
    values, model = result.values, result.provenance["model"]["name"]
    figures = {}
    within = values.get("within")
    if within:
        layers, names = within["layers"], within["contrasts"]
        shown = _shown(layers)
        grid = make_subplots(rows=1, cols=len(shown), subplot_titles=[f"layer {l}" for l in shown])
        for col, layer in enumerate(shown, start=1):
            sub = heatmap(
                within["bias_by_bias"][layers.index(layer)],
                names,
                names,
                title="t",
                x_title="bias type",
                y_title="bias type",
                zmid=0,
                text_fmt=".2f",
            )
            for trace in sub.data:
                trace.update(zmin=-1, zmax=1, showscale=col == len(shown))
                grid.add_trace(trace, row=1, col=col)
            grid.update_yaxes(showticklabels=col == 1, row=1, col=col)
        grid.update_layout(title=f"Cosine similarity between bias vectors ({model})", width=320 * len(shown) + 100)
        figures["bias_by_bias"] = grid
        series = {"mean off-diagonal cosine": [Estimate.from_dict(e) for e in within["off_diagonal"]]}
        series.update({f"split-half {n}": [Estimate(v, v, v, 0) for v in within["split_half"][n]] for n in names})
        series["shuffled-label null |cos| (95th pct)"] = [Estimate(v, v, v, 0) for v in within["null_abs_q95"]]
        figures["baselines"] = lines_with_ci(
            layers,
            series,
            title=f"Bias-vector similarity and its baselines ({model})",
            x_title="layer",
            y_title="cosine similarity",
        )
        for name in names:
            figures[f"layers_{name}"] = heatmap(
                within["layer_by_layer"][name],
                layers,
                layers,
                title=f"{name}: cosine between layers ({model})",
                x_title="layer",
                y_title="layer",
                zmid=0,
            )
    cross = values.get("cross")
    if cross:
        series = {
            "base: mean off-diagonal": [Estimate.from_dict(e) for e in cross["off_diagonal_a"]],
            "chat: mean off-diagonal": [Estimate.from_dict(e) for e in cross["off_diagonal_b"]],
            "chat - base": [Estimate.from_dict(e) for e in cross["difference"]],
        }
        figures["cross_off_diagonal"] = lines_with_ci(
            cross["layers"],
            series,
            title="Bias-bias similarity: base vs chat",
            x_title="layer",
            y_title="cosine similarity",
        )
        figures["cross_self"] = lines_with_ci(
            cross["layers"],
            {b: [Estimate(v, v, v, 0) for v in vs] for b, vs in cross["self_similarity"].items()},
            title="Same bias vector across checkpoints",
            x_title="layer",
            y_title="cosine(base, chat)",
        )
    return figures


def summary(result: Result) -> str:
    """Headline numbers at four layers: bias x bias cosines next to their baselines; the cross-checkpoint
    comparison when there is one."""
    values, lines = result.values, []
    within = values.get("within")
    if within:
        layers, names = within["layers"], within["contrasts"]
        for layer in _shown(layers):
            i = layers.index(layer)
            matrix = within["bias_by_bias"][i]
            pairs = ", ".join(
                f"{a}/{b} {matrix[x][y]:.2f}" for x, a in enumerate(names) for y, b in enumerate(names) if x < y
            )
            halves = ", ".join(f"{n} {within['split_half'][n][i]:.2f}" for n in names)
            lines.append(
                f"layer {layer}: mean off-diagonal cosine {Estimate.from_dict(within['off_diagonal'][i])}; "
                f"shuffled-label null |cos| q95 {within['null_abs_q95'][i]:.2f}"
            )
            lines.append(f"    pairs: {pairs}")
            lines.append(f"    split-half reliability: {halves}")
    cross = values.get("cross")
    if cross:
        for layer in _shown(cross["layers"]):
            i = cross["layers"].index(layer)
            self_sim = ", ".join(f"{b} {vs[i]:.2f}" for b, vs in cross["self_similarity"].items())
            lines.append(
                f"layer {layer}: off-diagonal base {Estimate.from_dict(cross['off_diagonal_a'][i])}, chat "
                f"{Estimate.from_dict(cross['off_diagonal_b'][i])}, chat - base "
                f"{Estimate.from_dict(cross['difference'][i])}; same vector across checkpoints: {self_sim}"
            )
    return "\n".join(lines)
