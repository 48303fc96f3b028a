"""How much the circuits of different contrasts share: the Jaccard index of their top-``n`` edge sets, as a
matrix over contrasts, against a split-half baseline (:func:`compare_contrasts`); and how much a contrast's
circuit moves between two checkpoints of one model, e.g. a model and its fine-tune (:func:`compare_checkpoints`);
and how much it shares with circuits saved by another study of the same model, e.g. BiasScope's injected biases
(:func:`saved_circuits`, :func:`compare_saved`).

Split half: a contrast's pairs are cut in two halves in a seeded random order (:func:`split_halves`), each
half's edges scored alone, and the Jaccard of the two halves' top-``n`` edges measures how stable a circuit
of ``n`` edges is when the pairs change; two contrasts' circuits are no more different than chance when their
Jaccard reaches their split-half values. Chance: the expected Jaccard of two independent uniform ``n``-edge
sets of ``E`` edges, about ``n / (2E - n)``. Top-``n`` sets are taken before pruning (the edges ranked by
``|score|``), so every set has exactly ``n`` edges.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.circuits.faithfulness import Circuit, top_circuit, top_mask
from lens_bias.circuits.graph import Graph
from lens_bias.circuits.scores import Method, edge_scores
from lens_bias.errors import InputError
from lens_bias.models import model_record, same_weights
from lens_bias.patching.inputs import MinimalPairInputs, PatchingInputs
from lens_bias.prompts import PromptBatch
from lens_bias.provenance import Result

Inputs = PatchingInputs | MinimalPairInputs


def jaccard(a: Circuit, b: Circuit) -> float:
    """``|a & b| / |a | b|`` of two edge masks (0 when both are empty)."""
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 0.0


def chance_jaccard(n: int, n_edges: int) -> float:
    """The expected Jaccard of two independent uniform ``n``-subsets of ``n_edges`` edges (exact:
    ``sum_k P(k shared) k / (2n - k)``, hypergeometric)."""
    if not 0 < n <= n_edges:
        raise InputError(f"n must be between 1 and {n_edges}, got {n}.")
    k = torch.arange(n + 1, dtype=torch.float64)
    log_p = (
        _log_choose(torch.tensor(float(n)), k)
        + _log_choose(torch.tensor(float(n_edges - n)), n - k)
        - _log_choose(torch.tensor(float(n_edges)), torch.tensor(float(n)))
    )
    return float((log_p.exp() * k / (2 * n - k)).nansum())


def _log_choose(n: Tensor, k: Tensor) -> Tensor:
    valid = (k >= 0) & (k <= n)
    value = torch.lgamma(n + 1) - torch.lgamma(k.clamp(min=0) + 1) - torch.lgamma((n - k).clamp(min=0) + 1)
    return value.masked_fill(~valid, -torch.inf)


def split_halves(inputs: Inputs, seed: int) -> tuple[Inputs, Inputs]:
    """The pairs of ``inputs`` cut in two halves (sizes ``n // 2`` and the rest) in a seeded random order
    (``torch.randperm``); InputError with fewer than 2 pairs."""
    n = len(inputs.clean)
    if n < 2:
        raise InputError(f"A split half needs at least 2 pairs, got {n}.")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    first, second = order[: n // 2].sort().values, order[n // 2 :].sort().values
    return _rows(inputs, first), _rows(inputs, second)


def _rows(inputs: Inputs, index: Tensor) -> Inputs:
    def batch(b: PromptBatch) -> PromptBatch:
        positions = {name: value[index] for name, value in b.positions.items()}
        return PromptBatch(b.tokens[index], b.lengths[index], positions, [b.texts[i] for i in index], b.meta)

    pairs = [inputs.pairs[i] for i in index] if inputs.pairs else []
    parts: dict[str, Any] = {"pairs": pairs, "clean": batch(inputs.clean), "corrupted": batch(inputs.corrupted)}
    if isinstance(inputs, PatchingInputs):
        parts |= {"positive_ids": inputs.positive_ids[index], "negative_ids": inputs.negative_ids[index]}
    return dataclasses.replace(inputs, **parts)


def split_half_jaccard(
    model: HookedTransformer, inputs: Inputs, n: int, *, method: Method = "eap", steps: int = 5, seed: int = 0
) -> float:
    """The Jaccard of the top-``n`` edges of the two halves of ``inputs`` (:func:`split_halves`), each scored
    by ``method`` on its own pairs."""
    halves = [
        edge_scores(model, half.clean, half.corrupted, half.metric(), method=method, steps=steps)
        for half in split_halves(inputs, seed)
    ]
    return jaccard(*(top_circuit(scores, n) for scores in halves))


def compare_contrasts(
    model: HookedTransformer,
    scores: Mapping[str, Float[Tensor, "n_senders n_receivers"]],
    inputs: Mapping[str, Inputs],
    n: int,
    *,
    method: Method = "eap",
    steps: int = 5,
    split_half: bool = True,
    seed: int = 0,
) -> tuple[dict[str, Any], Float[Tensor, "n_contrasts n_contrasts"]]:
    """The Jaccard matrix of the top-``n`` edge sets of the contrasts ``scores`` (name -> the edge scores of
    its pairs ``inputs[name]`` by ``method`` and ``steps``); on its diagonal, with ``split_half``, each
    contrast's split-half Jaccard (its pairs' halves scored alike; NaN for a contrast of one pair), else 1.

    Returns (``values``: ``names``, ``n_edges``, ``jaccard`` as nested lists, ``split_half`` per name,
    ``chance``; the matrix ``[n_contrasts, n_contrasts]``)."""
    names = list(scores)
    if not names:
        raise InputError("No contrasts to compare.")
    graph = Graph.of(model)
    n = min(n, graph.n_edges)
    tops = {name: top_mask(scores[name], graph, n) for name in names}
    matrix = torch.tensor([[jaccard(tops[a], tops[b]) for b in names] for a in names], dtype=torch.float64)
    halves: dict[str, float] = {}
    for i, name in enumerate(names):
        if split_half:
            enough = len(inputs[name].clean) >= 2
            halves[name] = (
                split_half_jaccard(model, inputs[name], n, method=method, steps=steps, seed=seed)
                if enough
                else float("nan")
            )
            matrix[i, i] = halves[name]
    values = {
        "names": names,
        "n_edges": n,
        "jaccard": matrix.tolist(),
        "split_half": halves,
        "chance": chance_jaccard(n, graph.n_edges),
    }
    return values, matrix


def compare_checkpoints(
    model: HookedTransformer,
    other: HookedTransformer,
    scores: Mapping[str, Float[Tensor, "n_senders n_receivers"]],
    inputs: Mapping[str, Inputs],
    n: int,
    *,
    method: Method = "eap",
    steps: int = 5,
    split_half: Mapping[str, float] | None = None,
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Each contrast's circuit on a second checkpoint of the same model (a fine-tune, or a chat model's base):
    its pairs ``inputs[name]`` (the same tokens) scored by ``method`` and ``steps`` on ``other``, and the Jaccard
    of the two checkpoints' top-``n`` edges (``scores[name]``: ``model``'s), read against the contrast's split-half
    Jaccard on ``model`` (``split_half``: the overlap left when only the pairs change) and chance. ``other`` must
    have ``model``'s graph and vocabulary (else InputError, before any scoring).

    Returns (``values``: ``n_edges``, per contrast ``jaccard`` and ``other``'s ``clean_metric`` and
    ``corrupted_metric``, ``split_half``, ``chance``; ``tensors``: ``{name}.scores`` ``[n_senders, n_receivers]``
    on ``other``)."""
    graph = Graph.of(model)
    if Graph.of(other) != graph:
        raise InputError(
            f"The second checkpoint's graph {Graph.of(other).describe()} differs from the model's {graph.describe()}: "
            "compare checkpoints of one architecture (a model and its fine-tune)."
        )
    if model.tokenizer is None or other.tokenizer is None or model.tokenizer.get_vocab() != other.tokenizer.get_vocab():
        raise InputError("The two checkpoints' tokenizers differ: the same pairs cannot be scored on both.")
    n = min(n, graph.n_edges)
    values: dict[str, Any] = {"n_edges": n, "contrasts": {}, "split_half": dict(split_half or {})}
    tensors: dict[str, Tensor] = {}
    for name, pairs in inputs.items():
        scored = edge_scores(other, pairs.clean, pairs.corrupted, pairs.metric(), method=method, steps=steps)
        tensors[f"{name}.scores"] = scored.scores
        values["contrasts"][name] = {
            "jaccard": jaccard(top_mask(scores[name], graph, n), top_mask(scored.scores, graph, n)),
            "clean_metric": float(scored.clean_metric.mean()),
            "corrupted_metric": float(scored.corrupted_metric.mean()),
        }
    values["chance"] = chance_jaccard(n, graph.n_edges)
    return values, tensors


