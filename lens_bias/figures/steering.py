"""The steering study's figures, drawn from its saved Result (:func:`lens_bias.steering_study.run_study`'s values).

:func:`draw` returns, per bias contrast, the layer x multiplier heatmap of the held-out bias under steering and
the held-out activations on their top two principal components; the held-out separability of every vector per
layer; the refusal vector's sweep (refusal propensity and gender bias, nats); and the fluency cost of every
vector against its relative multiplier.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from lens_bias.figures.primitives import heatmap, lines_with_ci
from lens_bias.provenance import Result
from lens_bias.stats import Estimate
from lens_bias.steering_study import at_layer, estimate


def draw(result: Result) -> dict[str, go.Figure]:
    """Figures from a saved steering result."""
    values, model = result.values, result.provenance["model"]["name"]
    figures = {}
    for name, study in values["bias"].items():
        grid = study["likelihood_grid"]
        layers = sorted({row["layer"] for row in grid})
        multipliers = sorted({row["multiplier"] for row in grid})
        z = [
            [
                next(r["mean_logprob_diff"]["value"] for r in grid if r["layer"] == l and r["multiplier"] == m)
                for m in multipliers
            ]
            for l in layers
        ]
        figures[f"{name}_heatmap"] = heatmap(
            z,
            [str(m) for m in multipliers],
            [str(l) for l in layers],
            text_fmt=".2f",
            title=f"{name}: mean log P(stereotype) - log P(anti) on held-out pairs under steering ({model})",
            x_title="multiplier (raw)",
            y_title="layer",
        )
        pca = study["pca"]
        coords, positive = np.array(pca["coords"]), np.array(pca["is_positive"])
        fig = go.Figure(
            [
                go.Scatter(x=coords[mask, 0], y=coords[mask, 1], mode="markers", name=label)
                for mask, label in ((positive, "stereotype"), (~positive, "anti-stereotype"))
            ]
        )
        fig.update_layout(
            title=f"{name}: held-out activations at layer {study['best_layer']}, top-2 PCs ({model})",
            xaxis_title="PC 1",
            yaxis_title="PC 2",
        )
        figures[f"{name}_pca"] = fig
    sep = {name: study["separability"] for name, study in values["bias"].items()}
    sep["refusal"] = values["refusal"]["separability"]
    layers = sorted(int(l) for l in next(iter(sep.values())))
    figures["separability"] = lines_with_ci(
        layers,
        {n: [Estimate(at_layer(s, l), 0, 0, 0) for l in layers] for n, s in sep.items()},
        title=f"Held-out separability along each vector ({model})",
        x_title="layer",
        y_title="paired AUC (0.5 = chance)",
    )
    for series in figures["separability"].data:
        if series.fill:
            series.visible = False
    rows = values["refusal"]["sweep"]
    x = [r["multiplier"] for r in rows]
    figures["bias_vs_refusal"] = lines_with_ci(
        x,
        {
            "refusal propensity, harmful": [estimate(r["propensity_harmful"]) for r in rows],
            "refusal propensity, benign": [estimate(r["propensity_benign"]) for r in rows],
            "gender bias (mean log-prob diff)": [estimate(r["gender_bias"]) for r in rows],
        },
        title=f"Refusal vector at layer {values['refusal']['best_layer']}: refusal and gender bias ({model})",
        x_title="refusal-vector multiplier (raw)",
        y_title="nats",
    )
    fluency = {name: study["fluency"] for name, study in values["bias"].items()}
    fluency["refusal"] = values["refusal"]["fluency"]
    figures["fluency"] = _fluency_figure(fluency, model)
    return figures


def _fluency_figure(fluency: dict[str, list[dict[str, Any]]], model: str) -> go.Figure:
    """Per vector, the change in mean log-prob of neutral text (nats/token) against the relative multiplier."""
    fig = go.Figure()
    for name, rows in fluency.items():
        rows = sorted(rows, key=lambda r: r["relative_multiplier"])
        delta = [r["delta_logprob"] for r in rows]
        fig.add_trace(
            go.Scatter(
                x=[r["relative_multiplier"] for r in rows],
                y=[d["value"] for d in delta],
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=[d["high"] - d["value"] for d in delta],
                    arrayminus=[d["value"] - d["low"] for d in delta],
                ),
                mode="lines+markers",
                name=f"{name} (layer {rows[0]['layer']})",
            )
        )
    fig.update_layout(
        title=f"Fluency cost: change in mean log-prob of neutral text ({model})",
        xaxis_title="multiplier x |vector| / mean residual norm",
        yaxis_title="delta mean log-prob (nats/token)",
    )
    return fig
