"""Exact edge patching, and edge scores equal to it where the first-order estimate is exact."""

from __future__ import annotations

import pytest
import torch
from patching.reference import METRIC, make_pairs

from lens_bias.circuits.exact import exact_edge_effects
from lens_bias.circuits.graph import Graph
from lens_bias.circuits.scores import edge_scores
from lens_bias.errors import InputError
from lens_bias.patching import logit_diff_metric

from .linear import norm_free_gqa_model


@pytest.mark.parametrize("attn_only", [False, True])
def test_scores_equal_exact_patching_where_the_estimate_is_exact(attn_only):
    """Without norms and with a metric linear in the logits, the metric is linear in the logits' input, and
    (attention-only: no MLP after the heads) in every last-layer value input given the attention pattern,
    which reads q and k only: for edges into those receivers EAP's first-order estimate is the exact effect.
    EAP-IG too for the edges into the logits (the gradient there is the same at every point of the path;
    into a value input it is not: the pattern moves with the interpolated input). Edges into q and k
    inputs differ. (The model runs in float64; the metric casts the logits to float32: the tolerance.)"""
    model = norm_free_gqa_model(attn_only)
    clean, corrupted = make_pairs([7, 9, 8], [2, 4, 1], pad_id=0)
    metric = logit_diff_metric([5, 6, 7], [8, 9, 10])
    graph = Graph.of(model)
    values = graph.input_receivers(graph.n_layers - 1, "v")
    receivers = [graph.logits_receiver, *(range(values.start, values.stop) if attn_only else [])]
    edges = torch.tensor([[s, r] for r in receivers for s in range(len(graph.senders)) if graph.valid[s, r]])
    exact = exact_edge_effects(model, clean, corrupted, metric, edges, batch_size=24)
    assert exact.shape == (len(edges), 3) and exact.abs().max() > 1e-3
    scores = edge_scores(model, clean, corrupted, metric, method="eap").scores
    torch.testing.assert_close(scores[edges[:, 0], edges[:, 1]], exact.mean(1).double(), atol=1e-7, rtol=1e-5)
    into_logits = edges[:, 1] == graph.logits_receiver
    ig = edge_scores(model, clean, corrupted, metric, method="eap_ig", steps=3).scores[edges[:, 0], edges[:, 1]]
    torch.testing.assert_close(ig[into_logits], exact.mean(1)[into_logits].double(), atol=1e-7, rtol=1e-5)
    nonlinear = torch.tensor([[0, graph.input_receivers(1, "q").start], [0, graph.input_receivers(1, "k").start]])
    differs = exact_edge_effects(model, clean, corrupted, metric, nonlinear).mean(1)
    assert not torch.allclose(scores[nonlinear[:, 0], nonlinear[:, 1]].float(), differs, atol=0, rtol=1e-2)


def test_exact_patching_batches_and_checks_edges(tiny_gqa_model):
    clean, corrupted = make_pairs([6, 8], [2, 3])
    graph = Graph.of(tiny_gqa_model)
    edges = torch.tensor(
        [[0, graph.logits_receiver], [1, graph.mlp_receiver(0)], [0, graph.input_receivers(2, "k").start]]
    )
    one_by_one = exact_edge_effects(tiny_gqa_model, clean, corrupted, METRIC, edges, batch_size=1)
    together = exact_edge_effects(tiny_gqa_model, clean, corrupted, METRIC, edges, batch_size=64)
    torch.testing.assert_close(one_by_one, together, atol=1e-5, rtol=1e-4)
    flipped = exact_edge_effects(tiny_gqa_model, clean, corrupted, METRIC, edges.flip(0), batch_size=2)
    torch.testing.assert_close(flipped.flip(0), together, atol=1e-5, rtol=1e-4)  # rows follow the edges given
    with pytest.raises(InputError, match="Not edges"):
        exact_edge_effects(tiny_gqa_model, clean, corrupted, METRIC, torch.tensor([[graph.mlp_sender(3), 0]]))
