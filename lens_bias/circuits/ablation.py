"""Cutting a circuit's edges in any forward: the :class:`EdgeAblation` intervention, and the edges that carry a
bias chosen and fitted from contrast pairs (:func:`bias_edge_ablation`), and what the cut does to a contrast's gap
on other pairs (:func:`gap_change`).

:class:`EdgeAblation` mean-ablates edges (sender -> receiver, :mod:`~lens_bias.circuits.graph`): receiver
``r``'s input gets ``mean_s - out_s`` added for each ablated edge ``s -> r``, where ``out_s`` is sender ``s``'s
output in this run and ``mean_s`` its mean output ``[d_model]`` over the fit prompts (every real token but the
first, clean and corrupted sides together). Means do not depend on the position, so the intervention applies to
prompts of any length; the first position (the document-start token, whose activations are atypical) is left
unchanged. Every other edge, and every edge of the first position, is untouched.

Only the hook points of the ablated edges' senders and receivers are hooked, and the model's split
query/key/value (and MLP-input) hooks, which edges into a head's inputs need and which cost a copy of the residual
stream per head, are on only in the blocks with such an edge (they leave the outputs unchanged): each block's
``hook_resid_pre`` sets them, and the intervention's last hook (the last block's ``hook_resid_post``) restores
the model's own flags.

Which edges (:func:`bias_edge_ablation`): the ``k`` edges with the most negative EAP score on the contrast's
pairs (clean = stereotype, corrupted = anti-stereotype): those whose corruption lowers the stereotype metric
the most, the edges that carry the stereotype; their ablation should lower the model's stereotype preference.
Most of them also carry what the model must keep (on the embedded model the gender-swap top edges include
``input->m0`` and the heads that copy a subject's gender to its pronoun), so with a *control* contrast (e.g.
``gender_definitional``: "The woman ..." -> she, where the gender is stated, not stereotyped) the control's top
``control_edges`` edges by ``|score|`` are excluded first: the bias-specific edges are those the bias needs and
the control does not (a set difference of the two circuits).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.circuits.faithfulness import top_circuit
from lens_bias.circuits.graph import Graph, graph_mode
from lens_bias.circuits.runs import graph_hooks
from lens_bias.circuits.scores import edge_scores, sender_outputs
from lens_bias.errors import InputError
from lens_bias.forward.hooks import ForwardContext, Hookable, HookFn
from lens_bias.interventions.saved import register
from lens_bias.models import AnyModel
from lens_bias.patching.inputs import MinimalPairInputs, PatchingInputs
from lens_bias.patching.screening import metric_gaps

EDGE_ABLATION = "edge_ablation"


@register(EDGE_ABLATION)
@dataclass(frozen=True)
class EdgeAblation(Hookable):
    """Mean-ablate ``edges`` (``[n, 2]`` sender, receiver indices of the model's :class:`Graph`) with ``means``
    (``[n_senders, d_model]``, each sender's mean output; rows of senders with no ablated edge are unused)
    at every position but the first (module docstring). An :class:`lens_bias.interventions.Intervention`."""

    edges: Int[Tensor, "n 2"]
    means: Float[Tensor, "n_senders d_model"]

    def __post_init__(self) -> None:
        if self.edges.ndim != 2 or self.edges.shape[1] != 2 or len(self.edges) == 0:
            raise InputError(f"EdgeAblation needs [n, 2] edges (n >= 1), got {tuple(self.edges.shape)}.")

    def check(self, model: AnyModel) -> None:
        """The edges are edges of ``model``'s graph and the means fit its senders and width."""
        graph = Graph.of(model)  # type: ignore[arg-type]
        if self.means.shape != (len(graph.senders), model.cfg.d_model):
            raise InputError(
                f"EdgeAblation means {tuple(self.means.shape)} do not fit the model's "
                f"[{len(graph.senders)} senders, {model.cfg.d_model}]."
            )
        s, r = self.edges[:, 0], self.edges[:, 1]
        inside = (s >= 0) & (s < len(graph.senders)) & (r >= 0) & (r < len(graph.receivers))
        if not inside.all() or not graph.valid[s, r].all():
            raise InputError("EdgeAblation edges are not edges of this model's graph.")

    def hooks(self, model: AnyModel, context: ForwardContext) -> list[tuple[str, HookFn]]:
        graph = Graph.of(model)  # type: ignore[arg-type]
        device, dtype = model.cfg.device, model.cfg.dtype
        used = torch.unique(self.edges[:, 0])  # the senders with an ablated edge, in graph order
        slot = torch.full((len(graph.senders),), -1, dtype=torch.long)
        slot[used] = torch.arange(len(used))
        means = self.means[used].to(device, dtype)
        sender_slots, receivers = slot[self.edges[:, 0]].to(device), self.edges[:, 1].to(device)
        state: dict[str, Any] = {}

        def on_sender(index: slice, value: Tensor) -> None:
            chosen = (used >= index.start) & (used < index.stop)
            if chosen.any():
                difference = means[chosen] - value[:, :, used[chosen] - index.start]
                difference[:, 0] = 0  # the first position keeps its edges
                state["difference"][:, :, slot[used[chosen]]] = difference

        def on_receiver(index: slice, value: Tensor) -> Tensor:
            into = (receivers >= index.start) & (receivers < index.stop)  # the cut edges into this hook point
            return value.index_add(2, receivers[into] - index.start, state["difference"][:, :, sender_slots[into]])

        def start(resid: Tensor, hook) -> None:
            state["flags"] = model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in
            state["difference"] = resid.new_zeros(*resid.shape[:2], len(used), resid.shape[-1])

        def flags(layer: int) -> HookFn:
            split = any(bool(receiving[graph.input_receivers(layer, kind)].any()) for kind in "qkv")
            mlp_in = graph.has_mlp and bool(receiving[graph.mlp_receiver(layer)])

            def hook(resid: Tensor, hook) -> None:
                model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in = split, mlp_in

            return hook

        def end(resid: Tensor, hook) -> None:
            model.cfg.use_split_qkv_input, model.cfg.use_hook_mlp_in = state.pop("flags")

        sending = torch.zeros(len(graph.senders), dtype=torch.bool).index_fill_(0, used, True)
        receiving = torch.zeros(len(graph.receivers), dtype=torch.bool).index_fill_(0, self.edges[:, 1], True)
        hooks = graph_hooks(model, graph, on_sender, on_receiver, senders=sending, receivers=receiving)  # type: ignore[arg-type]
        blocks = [(f"blocks.{layer}.hook_resid_pre", flags(layer)) for layer in range(graph.n_layers)]
        last = f"blocks.{graph.n_layers - 1}.hook_resid_post"
        return [("blocks.0.hook_resid_pre", start), *blocks, *hooks, (last, end)]

    def describe(self) -> dict[str, Any]:
        return {"kind": EDGE_ABLATION, "n_edges": len(self.edges), "hooks": "graph senders and receivers"}

    def state(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """The edges and the means, as tensors (see :func:`lens_bias.interventions.save_intervention`)."""
        return {}, {"edges": self.edges, "means": self.means}

    @classmethod
    def from_state(
        cls, description: dict[str, Any], config: dict[str, Any], tensors: dict[str, Tensor]
    ) -> EdgeAblation:
        if description.get("kind") != EDGE_ABLATION:
            raise InputError(f"Not an edge-ablation description: kind {description.get('kind')!r}.")
        return cls(tensors["edges"], tensors["means"])


def bias_edge_ablation(
    model: HookedTransformer,
    inputs: PatchingInputs | MinimalPairInputs,
    k: int,
    *,
    control: PatchingInputs | MinimalPairInputs | None = None,
    control_edges: int = 1000,
) -> tuple[EdgeAblation, dict[str, Any]]:
    """The :class:`EdgeAblation` of the ``k`` edges with the most negative EAP score on ``inputs`` (module
    docstring), none of the top ``control_edges`` edges of the ``control`` contrast's pairs (if given) among
    them; means from ``inputs``' prompts. Its details: the edges' names and scores, the metrics, and with a
    control ``control_circuit``: its metrics and ``excluded_of_top_k``, how many of the plain top ``k`` the
    control excluded."""
    graph = Graph.of(model)
    n_excluded = control_edges if control is not None else 0
    if not 0 <= n_excluded < graph.n_edges or not 1 <= k <= graph.n_edges - n_excluded:
        raise InputError(
            f"k must be >= 1 and control_edges >= 0 with k + control_edges at most the graph's {graph.n_edges} "
            f"edges, got k={k}, control_edges={n_excluded}."
        )
    scores = edge_scores(model, inputs.clean, inputs.corrupted, inputs.metric(), method="eap")
    excluded = torch.zeros_like(graph.valid)
    details: dict[str, Any] = {}
    if control is not None:
        kept = edge_scores(model, control.clean, control.corrupted, control.metric(), method="eap")
        excluded = top_circuit(kept, control_edges) if control_edges else excluded
        plain = _most_negative(scores.scores, graph.valid, min(k, graph.n_edges))
        details["control_circuit"] = {
            "clean_metric": float(kept.clean_metric.mean()),
            "corrupted_metric": float(kept.corrupted_metric.mean()),
            "excluded_edges": control_edges,
            "excluded_of_top_k": int(excluded[plain[:, 0], plain[:, 1]].sum()),
        }
    edges = _most_negative(scores.scores, graph.valid & ~excluded, k)
    with graph_mode(model):
        outputs = [
            sender_outputs(model, graph, batch, inputs.metric())[0] for batch in (inputs.clean, inputs.corrupted)
        ]
    lengths = inputs.clean.lengths.to(outputs[0].device)
    real = torch.arange(outputs[0].shape[1], device=lengths.device)[None, :] < lengths[:, None]
    real[:, 0] = False
    total = sum(torch.einsum("bp,bpsd->sd", real.to(out), out) for out in outputs)
    means = (total / (2 * real.sum())).cpu()
    details = {
        "edges": graph.edge_names(edges),
        "scores": scores.scores[edges[:, 0], edges[:, 1]].tolist(),
        "clean_metric": float(scores.clean_metric.mean()),
        "corrupted_metric": float(scores.corrupted_metric.mean()),
        **details,
    }
    return EdgeAblation(edges, means), details


def _most_negative(scores: Tensor, allowed: Tensor, k: int) -> Int[Tensor, "k 2"]:
    """The ``[k, 2]`` (sender, receiver) indices of the ``k`` lowest ``scores`` among the ``allowed`` edges
    (ties by index)."""
    order = torch.sort(scores.masked_fill(~allowed, torch.inf).flatten(), stable=True).indices[:k]
    return torch.stack([order // allowed.shape[1], order % allowed.shape[1]], 1)


def gap_change(
    model: HookedTransformer,
    ablation: EdgeAblation,
    inputs: PatchingInputs | MinimalPairInputs,
    *,
    batch_size: int = 64,
) -> dict[str, float | int]:
    """The mean clean - corrupted metric gap of ``inputs``' pairs (nats: the stereotype's margin on a contrast) without
    and with ``ablation``: how much of the behaviour the cut edges carry, e.g. on pairs they were not chosen on."""
    before = metric_gaps(model, inputs, batch_size=batch_size)
    with ablation.applied(model):
        after = metric_gaps(model, inputs, batch_size=batch_size)
    return {"n_pairs": len(before), "before": float(before.mean()), "after": float(after.mean())}
