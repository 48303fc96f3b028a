"""Circuits and faithfulness: the full graph is the clean run (faithfulness 1), the empty circuit the
corrupted run (0), pruning never changes a circuit's metric, circuits by size / threshold / at random."""

from __future__ import annotations

import pytest
import torch
from patching.reference import METRIC, make_pairs

from lens_bias.circuits.faithfulness import circuit_metrics, faithfulness, prune, random_circuit, top_circuit
from lens_bias.circuits.graph import Graph
from lens_bias.circuits.scores import edge_scores
from lens_bias.errors import InputError
from lens_bias.patching.metrics import logit_diff_metric


def test_full_graph_is_clean_empty_circuit_is_corrupted_and_pruning_changes_nothing(tiny_gqa_model):
    clean, corrupted = make_pairs([6, 8], [2, 3], seed=1)
    scores = edge_scores(tiny_gqa_model, clean, corrupted, METRIC)
    graph = scores.graph
    top = top_circuit(scores, 40)
    circuits = torch.stack([graph.valid, torch.zeros_like(graph.valid), top, prune(graph, top)])
    values = circuit_metrics(tiny_gqa_model, clean, corrupted, METRIC, circuits, batch_size=4)
    assert values.shape == (4, 2)
    torch.testing.assert_close(values[0], scores.clean_metric, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(values[1], scores.corrupted_metric, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(values[3], values[2], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(values[2], scores.clean_metric, atol=1e-4)
    ratio = faithfulness(values, scores.clean_metric, scores.corrupted_metric)
    torch.testing.assert_close(ratio[:2], torch.tensor([1.0, 0.0]), atol=2e-3, rtol=0)


def test_prune_keeps_input_to_logits_paths(tiny_gqa_model):
    graph = Graph.of(tiny_gqa_model)
    sender = {name: i for i, name in enumerate(graph.senders)}
    receiver = {name: i for i, name in enumerate(graph.receivers)}
    circuit = torch.zeros_like(graph.valid)
    path = [("input", "a0.kv1.v"), ("a0.h3", "m2"), ("m2", "logits")]  # kv head 1 feeds query head 3
    dangling = [("a1.h0", "logits"), ("input", "a2.h1.q")]  # a1.h0 is not reached; a2.h1 reaches nothing
    for u, v in path + dangling:
        circuit[sender[u], receiver[v]] = True
    pruned = prune(graph, circuit)
    assert sorted(graph.edge_names(pruned.nonzero())) == sorted(f"{u}->{v}" for u, v in path)
    assert prune(graph, graph.valid).equal(graph.valid)


def test_circuits_by_size_threshold_and_at_random(tiny_model):
    clean, corrupted = make_pairs([5, 7], [1, 2])
    scores = edge_scores(tiny_model, clean, corrupted, METRIC)
    by_size = top_circuit(scores, 25)
    threshold = float(scores.scores.abs()[by_size].min())
    assert int(by_size.sum()) == 25 and top_circuit(scores, threshold=threshold).equal(by_size)
    draw = [random_circuit(scores.graph, 25, torch.Generator().manual_seed(seed)) for seed in (0, 0, 1)]
    assert draw[0].equal(draw[1]) and not draw[0].equal(draw[2]) and int(draw[2].sum()) == 25
    assert not (draw[2] & ~scores.graph.valid).any()
    with pytest.raises(InputError):
        top_circuit(scores, 5, threshold=0.1)
    with pytest.raises(InputError):
        random_circuit(scores.graph, scores.graph.n_edges + 1, torch.Generator())


def test_mean_ablation_reads_the_position_wise_mean(tiny_model):
    """With mean ablation, the full graph is still the clean run; cutting only the edges into the logits
    makes the logits read the mean final residual stream of the pairs' both sides (the same for every pair),
    computed here independently from the cached runs."""
    clean, corrupted = make_pairs([6, 6], [2, 3], seed=3)
    metric = logit_diff_metric([5, 5], [7, 7])
    graph = Graph.of(tiny_model)
    no_logits = graph.valid.clone()
    no_logits[:, graph.logits_receiver] = False
    circuits = torch.stack([graph.valid, no_logits])
    values = circuit_metrics(tiny_model, clean, corrupted, metric, circuits, ablation="mean")
    clean_metric = edge_scores(tiny_model, clean, corrupted, metric).clean_metric
    torch.testing.assert_close(values[0], clean_metric, atol=1e-5, rtol=1e-4)
    name = f"blocks.{tiny_model.cfg.n_layers - 1}.hook_resid_post"
    with torch.no_grad():
        resid = torch.cat([tiny_model.run_with_cache(b.tokens, names_filter=name)[1][name] for b in (clean, corrupted)])
        logits = tiny_model.unembed(tiny_model.ln_final(resid.mean(0, keepdim=True)))[0, -1]
    expected = (logits[5] - logits[7]).expand(2)
    torch.testing.assert_close(values[1], expected, atol=1e-4, rtol=1e-4)
    with pytest.raises(InputError, match="Unknown ablation"):
        circuit_metrics(tiny_model, clean, corrupted, metric, circuits, ablation="zero")  # type: ignore[arg-type]
