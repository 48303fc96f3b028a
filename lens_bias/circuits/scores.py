"""Edge scores: edge attribution patching (EAP) and EAP with integrated gradients (EAP-IG).

The score of edge u -> v estimates how much the metric changes, averaged over the pairs, when u's output
as it enters v's input alone is switched from the clean run to the corrupted run (every other path left
clean; :func:`exact_edge_effects <lens_bias.circuits.exact.exact_edge_effects>` measures it):

* EAP (Syed et al. 2023): ``(a_u(corrupted) - a_u(clean)) . d metric / d in_v`` at the clean run, summed
  over positions, averaged over the pairs: one forward of the corrupted prompts and one forward and
  backward of the clean ones.
* EAP-IG (Hanna et al. 2024): the same activation difference times the gradient averaged over ``steps``
  points of the straight line from the corrupted to the clean input embedding (``blocks.0.hook_resid_pre``):
  ``x_k = x_corrupted + k / steps (x_clean - x_corrupted)`` for ``k = 1 .. steps`` (a right Riemann sum,
  the convention of the authors' code), so ``steps=1`` is the gradient at the clean input, i.e. EAP. One
  forward each of the clean and corrupted prompts, ``steps`` forwards and backwards.

The gradient of the summed per-pair metric is taken once per forward (rows do not interact), so all pairs
run in one batch: memory grows with the number of pairs. Units: the metric's (nats for logit differences).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.circuits.graph import Graph, graph_mode
from lens_bias.circuits.runs import graph_hooks
from lens_bias.errors import InputError
from lens_bias.forward.hooks import hooks_added
from lens_bias.patching.checks import check_pairs, forward_metric
from lens_bias.patching.metrics import Metric
from lens_bias.prompts import PromptBatch

Method = Literal["eap", "eap_ig"]
METHODS: tuple[Method, ...] = ("eap", "eap_ig")


@dataclass
class EdgeScores:
    """``scores[s, r]``: the estimated mean change of the metric (its units) when edge sender ``s`` ->
    receiver ``r`` carries the corrupted run's value; 0 where there is no edge (``graph.valid``).
    ``clean_metric`` / ``corrupted_metric``: ``[n_pairs]``, the metric of the two unpatched runs."""

    scores: Float[Tensor, "n_senders n_receivers"]
    graph: Graph
    method: Method
    steps: int
    clean_metric: Float[Tensor, " n_pairs"]
    corrupted_metric: Float[Tensor, " n_pairs"]

    def top(self, n: int) -> Int[Tensor, "n 2"]:
        """The ``n`` edges with the largest ``|score|`` (ties by index), as (sender, receiver) rows."""
        return top_edges(self.scores, self.graph, n)

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "steps": self.steps, "graph": self.graph.describe()}


def top_edges(scores: Float[Tensor, "n_senders n_receivers"], graph: Graph, n: int) -> Int[Tensor, "n 2"]:
    """The ``n`` edges of ``graph`` with the largest ``|scores|`` (ties by index), as (sender, receiver) rows."""
    if not 0 <= n <= graph.n_edges:
        raise InputError(f"n must be between 0 and the graph's {graph.n_edges} edges, got {n}.")
    magnitude = scores.abs().masked_fill(~graph.valid, -1.0).flatten()
    order = torch.sort(magnitude, descending=True, stable=True).indices[:n]
    return torch.stack([order // scores.shape[1], order % scores.shape[1]], 1)


def sender_outputs(
    model: HookedTransformer, graph: Graph, batch: PromptBatch, metric: Metric
) -> tuple[Float[Tensor, "batch pos n_senders d_model"], Float[Tensor, " batch"]]:
    """Every sender's output (in :func:`buffer_dtype`) and the metric of ``batch``'s unpatched run (no gradients; inside
    :func:`graph_mode`)."""
    outputs = _sender_buffer(model, graph, batch)

    def store(index: slice, value: Tensor) -> None:
        outputs[:, :, index] = value.to(outputs.dtype)

    with torch.no_grad(), hooks_added(model, graph_hooks(model, graph, store, None)):
        value = forward_metric(model, metric, batch.tokens.to(model.cfg.device), [batch])[0]
    return outputs, value


def _sender_buffer(model: HookedTransformer, graph: Graph, batch: PromptBatch) -> Tensor:
    shape = (*batch.tokens.shape, len(graph.senders), model.cfg.d_model)
    return torch.zeros(shape, device=model.cfg.device, dtype=buffer_dtype(model))


def buffer_dtype(model: HookedTransformer) -> torch.dtype:
    """What sender outputs and gradients are kept in: float32, or the model's dtype where wider."""
    return torch.promote_types(model.cfg.dtype, torch.float32)


