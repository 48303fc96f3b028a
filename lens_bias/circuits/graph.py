"""The computational graph of a transformer as circuits see it: senders and receivers on the residual stream.

Nodes. *Senders* write into the residual stream: the input (``"input"``, the embedding as it enters block
0, read at ``blocks.0.hook_resid_pre``), every attention head (``"a{L}.h{h}"``: its output ``z_h @ W_O[h]``
from ``blocks.{L}.attn.hook_z``, the output bias ``b_O`` belonging to no head) and every MLP (``"m{L}"``,
``blocks.{L}.hook_mlp_out``). *Receivers* read from it: every head's query input (``"a{L}.h{h}.q"``), every
key/value head's key and value input (``"a{L}.kv{g}.k"``, ``"a{L}.kv{g}.v"``: one per key/value head, so a
grouped-query model has fewer than query heads; kv head ``g`` feeds query heads ``g * n_heads / n_kv_heads``
onwards; without grouping kv head ``g`` is head ``g``), every MLP's input (``"m{L}"``) and the logits
(``"logits"``, the last block's ``hook_resid_post``). A receiver's input is read *before* its norm:
``blocks.{L}.hook_q_input`` / ``hook_k_input`` / ``hook_v_input`` (with ``use_split_qkv_input``) and
``blocks.{L}.hook_mlp_in`` (with ``use_hook_mlp_in``); :func:`graph_mode` turns both on for a block.

Edges. Sender ``u`` -> receiver ``v`` whenever ``u`` writes before ``v`` reads (its *stage* is earlier:
input 0, the heads of layer L ``2L + 1``, the MLP of layer L ``2L + 2``; receivers of layer L's heads read
at ``2L + 1``, its MLP at ``2L + 2``, the logits at ``2 n_layers + 1``). The input of receiver ``v`` is the
sum of the outputs of every sender with an edge into ``v`` (plus constant biases): an edge is that one
term. Edge scores are ``[n_senders, n_receivers]`` matrices, zero where there is no edge
(:attr:`Graph.valid`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property

import torch
from jaxtyping import Bool
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.errors import InputError


def check_model(model: HookedTransformer) -> None:
    """InputError unless ``model`` is a HookedTransformer whose residual stream is a plain sum of its
    components' outputs (sequential attention then MLP, no norm after a component's output)."""
    if not isinstance(model, HookedTransformer):
        raise InputError(
            f"Circuits need a HookedTransformer (split query/key/value input hooks), got {type(model).__name__}: "
            "load the checkpoint with lens_bias.load_model."
        )
    cfg = model.cfg
    if (
        cfg.parallel_attn_mlp
        or cfg.use_normalization_before_and_after
        or cfg.original_architecture
        in (
            "Olmo2ForCausalLM",
            "Olmo3ForCausalLM",
        )
    ):
        raise InputError(
            f"{cfg.model_name}: circuits support sequential pre-norm blocks only (no parallel attention/MLP, "
            "no norm after a component's output)."
        )


@dataclass(frozen=True)
class Graph:
    """Senders, receivers and edges of a model (see the module docstring); indices are stage-ordered:
    senders ``[input, a0.h0 .. a0.h{H-1}, m0, a1.h0, ...]``, receivers per layer ``[q heads, k kv-heads,
    v kv-heads, mlp]`` and ``logits`` last."""

    n_layers: int
    n_heads: int
    n_kv_heads: int
    has_mlp: bool

    @classmethod
    def of(cls, model: HookedTransformer) -> Graph:
        """The graph of ``model`` (checked by :func:`check_model`)."""
        check_model(model)
        cfg = model.cfg
        n_kv_heads = cfg.n_key_value_heads
        if n_kv_heads is None or cfg.ungroup_grouped_query_attention:
            n_kv_heads = cfg.n_heads
        return cls(cfg.n_layers, cfg.n_heads, n_kv_heads, not cfg.attn_only)

    # layout ------------------------------------------------------------------------------------------------
    @property
    def _senders_per_layer(self) -> int:
        return self.n_heads + int(self.has_mlp)

    @property
    def _receivers_per_layer(self) -> int:
        return self.n_heads + 2 * self.n_kv_heads + int(self.has_mlp)

    def head_senders(self, layer: int) -> slice:
        """Indices of layer ``layer``'s heads among the senders."""
        start = 1 + layer * self._senders_per_layer
        return slice(start, start + self.n_heads)

    def mlp_sender(self, layer: int) -> int:
        return 1 + layer * self._senders_per_layer + self.n_heads

    def input_receivers(self, layer: int, kind: str) -> slice:
        """Indices of layer ``layer``'s ``kind`` receivers (``"q"``: per head, ``"k"``/``"v"``: per kv head)."""
        offset = {"q": 0, "k": self.n_heads, "v": self.n_heads + self.n_kv_heads}[kind]
        start = layer * self._receivers_per_layer + offset
        return slice(start, start + (self.n_heads if kind == "q" else self.n_kv_heads))

    def mlp_receiver(self, layer: int) -> int:
        return layer * self._receivers_per_layer + self.n_heads + 2 * self.n_kv_heads

    @property
    def logits_receiver(self) -> int:
        return self.n_layers * self._receivers_per_layer

    # names and stages --------------------------------------------------------------------------------------
    @cached_property
    def senders(self) -> list[str]:
        names = ["input"]
        for layer in range(self.n_layers):
            names += [f"a{layer}.h{h}" for h in range(self.n_heads)] + [f"m{layer}"] * self.has_mlp
        return names

    @cached_property
    def receivers(self) -> list[str]:
        names = []
        for layer in range(self.n_layers):
            names += [f"a{layer}.h{h}.q" for h in range(self.n_heads)]
            names += [f"a{layer}.kv{g}.{kind}" for kind in "kv" for g in range(self.n_kv_heads)]
            names += [f"m{layer}"] * self.has_mlp
        return names + ["logits"]

    @cached_property
    def sender_stage(self) -> Tensor:
        """``[n_senders]`` long: when each sender writes (input 0, layer L's heads 2L+1, its MLP 2L+2)."""
        stages = [0]
        for layer in range(self.n_layers):
            stages += [2 * layer + 1] * self.n_heads + [2 * layer + 2] * self.has_mlp
        return torch.tensor(stages)

    @cached_property
    def receiver_stage(self) -> Tensor:
        """``[n_receivers]`` long: when each receiver reads (layer L's heads 2L+1, its MLP 2L+2, logits 2n+1)."""
        stages = []
        for layer in range(self.n_layers):
            stages += [2 * layer + 1] * (self.n_heads + 2 * self.n_kv_heads) + [2 * layer + 2] * self.has_mlp
        return torch.tensor(stages + [2 * self.n_layers + 1])

    @cached_property
    def valid(self) -> Bool[Tensor, "n_senders n_receivers"]:
        """Which (sender, receiver) pairs are edges: the sender writes before the receiver reads."""
        return self.sender_stage[:, None] < self.receiver_stage[None, :]

    @property
    def n_edges(self) -> int:
        return int(self.valid.sum())

    @cached_property
    def feeds(self) -> Bool[Tensor, "n_receivers n_senders"]:
        """Which sender node each receiver is an input of (a kv head's inputs: every query head of its group;
        the logits: none)."""
        feeds = torch.zeros(len(self.receivers), len(self.senders), dtype=torch.bool)
        group = self.n_heads // self.n_kv_heads
        for layer in range(self.n_layers):
            heads = self.head_senders(layer)
            for h in range(self.n_heads):
                feeds[self.input_receivers(layer, "q").start + h, heads.start + h] = True
                for kind in "kv":
                    feeds[self.input_receivers(layer, kind).start + h // group, heads.start + h] = True
            if self.has_mlp:
                feeds[self.mlp_receiver(layer), self.mlp_sender(layer)] = True
        return feeds

    def edge_names(self, edges: Tensor) -> list[str]:
        """``"sender->receiver"`` of each ``[n, 2]`` (sender, receiver) index pair."""
        return [f"{self.senders[int(s)]}->{self.receivers[int(r)]}" for s, r in edges]

    def describe(self) -> dict[str, int | bool]:
        return {
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "has_mlp": self.has_mlp,
            "n_senders": len(self.senders),
            "n_receivers": len(self.receivers),
            "n_edges": self.n_edges,
        }


@contextmanager
def graph_mode(model: HookedTransformer) -> Iterator[Graph]:
    """Within the block, ``model`` has separate query/key/value input hooks and an MLP input hook (the
    receivers' inputs before their norms); the flags are restored on exit, also after an exception."""
    graph = Graph.of(model)
    before = model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in
    model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in = True, True
    try:
        yield graph
    finally:
        model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in = before
