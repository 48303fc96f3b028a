"""The injected bias's circuit: heads in a circuit (outputs and q/k/v inputs, kv groups), the hypergeometric
tail, and the study on a tiny injection (every edge: every head is in it, share 1 = chance, p = 1)."""

from __future__ import annotations

import math

import pytest
import torch

from lens_bias.circuits.graph import Graph
from lens_bias.data.injection_specs import candidate_entities
from lens_bias.errors import InputError
from lens_bias.localize.circuit import _hypergeometric_tail, circuit_heads, injected_circuit
from lens_bias.localize.contrast import localization_prompts
from lens_bias.localize.inject import InjectionConfig, closest_entities, inject

from .tiny import TINY_SPEC


def test_heads_in_a_circuit(tiny_gqa_model):
    graph = Graph.of(tiny_gqa_model)
    sender = {name: i for i, name in enumerate(graph.senders)}
    receiver = {name: i for i, name in enumerate(graph.receivers)}
    circuit = torch.zeros_like(graph.valid)
    circuit[sender["a0.h1"], receiver["logits"]] = True  # out of head (0, 1)
    circuit[sender["input"], receiver["a1.kv1.k"]] = True  # into kv head 1 of layer 1: its query heads 2, 3
    assert circuit_heads(graph, circuit) == [(0, 1), (1, 2), (1, 3)]


def test_hypergeometric_tail():
    assert _hypergeometric_tail(0, 10, 4, 3) == pytest.approx(1.0)
    assert _hypergeometric_tail(3, 10, 4, 3) == pytest.approx(math.comb(4, 3) / math.comb(10, 3))


def test_injected_circuit_of_a_tiny_run(tiny_model):
    injected, entity = inject(tiny_model, TINY_SPEC, InjectionConfig(steps=1))
    matches = closest_entities(injected, entity.embedding, candidate_entities("countries"))
    adversarial = next(m.entity for m in matches if m.n_tokens == 1)
    graph, templates = Graph.of(tiny_model), localization_prompts(TINY_SPEC)[:2]
    values, scores = injected_circuit(
        injected, TINY_SPEC, adversarial, [(0, 0), (1, 2)], graph.n_edges, templates=templates
    )
    assert scores.shape == graph.valid.shape and not scores[~graph.valid].any() and scores[graph.valid].any()
    assert values["pruned_edges"] == graph.n_edges and len(values["circuit_heads"]) == values["n_heads"]
    assert values["share"] == values["chance"] == 1.0 and values["p_value"] == pytest.approx(1.0)
    small, _ = injected_circuit(injected, TINY_SPEC, adversarial, [(0, 0)], 10, templates=templates)
    assert small["pruned_edges"] <= 10 and small["chance"] == len(small["circuit_heads"]) / small["n_heads"]
    with pytest.raises(InputError):
        injected_circuit(injected, TINY_SPEC, adversarial, [], 10)
