"""Circuits from edge scores, and how much of the behaviour a circuit carries.

A circuit is a set of edges, a ``[n_senders, n_receivers]`` bool mask within ``graph.valid``
(:func:`top_circuit`: the ``n`` edges of largest ``|score|``, or all above a threshold; :func:`random_circuit`:
``n`` edges drawn uniformly, seeded). :func:`prune` drops the edges that lie on no path from the input to
the logits within the circuit; this never changes a circuit's metric (an edge from a node no circuit path
reaches carries that node's corrupted output anyway; an edge into a node whose output reaches the logits
by no circuit edge changes nothing the logits read).

Evaluation (:func:`circuit_metrics`): the clean run with every edge *outside* the circuit carrying the
corrupted run's value: each receiver's input gets ``a_u(corrupted) - a_u(this run)`` added for every
sender u whose edge into it is outside the circuit (``this run``: the patched run itself, so changes
upstream propagate). With every edge in the circuit nothing is patched (the clean run); with none, every
receiver reads the corrupted residual stream (the corrupted run).

Faithfulness of circuit C (:func:`faithfulness`): ``(m_C - m_corrupted) / (m_clean - m_corrupted)`` of the
metric's means over the pairs: 1 = the circuit alone restores the clean behaviour, 0 = no more than the
corrupted run. Completeness: the faithfulness of C's complement (the model without the circuit): near 0
when the circuit holds all of the behaviour.

Mean ablation (``ablation="mean"``), the alternative to the corrupted run: an edge outside the circuit carries
its sender's *mean* output instead, averaged over every real token at that position of the clean and the
corrupted prompts together (position-wise mean over the pairs' both sides: ``[pos, d_model]`` per sender).
Faithfulness then takes the empty circuit's metric (every edge mean-ablated) as its baseline in place of
the corrupted run's: ``(m_C - m_empty) / (m_clean - m_empty)``, so again the full graph is 1 and the empty
circuit 0.
"""

from __future__ import annotations

from typing import Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.circuits.graph import Graph, graph_mode
from lens_bias.circuits.runs import graph_hooks
from lens_bias.circuits.scores import EdgeScores, sender_outputs, top_edges
from lens_bias.errors import InputError
from lens_bias.forward.hooks import hooks_added
from lens_bias.patching.checks import check_pairs, forward_metric
from lens_bias.patching.metrics import Metric
from lens_bias.prompts import PromptBatch

Circuit = Bool[Tensor, "n_senders n_receivers"]
#: What an edge outside the circuit carries: the corrupted run's value, or its sender's mean output.
Ablation = Literal["corrupted", "mean"]
ABLATIONS: tuple[Ablation, ...] = ("corrupted", "mean")


def top_circuit(scores: EdgeScores, n: int | None = None, *, threshold: float | None = None) -> Circuit:
    """The ``n`` edges of largest ``|score|`` (ties by index), or every edge with ``|score| >= threshold``
    (give exactly one), not pruned."""
    if (n is None) == (threshold is None):
        raise InputError("Give the circuit's size n or a score threshold, not both.")
    if threshold is not None:
        return (scores.scores.abs() >= threshold) & scores.graph.valid
    return top_mask(scores.scores, scores.graph, n)  # type: ignore[arg-type]


def top_mask(scores: Float[Tensor, "n_senders n_receivers"], graph: Graph, n: int) -> Circuit:
    """The mask of the ``n`` edges of ``graph`` with the largest ``|scores|`` (ties by index), not pruned."""
    mask = torch.zeros_like(graph.valid)
    top = top_edges(scores, graph, n)
    mask[top[:, 0], top[:, 1]] = True
    return mask


def random_circuit(graph: Graph, n: int, generator: torch.Generator) -> Circuit:
    """``n`` edges of ``graph`` drawn uniformly without replacement with ``generator``."""
    edges = graph.valid.flatten().nonzero().flatten()
    if not 0 <= n <= len(edges):
        raise InputError(f"n must be between 0 and the graph's {len(edges)} edges, got {n}.")
    mask = torch.zeros(graph.valid.numel(), dtype=torch.bool)
    mask[edges[torch.randperm(len(edges), generator=generator)[:n]]] = True
    return mask.reshape(graph.valid.shape)


def prune(graph: Graph, circuit: Circuit) -> Circuit:
    """``circuit`` without the edges on no input-to-logits path of circuit edges: kept are the edges whose
    sender the input reaches and whose receiver feeds a node that reaches the logits (or is the logits)."""
    kept = circuit & graph.valid
    feeds = graph.feeds.float()  # [n_receivers, n_senders]
    reached = torch.zeros(len(graph.senders), dtype=torch.bool)
    reached[0] = True
    stages = graph.sender_stage
    for stage in range(1, int(stages.max()) + 1):  # forward: a node is reached through any of its inputs
        reached_receivers = (kept & reached[:, None]).any(0)
        now = (feeds[reached_receivers].sum(0) > 0) & (stages == stage)
        reached |= now
    useful_receivers = torch.zeros(len(graph.receivers), dtype=torch.bool)
    useful_receivers[graph.logits_receiver] = True
    useful = torch.zeros(len(graph.senders), dtype=torch.bool)
    for stage in range(int(stages.max()), -1, -1):  # backward: a node is useful if it feeds a useful receiver
        useful |= (kept & useful_receivers[None, :]).any(1) & (stages == stage)
        useful_receivers |= (feeds[:, useful].sum(1) > 0) & (graph.receiver_stage == stage)
    return kept & reached[:, None] & useful_receivers[None, :]


