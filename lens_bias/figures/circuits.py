"""Figures of a circuit study (``experiments.circuits``): per contrast the circuit diagram (layers as rows,
heads and MLPs as nodes, edge width = |score|, colour = sign) and the faithfulness curve of the top circuits
against random circuits of the same size, with completeness; the overlap matrix of the contrasts' circuits;
the Jaccard of each contrast's circuits on two checkpoints against its split halves; their overlap with saved
circuits (e.g. BiasScope's injected biases); and the printed summary. A
saved result holds every contrast; :func:`contrast_view` is one contrast's part, what :func:`diagram`,
:func:`faithfulness_curve` and :func:`contrast_summary` read."""

from __future__ import annotations

import math
from pathlib import Path

import plotly.graph_objects as go
import torch

from lens_bias.circuits.faithfulness import prune
from lens_bias.circuits.graph import Graph
from lens_bias.figures.primitives import bars_with_ci, heatmap, lines_with_ci, save_figure
from lens_bias.provenance import Result
from lens_bias.stats import Estimate


def contrast_view(result: Result, name: str) -> Result:
    """Contrast ``name``'s part of a saved result: its values (with ``pairs``: its counts, ``contrast``: its
    name), its ``pair_ids`` and its tensors under their own names."""
    values = {"pairs": result.values["pairs"][name], "contrast": name, **result.values["contrasts"][name]}
    prefix = f"{name}."
    tensors = {key[len(prefix) :]: value for key, value in result.tensors.items() if key.startswith(prefix)}
    return Result(result.name, values, {"pair_ids": result.config["pair_ids"][name]}, result.provenance, tensors)


def _graph(result: Result) -> Graph:
    g = result.values["graph"]
    return Graph(g["n_layers"], g["n_heads"], g["n_kv_heads"], g["has_mlp"])


def _positions(graph: Graph) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(x, y) of every sender and every receiver's node: row = layer (input below layer 0, logits above
    the last), heads at x = 0 .. n_heads - 1, the MLP at x = n_heads + 0.5 (half a row up); a kv receiver at
    the middle of its group of query heads."""
    middle, group = (graph.n_heads - 1) / 2, graph.n_heads // graph.n_kv_heads
    senders = [(middle, -1.0)]
    receivers: list[tuple[float, float]] = []
    for layer in range(graph.n_layers):
        senders += [(float(h), float(layer)) for h in range(graph.n_heads)]
        receivers += [(float(h), float(layer)) for h in range(graph.n_heads)]
        receivers += [(g * group + (group - 1) / 2, float(layer)) for _ in "kv" for g in range(graph.n_kv_heads)]
        if graph.has_mlp:
            senders.append((graph.n_heads + 0.5, layer + 0.5))
            receivers.append((graph.n_heads + 0.5, layer + 0.5))
    return senders, receivers + [(middle, float(graph.n_layers))]


def diagram(result: Result, n_edges: int | None = None) -> go.Figure:
    """The top ``n_edges`` edges (default: the smallest circuit of the curve that pruning leaves non-empty),
    pruned, on the model's grid."""
    graph, scores, curve = _graph(result), result.tensors["scores"].float(), result.values["curve"]
    n = min(n_edges or next((row["size"] for row in curve if row["pruned_size"]), curve[-1]["size"]), graph.n_edges)
    order = scores.abs().masked_fill(~graph.valid, -1).flatten().argsort(descending=True, stable=True)[:n]
    chosen = torch.zeros(graph.valid.numel(), dtype=torch.bool)
    chosen[order] = True
    circuit = prune(graph, chosen.reshape(graph.valid.shape))
    senders, receivers = _positions(graph)
    edges = circuit.nonzero().tolist()
    top = float(scores.abs().max()) or 1.0
    fig = go.Figure()
    for s, r in edges:
        value = float(scores[s, r])
        (x0, y0), (x1, y1) = senders[s], receivers[r]
        kind = graph.receivers[r].rsplit(".", 1)[-1] if "." in graph.receivers[r] else ""
        fig.add_trace(
            go.Scatter(
                x=[x0, x1],
                y=[y0, y1 - (0.25 if kind in ("q", "k", "v") else 0.0)],
                mode="lines",
                line={
                    "width": 0.5 + 7.5 * abs(value) / top,
                    "color": "rgba(31,119,180,0.6)" if value > 0 else "rgba(214,39,40,0.6)",
                },
                hovertemplate=f"{graph.senders[s]} → {graph.receivers[r]}: {value:.3g}<extra></extra>",
                showlegend=False,
            )
        )
    used = {s for s, _ in edges}
    fig.add_trace(
        go.Scatter(
            x=[x for x, _ in senders] + [receivers[-1][0]],
            y=[y for _, y in senders] + [receivers[-1][1]],
            mode="markers+text",
            text=[name if i in used else "" for i, name in enumerate(graph.senders)] + ["logits"],
            textposition="top center",
            marker={
                "size": 7,
                "color": ["black" if i in used else "lightgrey" for i in range(len(senders))] + ["black"],
            },
            hovertext=graph.senders + ["logits"],
            hoverinfo="text",
            showlegend=False,
        )
    )
    fig.update_layout(
        title=f"Circuit: top {n} edges by |{result.values['method']} score|, pruned to {len(edges)}<br>"
        "<sup>blue: corrupting the edge raises the metric, red: lowers it; width = |score|</sup>",
        xaxis_title="head (MLP at the right)",
        yaxis_title="layer (input below, logits above)",
        template="plotly_white",
        height=max(500, 28 * graph.n_layers),
        width=max(700, 90 * (graph.n_heads + 2)),
    )
    return fig


