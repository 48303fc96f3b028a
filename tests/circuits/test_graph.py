"""The graph: senders and receivers in stage order, edges only forward in time, kv-head groups, and the
flags of graph_mode restored."""

from __future__ import annotations

import pytest
import torch

from lens_bias.circuits.graph import Graph, graph_mode
from lens_bias.errors import InputError


def test_layout_of_a_gqa_model(tiny_gqa_model):
    graph = Graph.of(tiny_gqa_model)  # 4 layers, 4 query heads, 2 kv heads, MLPs
    assert (graph.n_heads, graph.n_kv_heads) == (4, 2)
    assert len(graph.senders) == 1 + 4 * (4 + 1) and len(graph.receivers) == 4 * (4 + 2 + 2 + 1) + 1
    assert graph.senders[graph.head_senders(1)] == ["a1.h0", "a1.h1", "a1.h2", "a1.h3"]
    assert graph.senders[graph.mlp_sender(3)] == "m3" and graph.receivers[graph.logits_receiver] == "logits"
    assert graph.receivers[graph.input_receivers(2, "k")] == ["a2.kv0.k", "a2.kv1.k"]
    assert graph.receivers[graph.input_receivers(2, "v")] == ["a2.kv0.v", "a2.kv1.v"]
    name = {n: i for i, n in enumerate(graph.receivers)}
    sender = {n: i for i, n in enumerate(graph.senders)}
    valid = graph.valid
    assert valid[sender["input"]].all()  # the input reaches every receiver
    assert not valid[sender["a1.h0"], name["a1.h2.q"]]  # no edge within one attention layer
    assert valid[sender["a1.h0"], name["m1"]] and not valid[sender["m1"], name["m1"]]
    assert valid[sender["m1"], name["a2.kv1.v"]] and valid[:, graph.logits_receiver].all()
    # kv head 1 feeds query heads 2 and 3; the logits feed nothing
    assert graph.feeds[name["a0.kv1.k"]].nonzero().flatten().tolist() == [sender["a0.h2"], sender["a0.h3"]]
    assert not graph.feeds[graph.logits_receiver].any()
    assert graph.n_edges == int(valid.sum()) and graph.edge_names(torch.tensor([[0, 0]])) == ["input->a0.h0.q"]


def test_graph_mode_restores_the_flags(tiny_model):
    before = tiny_model.cfg.use_split_qkv_input, tiny_model.cfg.use_hook_mlp_in
    with pytest.raises(RuntimeError), graph_mode(tiny_model):
        assert tiny_model.cfg.use_split_qkv_input and tiny_model.cfg.use_hook_mlp_in
        raise RuntimeError
    assert (tiny_model.cfg.use_split_qkv_input, tiny_model.cfg.use_hook_mlp_in) == before


def test_only_hooked_transformers():
    with pytest.raises(InputError, match="HookedTransformer"):
        Graph.of(torch.nn.Linear(2, 2))  # type: ignore[arg-type]
