"""The circuit of an injected bias, and whether BiasScope's selected heads sit in it (:func:`injected_circuit`).

On one BiasInject run's model: clean = the localisation prompts with the
injected entity, corrupted = the same with the run's adversarial real entity, metric = attribute vs neutral
first-token logits at the last token (the contrast BiasScope patches, :func:`~lens_bias.localize.contrast.
bias_contrast`). Every edge of the injected model is scored (EAP or EAP-IG) and the top ``n_edges`` are pruned
to a circuit (:mod:`lens_bias.circuits`). A head is *in* the circuit when the pruned circuit has an edge out of
it (its output) or into one of its query/key/value inputs. Share = the selected heads in the circuit over the
selected heads; chance = the circuit's heads over all heads (the share of a uniform random draw), with the
one-sided hypergeometric p-value of at least that many selected heads landing in the circuit by chance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.circuits.faithfulness import prune, top_circuit
from lens_bias.circuits.graph import Graph
from lens_bias.circuits.scores import Method, edge_scores
from lens_bias.data.injection_specs import InjectionSpec
from lens_bias.errors import InputError
from lens_bias.localize.contrast import bias_contrast

Head = tuple[int, int]


def circuit_heads(graph: Graph, circuit: torch.Tensor) -> list[Head]:
    """The ``(layer, head)`` query heads with an edge of ``circuit`` out of them or into one of their inputs
    (a key/value receiver counts for every query head of its group)."""
    used_senders = circuit.any(1)
    used_inputs = graph.feeds[circuit.any(0)].any(0)  # senders whose inputs receive a circuit edge
    heads = []
    for layer in range(graph.n_layers):
        block = graph.head_senders(layer)
        for h in range(graph.n_heads):
            if used_senders[block.start + h] or used_inputs[block.start + h]:
                heads.append((layer, h))
    return heads


def injected_circuit(
    injected: HookedTransformer,
    spec: InjectionSpec,
    adversarial: str,
    heads: Sequence[Head],
    n_edges: int,
    *,
    method: Method = "eap",
    steps: int = 5,
    templates: Sequence[str] | None = None,
) -> tuple[dict[str, Any], Float[Tensor, "n_senders n_receivers"]]:
    """The circuit of the bias injected into ``injected`` (a BiasInject run's model, e.g.
    :attr:`InjectionRun.injected <lens_bias.localize.runs.InjectionRun>`, against the real entity ``adversarial``:
    the run's; its top ``n_edges`` edges, pruned; module docstring) and where
    ``heads`` (e.g. BiasScope's selection) fall. Returns JSON-ready values: ``n_edges``, ``pruned_edges``,
    ``circuit_heads`` and ``n_heads`` (all heads), ``selected_in_circuit`` (the selected heads in it), ``share``,
    ``chance``, ``p_value``, the metric's clean / corrupted means and the top edges' names; and every edge's
    score ``[n_senders, n_receivers]`` (nats; 0 off the graph), to compare the circuit with others
    (:mod:`lens_bias.circuits.overlap`)."""
    if not heads:
        raise InputError("No heads to place in the circuit.")
    contrast = bias_contrast(injected, spec, adversarial, templates)
    scores = edge_scores(injected, contrast.biased, contrast.adversarial, contrast.metric(), method=method, steps=steps)
    graph = scores.graph
    circuit = prune(graph, top_circuit(scores, min(n_edges, graph.n_edges)))
    inside = set(circuit_heads(graph, circuit))
    chosen = [tuple(head) for head in heads]
    hits = [head for head in chosen if head in inside]
    total = graph.n_layers * graph.n_heads
    values = {
        "n_edges": n_edges,
        "pruned_edges": int(circuit.sum()),
        "circuit_heads": sorted(inside),
        "n_heads": total,
        "selected_in_circuit": hits,
        "share": len(hits) / len(chosen),
        "chance": len(inside) / total,
        "p_value": _hypergeometric_tail(len(hits), total, len(inside), len(chosen)),
        "clean_metric": float(scores.clean_metric.mean()),
        "corrupted_metric": float(scores.corrupted_metric.mean()),
        "top_edges": graph.edge_names(scores.top(min(10, graph.n_edges))),
    }
    return values, scores.scores


def _hypergeometric_tail(hits: int, total: int, marked: int, drawn: int) -> float:
    """P(at least ``hits`` of ``drawn`` heads drawn without replacement from ``total`` are among ``marked``)."""
    denominator = math.comb(total, drawn)
    return (
        sum(math.comb(marked, k) * math.comb(total - marked, drawn - k) for k in range(hits, drawn + 1)) / denominator
    )