def faithfulness_curve(result: Result) -> go.Figure:
    """Faithfulness of the top circuits by size, random circuits of the same size (mean ± sd; none drawn: no
    line), completeness."""
    curve, n_pairs = result.values["curve"], len(result.config.get("pair_ids", [])) or 1

    def point(value: float, spread: float | None = 0.0) -> Estimate:
        spread = 0.0 if spread is None or math.isnan(spread) else spread
        return Estimate(value, value - spread, value + spread, n_pairs)

    series = {"top circuit": [point(row["faithfulness"]) for row in curve]}
    if all(row["random_mean"] is not None and not math.isnan(row["random_mean"]) for row in curve):
        series["random circuits (mean ± sd)"] = [point(row["random_mean"], row["random_std"]) for row in curve]
    series["complement (completeness)"] = [point(row["completeness"]) for row in curve]
    return lines_with_ci(
        [row["size"] for row in curve],
        series,
        title=f"{result.values['contrast']}: faithfulness by circuit size, against random circuits of the same size"
        f"<br><sup>edges outside the circuit: {result.values['ablation']}</sup>",
        x_title="circuit size (top edges by |score|, before pruning)",
        y_title="(m_circuit - m_baseline) / (m_clean - m_baseline)",
    ).update_xaxes(type="log")


def overlap_matrix(result: Result) -> go.Figure:
    """The Jaccard of the contrasts' top-n edge sets; the diagonal: each contrast's split-half Jaccard."""
    overlap = result.values["overlap"]
    names = overlap["names"]
    return heatmap(
        [[math.nan if v is None else v for v in row] for row in overlap["jaccard"]],
        names,
        names,
        title=f"Overlap of the top {overlap['n_edges']} edges (Jaccard); diagonal: split halves"
        f"<br><sup>chance {overlap['chance']:.3f}</sup>",
        x_title="contrast",
        y_title="contrast",
        colorscale="Viridis",
        text_fmt=".2f",
    )


def checkpoint_bars(result: Result) -> go.Figure:
    """Per contrast, the Jaccard of its top-n edges on the two checkpoints, beside its split-half Jaccard on the
    first (the overlap left when only the pairs change) and chance."""
    compared = result.values["checkpoint"]
    names = list(compared["contrasts"])

    def bar(value: float | None) -> Estimate:
        value = math.nan if value is None else value
        return Estimate(value, value, value, compared["n_edges"])

    return bars_with_ci(
        names,
        {
            f"model vs {compared['model']['name']}": [bar(compared["contrasts"][n]["jaccard"]) for n in names],
            "split halves of the model's pairs": [bar(compared["split_half"].get(n)) for n in names],
        },
        title=f"Circuits on two checkpoints: Jaccard of the top {compared['n_edges']} edges"
        f"<br><sup>dashed: chance ({compared['chance']:.3f})</sup>",
        y_title="Jaccard of the top-edge sets",
        reference_line=compared["chance"],
    )


def saved_matrix(result: Result) -> go.Figure:
    """The Jaccard of each contrast's top-n edges with each saved circuit's (e.g. BiasScope's injected circuits)."""
    saved = result.values["saved"]
    return heatmap(
        saved["jaccard"],
        saved["others"],
        saved["names"],
        title=f"Overlap with the circuits of {saved['source']} (Jaccard of the top {saved['n_edges']} edges)"
        f"<br><sup>chance {saved['chance']:.3f}</sup>",
        x_title="saved circuit",
        y_title="contrast",
        colorscale="Viridis",
        text_fmt=".3f",
    )