def edge_scores(
    model: HookedTransformer,
    clean: PromptBatch,
    corrupted: PromptBatch,
    metric: Metric,
    *,
    method: Method = "eap",
    steps: int = 5,
) -> EdgeScores:
    """Score every edge of ``model``'s graph by EAP or EAP-IG (module docstring) on the clean/corrupted
    pairs (row i of both: pair i, the same token length), for ``metric(logits, batch) -> [batch]``
    (any metric of :mod:`lens_bias.patching.metrics`; called with the clean batch). ``steps``: EAP-IG's
    points on the path (ignored by EAP). Returns :class:`EdgeScores` (``[n_senders, n_receivers]``)."""
    if method not in METHODS:
        raise InputError(f"Unknown method {method!r}: use one of {', '.join(METHODS)}.")
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}.")
    clean, corrupted = check_pairs(clean, corrupted)
    with graph_mode(model) as graph:
        corrupted_out, corrupted_metric = sender_outputs(model, graph, corrupted, metric)
        if method == "eap":
            clean_out = _sender_buffer(model, graph, clean)
            grads, clean_metric = _receiver_grads(model, graph, clean, metric, lambda x: x, clean_out)
        else:
            clean_out, clean_metric = sender_outputs(model, graph, clean, metric)
            start, end = corrupted_out[:, :, 0], clean_out[:, :, 0]
            points = [(start + k / steps * (end - start)).to(model.cfg.dtype) for k in range(1, steps + 1)]
            grads = _receiver_grads(model, graph, clean, metric, lambda x: points[0], None)[0] / steps
            for point in points[1:]:
                grads += _receiver_grads(model, graph, clean, metric, lambda x, p=point: p, None)[0] / steps
        delta = corrupted_out - clean_out
        scores = torch.einsum("bpsd,bprd->sr", delta, grads) / len(clean)
    scores = scores.cpu().masked_fill(~graph.valid, 0.0)
    steps = 1 if method == "eap" else steps
    return EdgeScores(scores, graph, method, steps, clean_metric.cpu(), corrupted_metric.cpu())


def _receiver_grads(
    model: HookedTransformer,
    graph: Graph,
    batch: PromptBatch,
    metric: Metric,
    input_at: Any,
    outputs: Tensor | None,
) -> tuple[Float[Tensor, "batch pos n_receivers d_model"], Float[Tensor, " batch"]]:
    """d (summed metric) / d (every receiver's input) (in :func:`buffer_dtype`), with the input embedding replaced by
    ``input_at(input)`` (a leaf, so frozen weights need no gradient); sender outputs into ``outputs``."""
    inputs: dict[int, Tensor] = {}

    def on_sender(index: slice, value: Tensor) -> Tensor | None:
        if outputs is not None:
            outputs[:, :, index] = value.detach().to(outputs.dtype)
        if index.start == 0:
            return input_at(value[:, :, 0].detach()).detach().requires_grad_(True)[:, :, None]
        return None

    def on_receiver(index: slice, value: Tensor) -> Tensor:
        inputs[index.start] = value
        return value  # the tensor the model reads on, so the gradient reaches it (a view of one-node hooks)

    with torch.enable_grad(), hooks_added(model, graph_hooks(model, graph, on_sender, on_receiver)):
        value = forward_metric(model, metric, batch.tokens.to(model.cfg.device), [batch])[0]
        starts = sorted(inputs)
        found = torch.autograd.grad(value.sum(), [inputs[start] for start in starts], allow_unused=True)
    shape = (*batch.tokens.shape, len(graph.receivers), model.cfg.d_model)
    grads = torch.zeros(shape, device=model.cfg.device, dtype=buffer_dtype(model))
    for start, grad in zip(starts, found):
        if grad is not None:
            grads[:, :, start : start + grad.shape[2]] = grad.to(grads.dtype)
    return grads, value.detach()
