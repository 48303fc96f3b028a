"""The circuit study of selected pairs: edge scores, their agreement with exact edge patching on a sample
of edges (with the time of each), and the faithfulness curve of the top circuits against random circuits of
the same size, with completeness beside it (:func:`circuit_study`); the studies of several contrasts and the
overlap of their circuits (:func:`contrast_studies`).

The two sweeps, exact edge patching (blocks of edges) and circuit evaluation (blocks of circuits), are cells of
a :class:`~lens_bias.cells.CellStore`: kept in a folder they make a rerun resume, and its executor may run them
on Ray workers. A cell's key holds the pairs' tokens, the metric, the batch size and the SHA-256 of its edges or
circuit masks (the store's base: the model)."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.cells import CellStore
from lens_bias.circuits.exact import exact_edge_effects
from lens_bias.circuits.faithfulness import (
    Ablation,
    circuit_metrics,
    faithfulness,
    prune,
    random_circuit,
    top_circuit,
)
from lens_bias.circuits.overlap import Inputs, compare_checkpoints, compare_contrasts, compare_saved
from lens_bias.circuits.scores import Method, edge_scores
from lens_bias.errors import InputError
from lens_bias.executors import Compute
from lens_bias.patching.inputs import MinimalPairInputs, PatchingInputs
from lens_bias.patching.metrics import Metric
from lens_bias.prompts import PromptBatch

#: Forwards per cell of each sweep.
FORWARDS_PER_CELL = 4


@dataclass(frozen=True)
class _Sweeps:
    """The fixed inputs of a study's two sweeps; :meth:`exact` and :meth:`circuits` compute one cell each."""

    clean: PromptBatch
    corrupted: PromptBatch
    metric: Metric
    batch_size: int
    ablation: Ablation = "corrupted"

    def key(self) -> dict[str, Any]:
        if not dataclasses.is_dataclass(self.metric) or isinstance(self.metric, type):
            raise InputError(
                f"Circuit cells need a dataclass metric (such as logit_diff_metric's), not {self.metric!r}."
            )
        tokens = [self.clean.tokens, self.clean.lengths, self.corrupted.tokens, self.corrupted.lengths]
        metric = {"type": type(self.metric).__name__, **vars(self.metric)}
        return {"tokens": tokens, "metric": metric, "batch_size": self.batch_size, "ablation": self.ablation}

    def exact(self, model: HookedTransformer, edges: Tensor) -> dict[str, np.ndarray]:
        effects = exact_edge_effects(model, self.clean, self.corrupted, self.metric, edges, batch_size=self.batch_size)
        return {"effects": effects.numpy()}

    def circuits(self, model: HookedTransformer, masks: Tensor) -> dict[str, np.ndarray]:
        values = circuit_metrics(
            model, self.clean, self.corrupted, self.metric, masks, batch_size=self.batch_size, ablation=self.ablation
        )
        return {"metrics": values.numpy()}

    def sweep(self, store: CellStore, kind: str, payloads: Tensor, model: HookedTransformer) -> Tensor:
        """``kind`` (``"exact"``: rows of edges, ``"circuits"``: circuit masks) over ``payloads`` in cells of
        :data:`FORWARDS_PER_CELL` forwards; the cells' arrays concatenated along their first axis."""
        per_cell = max(1, self.batch_size // len(self.clean)) * FORWARDS_PER_CELL
        parts = [payloads[start : start + per_cell] for start in range(0, len(payloads), per_cell)]
        key = {"circuits": kind, **self.key()}
        cells = [
            {**key, "part": hashlib.sha256(part.numpy().tobytes()).hexdigest(), "shape": list(part.shape)}
            for part in parts
        ]
        done = store.map(cells, parts, cast(Compute, getattr(self, kind)), model=model, desc=f"circuits: {kind}")
        name = "effects" if kind == "exact" else "metrics"
        return torch.cat([torch.from_numpy(cell[name]) for cell in done])


def circuit_study(
    model: HookedTransformer,
    inputs: PatchingInputs | MinimalPairInputs,
    *,
    method: Method = "eap_ig",
    steps: int = 5,
    sizes: Sequence[int] = (10, 30, 100, 300, 1000),
    n_random: int = 3,
    n_edges: int = 40,
    n_top: int = 20,
    seed: int = 0,
    batch_size: int = 64,
    ablation: Ablation = "corrupted",
    cells: CellStore | None = None,
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """Score every edge (:func:`~lens_bias.circuits.scores.edge_scores`), patch ``n_edges`` edges exactly
    (the ``n_edges // 2`` top-scored and as many drawn at random among the rest, seeded) and compare, and
    evaluate the top circuit of each size in ``sizes`` (edges before pruning), its complement and
    ``n_random`` random circuits of the same size (pruned alike), every other edge patched to the corrupted
    run or mean-ablated (``ablation``; :mod:`~lens_bias.circuits.faithfulness`). ``cells``: the store of the two sweeps'
    cells (default: kept nowhere, run here); timings count the cells computed, not those reused.

    Returns ``values`` (JSON-ready: ``top_edges`` names and scores, ``exact``: Pearson and Spearman of
    score vs exact effect over the sample, ``timing`` in seconds, ``curve``: per size the pruned size,
    faithfulness, random mean/std, completeness; the clean and corrupted metric means and the faithfulness
    baseline's, ``baseline_metric``: the corrupted run's, or the empty circuit's under mean ablation) and ``tensors``
    (``scores`` ``[n_senders, n_receivers]``, ``exact_edges`` ``[n_edges, 2]``, ``exact_effects`` ``[n_edges,
    n_pairs]``, ``faithfulness`` ``[n_sizes]``, ``random_faithfulness`` ``[n_sizes, n_random]``,
    ``completeness`` ``[n_sizes]``)."""
    metric = inputs.metric()
    store = cells if cells is not None else CellStore(None)
    sweeps = _Sweeps(inputs.clean, inputs.corrupted, metric, batch_size, ablation)
    if store.folder is not None:
        sweeps.key()  # a metric that cannot key a cell: refused before any work
    started = time.perf_counter()
    scores = edge_scores(model, inputs.clean, inputs.corrupted, metric, method=method, steps=steps)
    scoring_s = time.perf_counter() - started
    graph = scores.graph
    sizes = sorted({min(int(n), graph.n_edges) for n in sizes})
    if not sizes or sizes[0] < 1:
        raise InputError(f"Circuit sizes must be >= 1, got {sizes}.")
    generator = torch.Generator().manual_seed(seed)
    n_edges = min(n_edges, graph.n_edges)
    top = scores.top(n_edges // 2)
    rest = (graph.valid & ~top_circuit(scores, n_edges // 2)).flatten().nonzero().flatten()
    drawn = rest[torch.randperm(len(rest), generator=generator)[: n_edges - len(top)]]
    edges = torch.cat([top, torch.stack([drawn // graph.valid.shape[1], drawn % graph.valid.shape[1]], 1)])
    started = time.perf_counter()
    effects = sweeps.sweep(store, "exact", edges, model)
    exact_s = time.perf_counter() - started
    estimated, exact = scores.scores[edges[:, 0], edges[:, 1]], effects.mean(1)

    tops = [prune(graph, top_circuit(scores, n)) for n in sizes]
    randoms = [prune(graph, random_circuit(graph, n, generator)) for n in sizes for _ in range(n_random)]
    complements = [graph.valid & ~circuit for circuit in tops]
    empty = [torch.zeros_like(graph.valid)] * (ablation == "mean")  # the baseline of mean ablation
    circuits = torch.stack(tops + randoms + complements + empty)
    started = time.perf_counter()
    metrics = sweeps.sweep(store, "circuits", circuits, model)
    circuits_s = time.perf_counter() - started
    baseline = metrics[-1] if empty else scores.corrupted_metric
    ratio = faithfulness(metrics[: len(metrics) - len(empty)], scores.clean_metric, baseline)
    k = len(sizes)
    top_f, random_f, complete = ratio[:k], ratio[k : k + k * n_random].reshape(k, n_random), ratio[-k:]
    curve = [
        {
            "size": n,
            "pruned_size": int(tops[i].sum()),
            "faithfulness": float(top_f[i]),
            "random_mean": float(random_f[i].mean()) if n_random else math.nan,
            "random_std": float(random_f[i].std()) if n_random > 1 else math.nan,
            "random_pruned_size": float(
                torch.stack(randoms[i * n_random : (i + 1) * n_random]).sum((1, 2)).float().mean()
            )
            if n_random
            else math.nan,
            "completeness": float(complete[i]),
        }
        for i, n in enumerate(sizes)
    ]
    best = scores.top(min(n_top, graph.n_edges))
    values = {
        "graph": graph.describe(),
        "method": method,
        "steps": scores.steps,
        "ablation": ablation,
        "baseline_metric": float(baseline.mean()),
        "clean_metric": float(scores.clean_metric.mean()),
        "corrupted_metric": float(scores.corrupted_metric.mean()),
        "top_edges": [
            {"edge": name, "score": float(scores.scores[s, r])}
            for name, (s, r) in zip(graph.edge_names(best), best.tolist())
        ],
        "exact": {
            "n_edges": len(edges),
            "pearson": _correlation(estimated, exact),
            "spearman": _correlation(_ranks(estimated), _ranks(exact)),
            "pearson_top": _correlation(estimated[: len(top)], exact[: len(top)]),
        },
        "timing": {
            "scoring_s": scoring_s,
            "exact_s": exact_s,
            "exact_per_edge_s": exact_s / max(len(edges), 1),
            "exact_all_edges_s": exact_s / max(len(edges), 1) * graph.n_edges,
            "circuits_s": circuits_s,
            "n_circuits": len(circuits),
            "cells_reused": store.reused,
            "cells_computed": store.computed,
        },
        "curve": curve,
    }
    tensors = {
        "scores": scores.scores,
        "exact_edges": edges,
        "exact_effects": effects,
        "faithfulness": top_f,
        "random_faithfulness": random_f,
        "completeness": complete,
    }
    return values, tensors


def contrast_studies(
    model: HookedTransformer,
    inputs: Mapping[str, Inputs],
    *,
    method: Method = "eap_ig",
    steps: int = 5,
    overlap_edges: int = 1000,
    split_half: bool = True,
    seed: int = 0,
    checkpoint: HookedTransformer | None = None,
    saved: Mapping[str, Tensor] | None = None,
    **settings: Any,
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """:func:`circuit_study` of each contrast of ``inputs`` (name -> its pairs; ``settings``: the study's
    other keywords, shared) and :func:`~lens_bias.circuits.overlap.compare_contrasts` of their top
    ``overlap_edges`` edges (with each one's split-half Jaccard on the diagonal, ``split_half``); with a second
    ``checkpoint`` of the model, :func:`~lens_bias.circuits.overlap.compare_checkpoints` of each contrast's
    circuit on it; with ``saved`` edge scores of the same model (name -> ``[n_senders, n_receivers]``, e.g.
    :func:`~lens_bias.circuits.overlap.saved_circuits` of a BiasScope result: its injected circuits),
    :func:`~lens_bias.circuits.overlap.compare_saved` of the contrasts' top ``overlap_edges`` edges with theirs.

    Returns ``values`` (``contrasts``: name -> its study's values, ``overlap``: the comparison's values and
    its time ``seconds``, ``checkpoint``: the checkpoints' comparison, with its ``seconds``, ``saved``: the
    comparison with the saved circuits) and ``tensors`` (``{name}.{tensor}`` of each study, ``overlap_jaccard``
    ``[n_contrasts, n_contrasts]``, ``checkpoint.{name}.scores`` on the checkpoint, ``saved_jaccard``
    ``[n_contrasts, n_saved]``)."""
    values: dict[str, Any] = {"contrasts": {}}
    tensors: dict[str, Tensor] = {}
    for name, pairs in inputs.items():
        values["contrasts"][name], study = circuit_study(
            model, pairs, method=method, steps=steps, seed=seed, **settings
        )
        tensors |= {f"{name}.{key}": value for key, value in study.items()}
    started = time.perf_counter()
    scores = {name: tensors[f"{name}.scores"] for name in inputs}
    overlap, matrix = compare_contrasts(
        model, scores, inputs, overlap_edges, method=method, steps=steps, split_half=split_half, seed=seed
    )
    values["overlap"] = {**overlap, "seconds": time.perf_counter() - started}
    tensors["overlap_jaccard"] = matrix
    if checkpoint is not None:
        started = time.perf_counter()
        compared, other = compare_checkpoints(
            model,
            checkpoint,
            scores,
            inputs,
            overlap_edges,
            method=method,
            steps=steps,
            split_half=overlap["split_half"],
        )
        values["checkpoint"] = {**compared, "seconds": time.perf_counter() - started}
        tensors |= {f"checkpoint.{key}": value for key, value in other.items()}
    if saved is not None:
        values["saved"], tensors["saved_jaccard"] = compare_saved(model, scores, saved, overlap_edges)
    return values, tensors


def _ranks(x: Tensor) -> Tensor:
    return torch.argsort(torch.argsort(x)).double()


def _correlation(x: Tensor, y: Tensor) -> float:
    if len(x) < 2 or float(x.std()) == 0 or float(y.std()) == 0:
        return math.nan
    return float(torch.corrcoef(torch.stack([x.double(), y.double()]))[0, 1])
