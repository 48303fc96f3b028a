"""Edge ablation: cutting every edge into the logits makes them read the senders' means (the same for any
prompt) at every position but the first; the model's hook flags are restored; the most negative edges are
chosen, none of a control's top edges among them; a saved ablation loads back and acts the same; bad edges and
means are refused."""

from __future__ import annotations

import pytest
import torch
from patching.reference import make_pairs

from lens_bias.circuits.ablation import EdgeAblation, bias_edge_ablation, gap_change
from lens_bias.circuits.faithfulness import top_circuit
from lens_bias.circuits.graph import Graph
from lens_bias.circuits.scores import edge_scores
from lens_bias.errors import InputError
from lens_bias.interventions import load_intervention, save_intervention
from lens_bias.patching import PatchingInputs


def test_cut_logit_edges_read_the_means_and_flags_are_restored(tiny_model):
    graph = Graph.of(tiny_model)
    senders = torch.arange(len(graph.senders))
    edges = torch.stack([senders, torch.full_like(senders, graph.logits_receiver)], 1)
    means = torch.randn(len(graph.senders), tiny_model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    ablation = EdgeAblation(edges, means)
    tokens = torch.randint(3, 200, (2, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = tiny_model(tokens)
        with ablation.applied(tiny_model):
            cut = tiny_model(tokens)
    assert not tiny_model.cfg.use_split_qkv_input and not tiny_model.cfg.use_hook_mlp_in
    torch.testing.assert_close(cut[:, 0], plain[:, 0])  # the first position keeps its edges
    torch.testing.assert_close(cut[0, 1:], cut[1, 1:])  # elsewhere the logits read no prompt at all
    assert not torch.allclose(cut[:, 1:], plain[:, 1:])
    with pytest.raises(InputError, match="not edges of this model"):
        EdgeAblation(torch.tensor([[graph.mlp_sender(1), graph.mlp_receiver(0)]]), means).check(tiny_model)
    with pytest.raises(InputError, match="do not fit"):
        EdgeAblation(edges, means[:, :3]).check(tiny_model)


def test_bias_edges_are_the_most_negative_and_survive_saving(tiny_model, tmp_path):
    clean, corrupted = make_pairs([6, 7, 6], [2, 3, 1], seed=6)
    inputs = PatchingInputs([], clean, corrupted, torch.tensor([5, 6, 7]), torch.tensor([8, 9, 10]), {})
    ablation, details = bias_edge_ablation(tiny_model, inputs, 12)
    scores = edge_scores(tiny_model, clean, corrupted, inputs.metric()).scores
    chosen = scores[ablation.edges[:, 0], ablation.edges[:, 1]]
    graph = Graph.of(tiny_model)
    rest = scores[graph.valid].sort().values[12]
    assert len(ablation.edges) == 12 and float(chosen.max()) <= float(rest) and len(details["edges"]) == 12
    assert ablation.means.shape == (len(graph.senders), tiny_model.cfg.d_model)
    loaded = load_intervention(save_intervention(ablation, tmp_path / "cut", {}))
    assert isinstance(loaded, EdgeAblation) and loaded.edges.equal(ablation.edges)
    with torch.no_grad(), loaded.applied(tiny_model):
        again = tiny_model(clean.tokens)
    with torch.no_grad(), ablation.applied(tiny_model):
        first = tiny_model(clean.tokens)
    torch.testing.assert_close(again, first)
    with pytest.raises(InputError):
        bias_edge_ablation(tiny_model, inputs, 0)


def test_a_control_keeps_its_top_edges_out_of_the_ablation(tiny_model):
    clean, corrupted = make_pairs([6, 7, 6], [2, 3, 1], seed=6)
    inputs = PatchingInputs([], clean, corrupted, torch.tensor([5, 6, 7]), torch.tensor([8, 9, 10]), {})
    other_clean, other_corrupted = make_pairs([6, 7, 6], [4, 1, 2], seed=7)
    control = PatchingInputs([], other_clean, other_corrupted, torch.tensor([11, 12, 13]), torch.tensor([5, 6, 7]), {})
    graph = Graph.of(tiny_model)
    kept = top_circuit(edge_scores(tiny_model, other_clean, other_corrupted, control.metric()), 40)
    plain, _ = bias_edge_ablation(tiny_model, inputs, 12)
    ablation, details = bias_edge_ablation(tiny_model, inputs, 12, control=control, control_edges=40)
    assert not kept[ablation.edges[:, 0], ablation.edges[:, 1]].any()  # no kept edge is cut
    excluded = int(kept[plain.edges[:, 0], plain.edges[:, 1]].sum())
    assert details["control_circuit"]["excluded_of_top_k"] == excluded > 0  # the control changed the choice
    scores = edge_scores(tiny_model, clean, corrupted, inputs.metric()).scores
    rest = scores[graph.valid & ~kept].sort().values[12]  # the 12 most negative of the edges left
    assert float(scores[ablation.edges[:, 0], ablation.edges[:, 1]].max()) <= float(rest)
    same, _ = bias_edge_ablation(tiny_model, inputs, 12, control=control, control_edges=0)
    assert same.edges.equal(plain.edges)
    with pytest.raises(InputError, match="k \\+ control_edges at most"):
        bias_edge_ablation(tiny_model, inputs, graph.n_edges - 39, control=control, control_edges=40)


def test_an_edge_into_a_key_input_and_one_into_an_mlp_equal_adding_mean_minus_output_there(tiny_gqa_model):
    """Only the blocks with a cut edge run with split inputs; the result equals the definition, computed by hand:
    the receiver's input gets ``mean - out`` of its sender (positions after the first), everything else as is."""
    model, graph = tiny_gqa_model, Graph.of(tiny_gqa_model)
    head, kv = graph.head_senders(0).start + 1, graph.input_receivers(1, "k").start + 1  # a0.h1 -> a1.kv1.k
    mlp, into = graph.mlp_sender(0), graph.mlp_receiver(1)  # m0 -> m1
    means = torch.randn(len(graph.senders), model.cfg.d_model, generator=torch.Generator().manual_seed(2))
    ablation = EdgeAblation(torch.tensor([[head, kv], [mlp, into]]), means)
    tokens = torch.randint(3, 200, (2, 6), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens)
        outputs = {
            head: cache["blocks.0.attn.hook_z"][:, :, 1] @ model.blocks[0].attn.W_O[1],
            mlp: cache["blocks.0.hook_mlp_out"],
        }
        deltas = {sender: means[sender] - out for sender, out in outputs.items()}
        for delta in deltas.values():
            delta[:, 0] = 0

        def key_input(value, hook):
            value[:, :, 1] += deltas[head]
            return value

        def mlp_input(value, hook):
            return value + deltas[mlp]

        flags = model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in
        model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in = True, True
        try:
            expected = model.run_with_hooks(
                tokens, fwd_hooks=[("blocks.1.hook_k_input", key_input), ("blocks.1.hook_mlp_in", mlp_input)]
            )
        finally:
            model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in = flags
        with ablation.applied(model):
            cut = model(tokens)
    torch.testing.assert_close(cut, expected)
    assert not torch.allclose(cut, model(tokens))
    assert (model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in) == flags


def test_cutting_every_edge_into_the_logits_closes_every_gap(tiny_model):
    clean, corrupted = make_pairs([6, 7, 6], [2, 3, 1], seed=6)
    inputs = PatchingInputs([], clean, corrupted, torch.tensor([5, 6, 7]), torch.tensor([8, 9, 10]), {})
    graph = Graph.of(tiny_model)
    senders = torch.arange(len(graph.senders))
    edges = torch.stack([senders, torch.full_like(senders, graph.logits_receiver)], 1)
    means = torch.randn(len(graph.senders), tiny_model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    change = gap_change(tiny_model, EdgeAblation(edges, means), inputs, batch_size=2)
    assert change["n_pairs"] == 3 and abs(change["before"]) > 1e-3
    assert change["after"] == pytest.approx(0.0, abs=1e-5)  # the last token's logits read the means alone
