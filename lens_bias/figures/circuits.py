"""Figures of a circuit study (``experiments.circuits``): the circuit diagram (layers as rows, heads and MLPs
as nodes, edge width = |score|, colour = sign) and the faithfulness curve of the top circuits against random
circuits of the same size, with completeness; and the printed summary."""

from __future__ import annotations

import math
from pathlib import Path

import plotly.graph_objects as go
import torch

from lens_bias.circuits.faithfulness import prune
from lens_bias.circuits.graph import Graph
from lens_bias.figures.primitives import lines_with_ci, save_figure
from lens_bias.provenance import Result
from lens_bias.stats import Estimate


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
    """Faithfulness of the top circuits by size, random circuits of the same size (mean ± sd), completeness."""
    curve, n_pairs = result.values["curve"], len(result.config.get("pair_ids", [])) or 1

    def point(value: float, spread: float = 0.0) -> Estimate:
        spread = 0.0 if spread is None or math.isnan(spread) else spread
        return Estimate(value, value - spread, value + spread, n_pairs)

    return lines_with_ci(
        [row["size"] for row in curve],
        {
            "top circuit": [point(row["faithfulness"]) for row in curve],
            "random circuits (mean ± sd)": [point(row["random_mean"], row["random_std"]) for row in curve],
            "complement (completeness)": [point(row["completeness"]) for row in curve],
        },
        title="Faithfulness by circuit size, against random circuits of the same size",
        x_title="circuit size (top edges by |score|, before pruning)",
        y_title="(m_circuit - m_corrupted) / (m_clean - m_corrupted)",
    ).update_xaxes(type="log")


def save_figures(result: Result, stem: str | Path, *, png: bool) -> list[Path]:
    """``{stem}_diagram`` and ``{stem}_faithfulness`` (``.html``, ``.png``)."""
    return [
        *save_figure(diagram(result), f"{stem}_diagram", png=png),
        *save_figure(faithfulness_curve(result), f"{stem}_faithfulness", png=png),
    ]


def summary(result: Result) -> list[str]:
    """The printed summary: pairs, metric, top edges, agreement with exact patching and times, the curve."""
    values, counts = result.values, result.values["pairs"]
    timing, exact = values["timing"], values["exact"]
    lines = [
        f"{result.config['group']}: {counts['candidates']} candidate pairs, {len(result.config['pair_ids'])} kept; "
        f"metric clean {values['clean_metric']:.3f}, corrupted {values['corrupted_metric']:.3f} nats",
        f"graph: {values['graph']['n_edges']} edges; {values['method']} (steps {values['steps']}) in "
        f"{timing['scoring_s']:.1f} s; exact patching of {exact['n_edges']} edges in {timing['exact_s']:.1f} s "
        f"({timing['exact_per_edge_s']:.3f} s/edge, ~{timing['exact_all_edges_s']:.0f} s for every edge)",
        f"score vs exact effect over {exact['n_edges']} edges: Pearson {exact['pearson']:.3f}, "
        f"Spearman {exact['spearman']:.3f} (top half: Pearson {exact['pearson_top']:.3f})",
        "top edges: " + ", ".join(f"{e['edge']} {e['score']:+.3f}" for e in values["top_edges"][:10]),
        f"circuits ({timing['n_circuits']} evaluated in {timing['circuits_s']:.1f} s):",
    ]
    for row in values["curve"]:
        lines.append(
            f"  size {row['size']:>5} (pruned {row['pruned_size']:>5}): faithfulness {row['faithfulness']:+.3f}, "
            f"random {row['random_mean']:+.3f} ± {row['random_std']:.3f} (pruned {row['random_pruned_size']:.0f}), "
            f"completeness {row['completeness']:+.3f}"
        )
    return lines