def saved_circuits(model: HookedTransformer, saved: Result) -> dict[str, Float[Tensor, "n_senders n_receivers"]]:
    """The edge scores a saved result holds for ``model``: every tensor whose name ends in ``scores`` and has the
    shape of ``model``'s graph ``[n_senders, n_receivers]`` (BiasScope's ``seed{s}/circuit_scores``, a circuit
    study's ``{contrast}.scores``), by name. InputError when the result was not made on ``model``'s weights
    (:func:`lens_bias.models.same_weights` of the two records) or holds no such tensor."""
    record = saved.provenance.get("model") or {}
    if not same_weights(record, model_record(model).to_dict()):
        raise InputError(
            f"The saved result {saved.name!r} was made on {record.get('name', 'an unrecorded model')!r} "
            f"({record.get('source')}, sha256 {record.get('sha256')}), not on this model's weights "
            f"({model_record(model).name}): compare circuits of one model."
        )
    shape = tuple(Graph.of(model).valid.shape)
    found = {name: t for name, t in saved.tensors.items() if name.endswith("scores") and tuple(t.shape) == shape}
    if not found:
        raise InputError(
            f"The saved result {saved.name!r} holds no edge scores of this model's graph {list(shape)}: give a "
            "biasscope or circuits result."
        )
    return found