def circuit_metrics(
    model: HookedTransformer,
    clean: PromptBatch,
    corrupted: PromptBatch,
    metric: Metric,
    circuits: Bool[Tensor, "n_circuits n_senders n_receivers"],
    *,
    batch_size: int = 32,
    ablation: Ablation = "corrupted",
) -> Float[Tensor, "n_circuits n_pairs"]:
    """The metric per circuit and pair with every edge outside the circuit patched to the corrupted run or
    mean-ablated (``ablation``; module docstring). ``batch_size``: rows per forward (circuits x pairs; at
    least one circuit)."""
    if ablation not in ABLATIONS:
        raise InputError(f"Unknown ablation {ablation!r}: use one of {', '.join(ABLATIONS)}.")
    clean, corrupted = check_pairs(clean, corrupted)
    with graph_mode(model) as graph:
        if circuits.ndim != 3 or circuits.shape[1:] != graph.valid.shape:
            raise InputError(
                f"circuits must be [n_circuits, {len(graph.senders)}, {len(graph.receivers)}] masks, "
                f"got {tuple(circuits.shape)}."
            )
        corrupted_out, _ = sender_outputs(model, graph, corrupted, metric)
        if ablation == "mean":
            corrupted_out = _mean_outputs(sender_outputs(model, graph, clean, metric)[0], corrupted_out, clean.lengths)
        n_pairs, device = len(clean), model.cfg.device
        per_forward = max(1, batch_size // n_pairs)
        values = []
        for start in range(0, len(circuits), per_forward):
            patched = (graph.valid & ~circuits[start : start + per_forward]).float().to(device)  # [c, s, r]
            values.append(_patched_run(model, graph, clean, metric, corrupted_out, patched))
    return torch.cat(values).cpu()


def _mean_outputs(
    clean_out: Float[Tensor, "b pos s d"], corrupted_out: Float[Tensor, "b pos s d"], lengths: Tensor
) -> Float[Tensor, "b pos s d"]:
    """Each sender's output averaged over the real tokens at each position of both runs' rows, repeated
    for every row."""
    real = (torch.arange(clean_out.shape[1])[None, :] < lengths[:, None]).to(clean_out)  # [b, pos]
    total = torch.einsum("bp,bpsd->psd", real, clean_out + corrupted_out)
    mean = total / (2 * real.sum(0)).clamp(min=1)[:, None, None]
    return mean.expand_as(clean_out)


def _patched_run(
    model: HookedTransformer,
    graph: Graph,
    clean: PromptBatch,
    metric: Metric,
    corrupted_out: Tensor,
    patched: Float[Tensor, "c n_senders n_receivers"],
) -> Float[Tensor, "c n_pairs"]:
    n_circuits, (n_pairs, width) = len(patched), clean.tokens.shape
    differences = torch.zeros(n_circuits, *corrupted_out.shape, device=corrupted_out.device)  # [c, b, p, s, d]
    written = [0]  # senders written so far (graph order is stage order)

    def on_sender(index: slice, value: Tensor) -> None:
        current = value.float().reshape(n_circuits, n_pairs, width, -1, value.shape[-1])
        differences[:, :, :, index] = corrupted_out[None, :, :, index] - current
        written[0] = index.stop

    def on_receiver(index: slice, value: Tensor) -> Tensor:
        n = written[0]
        added = torch.einsum("cbpsd,csr->cbprd", differences[:, :, :, :n], patched[:, :n, index])
        return value + added.reshape(value.shape).to(value.dtype)

    tokens = clean.tokens.to(model.cfg.device).repeat(n_circuits, 1)
    with torch.no_grad(), hooks_added(model, graph_hooks(model, graph, on_sender, on_receiver)):
        return forward_metric(model, metric, tokens, [clean] * n_circuits)


def faithfulness(
    circuit_metric: Float[Tensor, "... n_pairs"], clean_metric: Float[Tensor, " n_pairs"], corrupted_metric: Tensor
) -> Float[Tensor, "..."]:
    """``(mean m_circuit - mean m_corrupted) / (mean m_clean - mean m_corrupted)``, means over the pairs
    (last axis)."""
    gap = float(clean_metric.mean() - corrupted_metric.mean())
    if gap == 0:
        raise InputError("The clean and corrupted runs have the same mean metric: faithfulness is undefined.")
    return (circuit_metric.mean(-1) - corrupted_metric.mean()) / gap
