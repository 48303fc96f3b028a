"""BiasScope's head selection: the top ``k`` heads of one score map (:func:`top_k_heads`, signed: positive =
carries the bias toward the attribute), and the heads that recur in the top ``k`` of several runs
(:func:`recurring_heads`: training seeds, templates), ranked by how often and then by mean score."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor

from lens_bias.errors import InputError
from lens_bias.interventions import Head


def top_k_heads(scores: Float[Tensor, "n_layers n_heads"], k: int) -> list[Head]:
    """The ``k`` heads with the highest score (signed: the most bias-carrying), best first."""
    n_layers, n_heads = scores.shape
    if not 1 <= k <= n_layers * n_heads:
        raise InputError(f"k must be between 1 and the number of heads ({n_layers * n_heads}), got {k}.")
    if bool(scores.isnan().any()):
        raise InputError("The head scores contain NaN (no metric gap on any prompt?): cannot rank heads.")
    flat = scores.flatten().topk(k).indices.tolist()
    return [(i // n_heads, i % n_heads) for i in flat]


@dataclass
class RecurringHeads:
    """Heads in the top ``k`` of several runs.

    ``heads``: the selected heads (in the top k of at least ``min_runs`` runs; at most ``k``, ranked by
    count, then by mean score); ``counts``: ``[n_layers, n_heads]`` number of runs whose top ``k`` holds
    each head; ``top_k``: each run's top ``k``; ``overlap``: ``[n_runs, n_runs]`` share of run i's top
    ``k`` also in run j's.
    """

    heads: list[Head]
    counts: Int[Tensor, "n_layers n_heads"]
    top_k: list[list[Head]]
    overlap: Float[Tensor, "n_runs n_runs"]
    k: int
    min_runs: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "heads": self.heads,
            "counts": self.counts.tolist(),
            "top_k": self.top_k,
            "overlap": self.overlap.tolist(),
            "k": self.k,
            "min_runs": self.min_runs,
        }


def recurring_heads(
    run_scores: Sequence[Float[Tensor, "n_layers n_heads"]], k: int, min_runs: int | None = None
) -> RecurringHeads:
    """Heads in the top ``k`` of at least ``min_runs`` of the runs (default: a majority,
    ``n_runs // 2 + 1``). Raises InputError when no head recurs that often."""
    if not run_scores:
        raise InputError("No runs to compare.")
    n_runs = len(run_scores)
    min_runs = n_runs // 2 + 1 if min_runs is None else min_runs
    if not 1 <= min_runs <= n_runs:
        raise InputError(f"min_runs must be between 1 and the number of runs ({n_runs}), got {min_runs}.")
    stacked = torch.stack([torch.as_tensor(s, dtype=torch.float32) for s in run_scores])
    tops = [top_k_heads(s, k) for s in stacked]
    counts = torch.zeros(stacked.shape[1:], dtype=torch.long)
    for top in tops:
        for layer, head in top:
            counts[layer, head] += 1
    overlap = torch.tensor([[len(set(a) & set(b)) / k for b in tops] for a in tops])
    mean = stacked.mean(0)
    candidates = [(int(l), int(h)) for l, h in (counts >= min_runs).nonzero().tolist()]
    if not candidates:
        raise InputError(f"No head is in the top {k} of {min_runs} of the {n_runs} runs: lower min_runs or raise k.")
    ranked = sorted(candidates, key=lambda lh: (-int(counts[lh]), -float(mean[lh])))
    return RecurringHeads(ranked[:k], counts, tops, overlap, k, min_runs)
