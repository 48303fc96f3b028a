"""Exact edge patching, the ground truth edge scores estimate: one edge at a time, the clean run with only
that edge switched to the corrupted run.

Patching edge u -> v adds ``a_u(corrupted) - a_u(clean)`` to receiver v's input (before its norm) and to
nothing else: every other reader of u, and every other input of v, keeps its clean value. Since v comes
after u, u's clean output in the patched run is its output in the unpatched clean run, so both outputs come
from one cached forward each. Edges run in blocks of rows (edge-major, the pairs within), one forward per
block.
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.circuits.graph import graph_mode
from lens_bias.circuits.runs import graph_hooks
from lens_bias.circuits.scores import sender_outputs
from lens_bias.errors import InputError
from lens_bias.forward.hooks import hooks_added
from lens_bias.patching.checks import check_pairs, forward_metric, storing_hook
from lens_bias.patching.metrics import Metric
from lens_bias.prompts import PromptBatch


def exact_edge_effects(
    model: HookedTransformer,
    clean: PromptBatch,
    corrupted: PromptBatch,
    metric: Metric,
    edges: Int[Tensor, "n_edges 2"],
    *,
    batch_size: int = 64,
) -> Float[Tensor, "n_edges n_pairs"]:
    """``metric(clean run with edge e patched) - metric(clean run)`` per edge (rows of (sender, receiver)
    indices of the model's :class:`~lens_bias.circuits.graph.Graph`) and pair, in the metric's units: the
    mean over pairs is what :func:`~lens_bias.circuits.scores.edge_scores` estimates. ``batch_size``: rows
    per forward (edges x pairs; at least one edge with all pairs)."""
    clean, corrupted = check_pairs(clean, corrupted)
    edges = torch.as_tensor(edges, dtype=torch.long).reshape(-1, 2)
    with graph_mode(model) as graph:
        if len(edges) and not bool(graph.valid[edges[:, 0], edges[:, 1]].all()):
            bad = edges[~graph.valid[edges[:, 0], edges[:, 1]]][:3].tolist()
            raise InputError(f"Not edges of the graph (the sender must write before the receiver reads): {bad}.")
        corrupted_out, _ = sender_outputs(model, graph, corrupted, metric)
        resid: dict[str, Tensor] = {}
        names = [f"blocks.{layer}.hook_resid_pre" for layer in range(graph.n_layers)]
        with hooks_added(model, [(name, storing_hook(resid, name, slice(None))) for name in names]):
            clean_out, clean_metric = sender_outputs(model, graph, clean, metric)
        delta = corrupted_out - clean_out  # [pairs, pos, n_senders, d_model]
        # the layer each receiver reads in (the logits: the last block, whose resid_post they read)
        layers = ((graph.receiver_stage - 1) // 2).clamp(max=graph.n_layers - 1)
        order = torch.sort(layers[edges[:, 1]], stable=True).indices if len(edges) else torch.zeros(0, dtype=torch.long)
        # what a full forward of the clean tokens passes to every block besides the residual stream
        _, _, shortformer, attention_mask = model.input_to_embed(clean.tokens.to(model.cfg.device))
        n_pairs = len(clean)
        per_forward = max(1, batch_size // n_pairs)
        effects = []
        for first in range(0, len(edges), per_forward):
            block = edges[order[first : first + per_forward]]
            start = int(layers[block[:, 1]].min())

            def on_receiver(index: slice, value: Tensor, block: Tensor = block) -> Tensor | None:
                hits = ((block[:, 1] >= index.start) & (block[:, 1] < index.stop)).nonzero().flatten().tolist()
                if not hits:
                    return None
                value = value.clone()
                for e in hits:
                    sender, receiver = int(block[e, 0]), int(block[e, 1])
                    rows = slice(e * n_pairs, (e + 1) * n_pairs)
                    value[rows, :, receiver - index.start] += delta[:, :, sender].to(value.dtype)
                return value

            n = len(block)
            with torch.no_grad(), hooks_added(model, graph_hooks(model, graph, None, on_receiver)):
                patched = forward_metric(
                    model,
                    metric,
                    resid[names[start]].repeat(n, 1, 1),
                    [clean] * n,
                    start_at_layer=start,
                    attention_mask=_repeat_rows(attention_mask, n),
                    shortformer_pos_embed=_repeat_rows(shortformer, n),
                )
            effects.append(patched - clean_metric)
    if not effects:
        return torch.zeros(0, len(clean))
    return torch.cat(effects)[torch.argsort(order)].cpu()


def _repeat_rows(tensor: Tensor | None, n: int) -> Tensor | None:
    """``tensor`` (rows first) stacked ``n`` times along its rows; None stays None."""
    return None if tensor is None else tensor.repeat(n, *[1] * (tensor.ndim - 1))
