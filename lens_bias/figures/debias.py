"""Figures of the debiasing scoreboard (:mod:`lens_bias.debias.scoreboard`), drawn from its saved values."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from lens_bias.errors import InputError
from lens_bias.figures.primitives import pareto_scatter
from lens_bias.stats import Estimate, pareto_front


def pareto_figures(values: dict[str, Any], retention: str = "knowledge_accuracy") -> dict[str, go.Figure]:
    """One Pareto figure per bias statistic: bias removed (x) against the change of the ``retention``
    readout (y), each method a point with both paired intervals; the Pareto front (:func:`lens_bias.stats.pareto_front`
    on the point estimates: higher is better on both axes) is marked."""
    if retention not in values["retention_readouts"]:
        raise InputError(f"No retention readout {retention!r}; the scoreboard has {values['retention_readouts']}.")
    nan = Estimate(float("nan"), float("nan"), float("nan"), 0)
    out = {}
    for stat in values["bias_statistics"]:
        names, xs, ys = [], [], []
        for name, entry in values["methods"].items():
            names.append(name)
            removed = entry["bias"][stat]["removed"]  # {"value": None, "undefined": why} when undefined
            xs.append(nan if removed.get("value") is None else Estimate.from_dict(removed))
            ys.append(Estimate.from_dict(entry["retention"][retention]["delta"]))
        front = pareto_front([(e.value, f.value) for e, f in zip(xs, ys)])
        out[f"pareto_{stat.replace('.', '_')}"] = pareto_scatter(
            names,
            xs,
            ys,
            front,
            title=f"Debiasing: {stat} bias removed vs {retention} kept",
            x_title=f"bias removed: distance of {stat} to its ideal closed",
            y_title=f"change in {retention}",
        )
    return out
