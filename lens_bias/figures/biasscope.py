"""The BiasScope study's figures, from its saved result (``experiments.biasscope``): seed-mean head and MLP
scores of both methods, the top-k overlap between runs, the bias reduction of the selected heads against
random heads, and the side-effect table (:func:`draw`)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from lens_bias.figures.primitives import bars_with_ci, heatmap, side_effect_table
from lens_bias.provenance import Result
from lens_bias.stats import Estimate


def _head_heatmap(result: Result, method: str) -> go.Figure:
    heads = np.array(result.values["mean_heads"][method])
    mlp = np.array(result.values["mean_mlp"][method])[:, None]
    n_layers, n_heads = heads.shape
    config = result.config
    unit = f"share of the metric gap, {config['direction']}" if method == "patching" else "logits"
    name = "activation patching" if method == "patching" else "direct logit attribution"
    figure = heatmap(
        np.concatenate([heads, mlp], 1),
        [f"H{h}" for h in range(n_heads)] + ["MLP"],
        [f"L{layer}" for layer in range(n_layers)],
        zmid=0.0,
        title=f"BiasScope ({name}): contribution to logit(attribute) - logit(neutral)<br>"
        f"<sup>{config['spec']}, mean of {len(config['seeds'])} runs ({unit})<br>colours "
        "clipped at the heads' range: MLP cells may saturate (hover for values)</sup>",
        x_title="query head (last column: the layer's MLP)",
        y_title="layer",
    )
    limit = float(np.nanmax(np.abs(heads)))
    figure.update_traces(zmin=-limit, zmax=limit)
    figure.update_layout(width=750, height=220 + 22 * n_layers, margin={"t": 120})
    return figure


def _overlap_figure(result: Result) -> go.Figure:
    recurring = result.values["recurring"]
    seeds = [f"seed {s}" for s in result.config["seeds"]]
    return heatmap(
        np.array(recurring["overlap"]),
        seeds,
        seeds,
        colorscale="Blues",
        text_fmt=".2f",
        title=f"Share of top-{recurring['k']} heads shared between injection runs<br>"
        f"<sup>selected: {recurring['heads']}</sup>",
        x_title="run",
        y_title="run",
    )


def _reduction_figure(result: Result) -> go.Figure:
    sets = result.values["bias_reduction"]
    names = list(sets)
    first = sets[names[0]]
    groups = {
        f"selected heads (n={len(first['selected_heads'])})": [
            Estimate.from_dict(sets[n]["reduction_selected"]) for n in names
        ],
        f"random heads (mean of {first['n_draws']} draws)": [
            Estimate.from_dict(sets[n]["reduction_random"]) for n in names
        ],
    }
    return bars_with_ci(
        names,
        groups,
        reference_line=0.0,
        title=f"Bias reduction with the heads scaled by {first['scale']}<br>"
        f"<sup>{result.config['spec']}; 95% bootstrap CI over items</sup>",
        y_title="bias reduction (nats; baseline - intervened)",
    )


def draw(result: Result) -> dict[str, go.Figure]:
    """The figures of a saved BiasScope result, by file stem."""
    return {
        "head_scores_patching": _head_heatmap(result, "patching"),
        "head_scores_dla": _head_heatmap(result, "dla"),
        "topk_overlap": _overlap_figure(result),
        "bias_reduction": _reduction_figure(result),
        "side_effects": side_effect_table(result.values["side_effects"]),
    }
