"""The patching study's figures and summary, from its saved result (``experiments.patching``): one heatmap of
pair-mean scores per target and method (:func:`draw`, :func:`save_figures`) and the printed lines
(:func:`summary`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from lens_bias.figures.primitives import heatmap, save_figure
from lens_bias.provenance import Result


def _pairs_label(config: dict) -> str:
    if config.get("pairs") in ("crows_pairs", "crows-pairs"):  # the latter: results saved before the rename
        return f"CrowS-Pairs ({', '.join(config['crows_types'] or ['all types'])})"
    return f"template {config['group']}"


def draw(result: Result, target: str, method: str) -> go.Figure:
    """Heatmap of the pair-mean scores of one target and method (``exact`` or ``attribution``)."""
    entry = result.values["targets"][target]
    mean = np.asarray(entry[f"mean_{method}"], dtype=float)  # JSON null (NaN: padding) -> NaN
    mean = mean.reshape(len(entry["layers"]), -1)
    what = "patched score" if method == "exact" else "attribution estimate"
    title = (
        f"{target} {result.config['direction']}: {what} (1 = clean, 0 = corrupted)<br><sup>"
        f"{result.provenance['model']['name']}, {_pairs_label(result.config)}, mean of {entry['n_pairs']} "
        "pairs</sup>"
    )
    return heatmap(
        mean,
        entry["x_labels"],
        [str(layer) for layer in entry["layers"]],
        title=title,
        x_title=entry["x_title"],
        y_title="layer",
        zmid=0,
    )


def save_figures(result: Result, stem: str | Path, *, png: bool) -> list[Path]:
    """Every heatmap of a result: ``{stem}_{target}_{exact|attribution}.{html,png}``."""
    return [
        path
        for target in result.values["targets"]
        for method in ("exact", "attribution")
        for path in save_figure(draw(result, target, method), f"{stem}_{target}_{method}", png=png)
    ]


def summary(result: Result) -> list[str]:
    """The printed summary: pairs selected (and dropped, and why), per target the forwards and the
    attribution-vs-exact agreement, the clean and corrupted metric."""
    counts, config, lines = result.values["pairs"], result.config, []
    if config["pairs"] in ("crows_pairs", "crows-pairs") or config.get("pairs_file"):
        name = config.get("pairs_file") or "crows-pairs"
        first = (
            f"{name}: {counts['candidates']} candidate pairs, {counts['usable']} minimal pairs (dropped: "
            f"{counts['dropped_length_mismatch']} of different token lengths, {counts['dropped_not_one_span']} "
            f"not one swapped span, {counts['dropped_no_shared_continuation']} swapped at the end)"
        )
    else:
        first = (
            f"{config['group']}: {counts['candidates']} candidate pairs, {counts['dropped_length_mismatch']} dropped "
            f"(clean and corrupted of different token lengths), {counts['dropped_other_length']} of another "
            f"length than the most common ({counts['aligned_length_tokens']} tokens)"
        )
    lines.append(
        f"{first}; of {counts['screened']} screened, {counts['screened_with_gap']} have clean - corrupted >= "
        f"{config['min_gap']} nats; {counts['used']} used"
    )
    for target, entry in result.values["targets"].items():
        agree = entry["agreement"]
        lines.append(
            f"{target:>10}: {entry['exact_config']['n_forwards']} forwards; attribution vs exact: Pearson "
            f"{agree['pearson']:.3f}, top-{agree['k']} overlap {agree['top_k_overlap']:.2f}"
        )
    metric = result.values["metric"]
    gap = result.tensors["clean_metric"] - result.tensors["corrupted_metric"]
    lines.append(
        f"metric: clean {metric['clean_mean']:.2f}, corrupted {metric['corrupted_mean']:.2f} nats; "
        f"clean > corrupted in {int((gap > 0).sum())} of {len(gap)} pairs; {metric['n_degenerate']} degenerate"
    )
    return lines