def compare_saved(
    model: HookedTransformer,
    scores: Mapping[str, Float[Tensor, "n_senders n_receivers"]],
    others: Mapping[str, Float[Tensor, "n_senders n_receivers"]],
    n: int,
) -> tuple[dict[str, Any], Float[Tensor, "n_contrasts n_others"]]:
    """The Jaccard of each contrast's top-``n`` edges (``scores``) with each saved circuit's (``others``, e.g.
    :func:`saved_circuits`), against chance.

    Returns (``values``: ``names``, ``others``, ``n_edges``, ``jaccard`` as nested lists, ``chance``; the matrix
    ``[n_contrasts, n_others]``)."""
    if not scores or not others:
        raise InputError("Comparing with saved circuits needs at least one contrast and one saved circuit.")
    graph = Graph.of(model)
    n = min(n, graph.n_edges)
    mine = {name: top_mask(value, graph, n) for name, value in scores.items()}
    theirs = {name: top_mask(value, graph, n) for name, value in others.items()}
    matrix = torch.tensor([[jaccard(a, b) for b in theirs.values()] for a in mine.values()], dtype=torch.float64)
    values = {
        "names": list(mine),
        "others": list(theirs),
        "n_edges": n,
        "jaccard": matrix.tolist(),
        "chance": chance_jaccard(n, graph.n_edges),
    }
    return values, matrix
