"""Forward hooks on a model's graph: read every sender's output, read or change every receiver's input.

One hook per hook point, built by :func:`graph_hooks` from two callbacks, so edge scoring, exact edge
patching and circuit evaluation share one walk over the model's hook points (under :func:`graph_mode
<lens_bias.circuits.graph.graph_mode>`). Every tensor the callbacks see is ``[rows, pos, n, d_model]``: the
``n`` senders or receivers of one hook point, in graph order, starting at graph index ``index.start``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from jaxtyping import Bool, Float
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
    model: HookedTransformer,
    graph: Graph,
    on_sender: OnSender | None,
    on_receiver: OnReceiver | None,
    *,
    senders: Bool[Tensor, " n_senders"] | None = None,
    receivers: Bool[Tensor, " n_receivers"] | None = None,
) -> list[tuple[str, HookFn]]:
    """The hooks calling ``on_sender`` / ``on_receiver`` at every sender and receiver of ``graph``; with masks
    ``senders`` / ``receivers`` (graph order), only at the hook points holding at least one marked node (the
    callbacks still see every node of such a hook point)."""
    hooks: list[tuple[str, HookFn]] = []
    send: OnSender = on_sender if on_sender is not None else _nothing
    receive: OnReceiver = on_receiver if on_receiver is not None else _nothing
    sending = _mask(len(graph.senders), on_sender is not None, senders)
    receiving = _mask(len(graph.receivers), on_receiver is not None, receivers)

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

    if sending[0]:
        hooks.append(("blocks.0.hook_resid_pre", flat(slice(0, 1), send)))
    for layer in range(graph.n_layers):
        for kind in "qkv":
            index = graph.input_receivers(layer, kind)
            if receiving[index].any():
                hooks.append((f"blocks.{layer}.hook_{kind}_input", per_head(index, receive)))
        if sending[graph.head_senders(layer)].any():
            hooks.append((f"blocks.{layer}.attn.hook_z", heads_out(layer, send)))
        if graph.has_mlp:
            mlp_in, mlp_out = graph.mlp_receiver(layer), graph.mlp_sender(layer)
            if receiving[mlp_in]:
                hooks.append((f"blocks.{layer}.hook_mlp_in", flat(slice(mlp_in, mlp_in + 1), receive)))
            if sending[mlp_out]:
                hooks.append((f"blocks.{layer}.hook_mlp_out", flat(slice(mlp_out, mlp_out + 1), send)))
    logits = graph.logits_receiver
    if receiving[logits]:
        hooks.append((f"blocks.{graph.n_layers - 1}.hook_resid_post", flat(slice(logits, logits + 1), receive)))
    return hooks


def _mask(n: int, enabled: bool, marked: Tensor | None) -> Bool[Tensor, " n"]:
    """Which of ``n`` nodes get a hook: none without a callback, else the ``marked`` ones (None: all)."""
    if not enabled:
        return torch.zeros(n, dtype=torch.bool)
    return torch.ones(n, dtype=torch.bool) if marked is None else marked.cpu().bool()


def _nothing(index: slice, value: Tensor) -> None:
    """The callback of a side without one (never hooked: its mask is empty)."""
