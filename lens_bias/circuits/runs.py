"""Forward hooks on a model's graph: read every sender's output, read or change every receiver's input.

One hook per hook point, built by :func:`graph_hooks` from two callbacks, so edge scoring, exact edge
patching and circuit evaluation share one walk over the model's hook points (under :func:`graph_mode
<lens_bias.circuits.graph.graph_mode>`). Every tensor the callbacks see is ``[rows, pos, n, d_model]``: the
``n`` senders or receivers of one hook point, in graph order, starting at graph index ``index.start``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.circuits.graph import Graph
from lens_bias.forward.hooks import HookFn

#: ``on_sender(index, outputs)``: the outputs ``[rows, pos, n, d_model]`` of senders ``index``; for the
#: input sender it may return a replacement ``[rows, pos, 1, d_model]`` of the input (None: unchanged).
OnSender = Callable[[slice, Float[Tensor, "rows pos n d_model"]], Tensor | None]
#: ``on_receiver(index, inputs)``: the inputs of receivers ``index``; may return replaced inputs (same shape).
OnReceiver = Callable[[slice, Float[Tensor, "rows pos n d_model"]], Tensor | None]


def graph_hooks(
    model: HookedTransformer, graph: Graph, on_sender: OnSender | None, on_receiver: OnReceiver | None
) -> list[tuple[str, HookFn]]:
    """The hooks calling ``on_sender`` / ``on_receiver`` at every sender and receiver of ``graph``."""
    hooks: list[tuple[str, HookFn]] = []

    def flat(index: slice, callback: OnSender | OnReceiver) -> HookFn:  # a [rows, pos, d_model] hook: one node
        def hook(activation: Tensor, hook) -> Tensor | None:
            replaced = callback(index, activation[:, :, None])
            return None if replaced is None else replaced[:, :, 0]

        return hook

    def per_head(index: slice, callback: OnReceiver) -> HookFn:
        def hook(activation: Tensor, hook) -> Tensor | None:
            return callback(index, activation)

        return hook

    def heads_out(layer: int, callback: OnSender) -> HookFn:
        w_o = model.blocks[layer].attn.W_O  # [n_heads, d_head, d_model]

        def hook(z: Tensor, hook) -> None:
            callback(graph.head_senders(layer), torch.einsum("bphz,hzd->bphd", z, w_o))

        return hook

    if on_sender is not None:
        hooks.append(("blocks.0.hook_resid_pre", flat(slice(0, 1), on_sender)))
    for layer in range(graph.n_layers):
        if on_receiver is not None:
            for kind in "qkv":
                index = graph.input_receivers(layer, kind)
                hooks.append((f"blocks.{layer}.hook_{kind}_input", per_head(index, on_receiver)))
        if on_sender is not None:
            hooks.append((f"blocks.{layer}.attn.hook_z", heads_out(layer, on_sender)))
        if graph.has_mlp:
            mlp_in, mlp_out = graph.mlp_receiver(layer), graph.mlp_sender(layer)
            if on_receiver is not None:
                hooks.append((f"blocks.{layer}.hook_mlp_in", flat(slice(mlp_in, mlp_in + 1), on_receiver)))
            if on_sender is not None:
                hooks.append((f"blocks.{layer}.hook_mlp_out", flat(slice(mlp_out, mlp_out + 1), on_sender)))
    if on_receiver is not None:
        logits = graph.logits_receiver
        hooks.append((f"blocks.{graph.n_layers - 1}.hook_resid_post", flat(slice(logits, logits + 1), on_receiver)))
    return hooks
