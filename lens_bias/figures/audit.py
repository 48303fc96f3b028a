"""The audit's figures, drawn from its saved values alone (no measure is rebuilt, no model loaded).

:func:`audit_figures` draws every measure of a saved audit (``Result.values`` of ``experiments.audit``:
``{measure: {"summaries": {condition: Summary}, ...}}``, ``"baseline"`` first) through :data:`DRAWERS`,
one function per measure name; a measure without a drawer (a user's own) has no figures. Each drawer takes
the measure's summaries per condition (:mod:`lens_bias.audit.base` describes the summary shape).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from lens_bias.audit.base import Summary, value_of
from lens_bias.audit.persona import BAMT_HIGH, TB_HIGH
from lens_bias.audit.service import NON_REFERENCE, OVERALL
from lens_bias.data.crows_pairs import DIRECTIONS
from lens_bias.data.service_requests import service_groups
from lens_bias.data.stereoset import KINDS
from lens_bias.errors import InputError
from lens_bias.figures.primitives import bars_with_ci, heatmap, scatter
from lens_bias.metrics.service import SERVICE_CATEGORIES
from lens_bias.stats import Estimate

Drawer = Callable[[dict[str, Summary]], dict[str, go.Figure]]
MISSING = Estimate(math.nan, math.nan, math.nan, 0)
"""An undefined or absent statistic: drawn as a missing bar by :func:`bars_with_ci`."""


def condition_series(summaries: Mapping[str, Summary], groups: Sequence[str], stat: str) -> dict[str, list[Estimate]]:
    """``{condition: [estimate of stat in each group]}`` from summaries, an undefined or absent one as
    :data:`MISSING`."""
    return {
        condition: [
            value_of(summary["groups"].get(group, {}).get("stats", {}).get(stat, {"value": None})) or MISSING
            for group in groups
        ]
        for condition, summary in summaries.items()
    }


def _value(summary: Summary, group: str, stat: str) -> Estimate | None:
    return value_of(summary["groups"][group]["stats"][stat])


def _groups(summaries: dict[str, Summary]) -> list[str]:
    return list(next(iter(summaries.values()))["groups"])


def stereoset_figures(summaries: dict[str, Summary]) -> dict[str, go.Figure]:
    """``stereoset_ss``: SS per bias type (macro over targets) with intervals, per condition."""
    labels = [group for group in _groups(summaries) if group not in KINDS]
    return {
        "stereoset_ss": bars_with_ci(
            labels,
            condition_series(summaries, labels, "ss"),
            title="StereoSet SS per bias type (macro over targets; 50 = unbiased, empty = undefined)",
            y_title="SS, % stereotype preferred",
            reference_line=50.0,
        )
    }


def crows_pairs_figures(summaries: dict[str, Summary]) -> dict[str, go.Figure]:
    """``crows_pairs_metric_score`` (the measure's convention) and ``crows_pairs_metric_score_{convention}``
    (each other convention scored): the metric per bias type."""
    labels = [group for group in _groups(summaries) if group not in DIRECTIONS]
    base = next(iter(summaries.values()))
    stats = [stat for stat in base["statistics"] if stat.startswith("metric_score")]
    conventions = {stat: stat.removeprefix("metric_score_") for stat in stats}
    conventions["metric_score"] = base.get("convention") or "whole sentence"
    return {
        f"crows_pairs_{stat}": bars_with_ci(
            labels,
            condition_series(summaries, labels, stat),
            title=f"CrowS-Pairs metric score per bias type ({conventions[stat]} convention; 50 = no preference, "
            "empty = undefined)",
            y_title="% pairs preferring the more-stereotyping sentence",
            reference_line=50.0,
        )
        for stat in stats
    }


def bbq_figures(summaries: dict[str, Summary]) -> dict[str, go.Figure]:
    """``bbq_s_amb`` / ``bbq_s_dis``: the bias scores per category (likelihood scoring)."""
    categories = [group for group in _groups(summaries) if group != "overall"]
    convention = next(iter(summaries.values())).get("convention")
    scoring = "likelihood scoring" + (f", {convention} convention" if convention else "")
    return {
        f"bbq_{key}": bars_with_ci(
            categories,
            condition_series(summaries, categories, key),
            title=f"BBQ {title} per category ({scoring}; 0 = unbiased, empty = undefined)",
            y_title=f"{title} in [-1, 1]",
            reference_line=0.0,
        )
        for key, title in (("s_amb", "s_AMB"), ("s_dis", "s_DIS"))
    }


def persona_bbq_figures(summaries: dict[str, Summary]) -> dict[str, go.Figure]:
    """Per condition the TB and BAmt heatmaps (persona x target), ``persona_bbq_PB`` (PB per persona) and
    ``persona_bbq_plane`` (:func:`persona_plane`)."""
    first = next(iter(summaries.values()))
    persona_names = [group for group in first["groups"] if group != "overall"]
    targets = [key.split(":", 1)[1] for key in first["statistics"] if key.startswith("TB:")]
    figures = {}
    for condition, summary in summaries.items():
        for key, title, zmid, scale in (
            ("TB", "Target bias TB = (pos - neg) / shown", 0.0, "RdBu"),
            ("BAmt", "Bias amount BAmt = (pos + neg) / shown", None, "Reds"),
        ):
            z = [
                [e.value if (e := _value(summary, name, f"{key}:{t}")) is not None else math.nan for t in targets]
                for name in persona_names
            ]
            figures[f"persona_bbq_{key}_{condition}"] = heatmap(
                z,
                targets,
                persona_names,
                title=f"Persona BBQ, {condition}: {title}, ambiguous contexts (blank = target not shown)",
                x_title="target (BBQ group)",
                y_title="persona",
                zmid=zmid,
                colorscale=scale,
                text_fmt=".2f",
            )
    personas = persona_names[1:]
    figures["persona_bbq_PB"] = bars_with_ci(
        personas,
        condition_series(summaries, personas, "PB"),
        title="Persona bias PB = mean over targets |TB(persona) - TB(none)|, ambiguous contexts (95% CI)",
        y_title="PB in [0, 2]",
        reference_line=0.0,
    )
    figures["persona_bbq_plane"] = persona_plane(summaries, persona_names)
    return figures


def persona_plane(summaries: dict[str, Summary], persona_names: Sequence[str]) -> go.Figure:
    """Each persona (and the model overall, with 95% CIs) on the (mean |TB|, mean BAmt) plane."""
    points = [
        (f"{condition} / {name}", tb, bamt)
        for condition, summary in summaries.items()
        for name in persona_names
        if (tb := _value(summary, name, "mean_abs_TB")) is not None
        and (bamt := _value(summary, name, "mean_BAmt")) is not None
    ]
    figure = scatter(
        [tb.value for _, tb, _ in points],
        [bamt.value for _, _, bamt in points],
        [label for label, _, _ in points],
        title=(
            f"Persona BBQ on the TB-BAmt plane, ambiguous contexts (shapes: |TB| < {TB_HIGH} and BAmt < "
            f"{BAMT_HIGH} ideal, |TB| < {TB_HIGH} balanced, else skewed)"
        ),
        x_title="mean |TB| over (persona, target)",
        y_title="mean BAmt over (persona, target)",
    )
    figure.data[0].name = "persona (point estimate)"
    for condition, summary in summaries.items():
        tb, bamt = _value(summary, "overall", "mean_abs_TB"), _value(summary, "overall", "mean_BAmt")
        if tb is None or bamt is None:
            continue
        figure.add_trace(
            go.Scatter(
                x=[tb.value],
                y=[bamt.value],
                mode="markers+text",
                marker={"size": 12, "symbol": "diamond"},
                text=[f"{condition}: {summary['shape']['shape']}"],
                textposition="top right",
                name=f"{condition}, all personas (95% CI)",
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": [tb.high - tb.value],
                    "arrayminus": [tb.value - tb.low],
                },
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [bamt.high - bamt.value],
                    "arrayminus": [bamt.value - bamt.low],
                },
            )
        )
    figure.add_vline(x=TB_HIGH, line_dash="dash", line_color="gray")
    figure.add_hline(y=BAMT_HIGH, line_dash="dash", line_color="gray")
    figure.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "lightgray"}, name="|TB| = BAmt (limit)"
        )
    )
    figure.update_layout(showlegend=True)
    return figure


def service_figures(summaries: dict[str, Summary]) -> dict[str, go.Figure]:
    """``service_categories``: stacked shares of the answer categories per group (and condition);
    ``service_refusal_gap``: the refusal-rate gap to the reference group with paired intervals;
    ``service_propensity``: the mean refusal propensity per group with intervals."""
    if not summaries:
        raise InputError("figures: no summaries to plot.")
    labels = {g.key: g.label for g in service_groups()} | {
        OVERALL: "overall",
        NON_REFERENCE: "all non-reference groups",
    }
    conditions = list(summaries)
    first = summaries[conditions[0]]["groups"]
    present = [key for key in first if key != NON_REFERENCE]
    gapped = [key for key in first if first[key]["stats"]["refusal_rate_gap"].get("value") is not None]
    stacked = go.Figure()
    for category in SERVICE_CATEGORIES:
        x: list[Any] = [[], []] if len(conditions) > 1 else []
        y = []
        for condition, summary in summaries.items():
            for key in present:
                entry = summary["groups"].get(key, {}).get("stats", {}).get(category, {})
                y.append(math.nan if entry.get("value") is None else entry["value"])
                if len(conditions) > 1:
                    x[0].append(condition)
                    x[1].append(labels.get(key, key))
                else:
                    x.append(labels.get(key, key))
        stacked.add_trace(go.Bar(x=x, y=y, name=category.replace("_", " ")))
    stacked.update_layout(
        barmode="stack",
        title="Quality of service: answer categories per group",
        yaxis_title="share of answers",
        template="plotly_white",
    )
    return {
        "service_categories": stacked,
        "service_refusal_gap": bars_with_ci(
            [labels.get(key, key) for key in gapped],
            condition_series(summaries, gapped, "refusal_rate_gap"),
            title="Refusal-rate gap to the reference group (paired by template)",
            y_title="refusal rate(group) - refusal rate(reference)",
            reference_line=0.0,
        ),
        "service_propensity": bars_with_ci(
            [labels.get(key, key) for key in present],
            condition_series(summaries, present, "propensity"),
            title="Refusal propensity per group",
            y_title="log P(refusal openers) - log P(compliance openers), nats",
        ),
    }


DRAWERS: dict[str, Drawer] = {
    "stereoset": stereoset_figures,
    "crows_pairs": crows_pairs_figures,
    "bbq": bbq_figures,
    "persona_bbq": persona_bbq_figures,
    "service": service_figures,
}
"""Measure name -> its drawer (a measure registered without one has no figures)."""


def audit_figures(values: Mapping[str, Any]) -> dict[str, go.Figure]:
    """Every figure of a saved audit's ``values`` (see the module docstring)."""
    figures: dict[str, go.Figure] = {}
    for name, entry in values.items():
        if name in DRAWERS:
            figures.update(DRAWERS[name](entry["summaries"]))
    return figures