def save_figures(result: Result, stem: str | Path, *, png: bool) -> list[Path]:
    """``{stem}_{contrast}_diagram`` and ``{stem}_{contrast}_faithfulness`` per contrast (``:`` in its name
    written ``_``), ``{stem}_overlap``, with a second checkpoint ``{stem}_checkpoints`` and with saved circuits
    ``{stem}_saved`` (``.html``, ``.png``)."""
    paths = []
    for name in result.values["contrasts"]:
        view, file = contrast_view(result, name), f"{stem}_{name.replace(':', '_')}"
        paths += save_figure(diagram(view), f"{file}_diagram", png=png)
        paths += save_figure(faithfulness_curve(view), f"{file}_faithfulness", png=png)
    paths += save_figure(overlap_matrix(result), f"{stem}_overlap", png=png)
    if "checkpoint" in result.values:
        paths += save_figure(checkpoint_bars(result), f"{stem}_checkpoints", png=png)
    if "saved" in result.values:
        paths += save_figure(saved_matrix(result), f"{stem}_saved", png=png)
    return paths


def contrast_summary(result: Result) -> list[str]:
    """One contrast's summary (of :func:`contrast_view`): pairs, metric, top edges, agreement with exact
    patching and times, the curve."""
    values, counts = result.values, result.values["pairs"]
    timing, exact = values["timing"], values["exact"]
    lines = [
        f"{values['contrast']}: {counts['candidates']} candidate pairs, {len(result.config['pair_ids'])} kept; "
        f"metric clean {values['clean_metric']:.3f}, corrupted {values['corrupted_metric']:.3f} nats",
        f"graph: {values['graph']['n_edges']} edges; {values['method']} (steps {values['steps']}) in "
        f"{timing['scoring_s']:.1f} s; exact patching of {exact['n_edges']} edges in {timing['exact_s']:.1f} s "
        f"({timing['exact_per_edge_s']:.3f} s/edge, ~{timing['exact_all_edges_s']:.0f} s for every edge)",
        f"score vs exact effect over {exact['n_edges']} edges: Pearson {_number(exact['pearson'], '.3f')}, "
        f"Spearman {_number(exact['spearman'], '.3f')} (top half: Pearson {_number(exact['pearson_top'], '.3f')})",
        "top edges: " + ", ".join(f"{e['edge']} {e['score']:+.3f}" for e in values["top_edges"][:10]),
        f"circuits ({timing['n_circuits']} evaluated in {timing['circuits_s']:.1f} s; outside edges "
        f"{values['ablation']}, baseline metric {values['baseline_metric']:.3f}):",
    ]
    for row in values["curve"]:
        lines.append(
            f"  size {row['size']:>5} (pruned {row['pruned_size']:>5}): faithfulness {row['faithfulness']:+.3f}, "
            f"random {_number(row['random_mean'], '+.3f')} ± {_number(row['random_std'], '.3f')} "
            f"(pruned {_number(row['random_pruned_size'], '.0f')}), "
            f"completeness {row['completeness']:+.3f}"
        )
    return lines


def summary(result: Result) -> list[str]:
    """The printed summary: each contrast's (:func:`contrast_summary`), then the overlap matrix."""
    lines = [line for name in result.values["contrasts"] for line in contrast_summary(contrast_view(result, name))]
    overlap = result.values["overlap"]
    lines.append(
        f"overlap of the top {overlap['n_edges']} edges (Jaccard; diagonal: split halves; chance "
        f"{overlap['chance']:.3f}; {overlap['seconds']:.1f} s):"
    )
    for name, row in zip(overlap["names"], overlap["jaccard"]):
        lines.append(f"  {name:>24} " + " ".join(_number(v, "6.3f") for v in row))
    if "checkpoint" in result.values:
        compared = result.values["checkpoint"]
        lines.append(
            f"circuits on {compared['model']['name']} vs this model (Jaccard of the top {compared['n_edges']} edges; "
            f"chance {compared['chance']:.3f}; {compared['seconds']:.1f} s):"
        )
        for name, row in compared["contrasts"].items():
            lines.append(
                f"  {name:>24} {row['jaccard']:.3f} (split halves {_number(compared['split_half'].get(name), '.3f')}; "
                f"metric there clean {row['clean_metric']:.3f}, corrupted {row['corrupted_metric']:.3f} nats)"
            )
    if "saved" in result.values:
        saved = result.values["saved"]
        lines.append(
            f"overlap with the circuits of {saved['source']} (Jaccard of the top {saved['n_edges']} edges; chance "
            f"{saved['chance']:.3f}): " + ", ".join(saved["others"])
        )
        for name, row in zip(saved["names"], saved["jaccard"]):
            lines.append(f"  {name:>24} " + " ".join(_number(v, "6.3f") for v in row))
    return lines


def _number(value: float | None, spec: str) -> str:
    """``value`` formatted by ``spec``; NaN (None once saved) as ``nan``."""
    return format(math.nan if value is None else value, spec)
