"""Cosine-similarity maps between steering vectors, with the baselines that make a number readable.

* :func:`bias_by_bias`: ``[n_layers, k, k]`` cosines between bias-type vectors at each layer.
* :func:`layer_by_layer`: ``[n_layers, n_layers]`` cosines of one vector across its layers.
* :func:`split_half` (reliability: two disjoint halves of the pairs) and :func:`shuffled_null` (vectors
  from randomly flipped positive/negative labels) come from the stored paired activations, with no
  new forward pass.
* :func:`off_diagonal_mean`: the mean bias-bias similarity per layer with a bootstrap interval over pairs;
  :func:`null_abs_quantile`: a quantile of ``|cos|`` under the shuffled-label null, over every two types.
* :func:`compare_checkpoints`: the same bias vectors in two checkpoints of one architecture (e.g. Llama 2
  7B base vs chat): per-layer self-similarity and the off-diagonal means of both with intervals, after
  :func:`check_comparable` has refused vectors whose provenance differs in anything but the checkpoint.

Directions with an arbitrary sign (principal components, ``method='first_pc'``) are compared by
``|cos|``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from lens_bias.directions import SteeringVector
from lens_bias.errors import InputError
from lens_bias.stats import Estimate
from lens_bias.steering import ContrastActivations

#: Provenance keys that may differ between two checkpoints' vectors (everything about the model file).
CHECKPOINT_KEYS = {"name", "source", "kind", "sha256", "revision", "extra"}


def _sign_invariant(vectors: Mapping[str, SteeringVector]) -> bool:
    return any(v.provenance.get("method") == "first_pc" for v in vectors.values())


def _cos(a: Float[Tensor, "... d"], b: Float[Tensor, "... d"]) -> Tensor:
    return torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)


def _common_layers(vectors: Mapping[str, SteeringVector]) -> tuple[int, ...]:
    first = next(iter(vectors.values()))
    for vector in vectors.values():
        first._check_compatible(vector)
    return first.layers


def bias_by_bias(vectors: Mapping[str, SteeringVector]) -> Float[Tensor, "n_layers k k"]:
    """Cosine between every two vectors at each of their (shared) layers; ``|cos|`` for PCs."""
    if len(vectors) < 2:
        raise InputError("Need at least two vectors to compare.")
    _common_layers(vectors)
    stacked = torch.stack([v.directions for v in vectors.values()], dim=1)  # [layers, k, d]
    matrix = _cos(stacked[:, :, None], stacked[:, None, :]).float()
    return matrix.abs() if _sign_invariant(vectors) else matrix


def layer_by_layer(vector: SteeringVector) -> Float[Tensor, "n_layers n_layers"]:
    """Cosine of one vector's directions between every two of its layers."""
    matrix = _cos(vector.directions[:, None], vector.directions[None, :]).float()
    return matrix.abs() if vector.provenance.get("method") == "first_pc" else matrix


def _differences(activations: ContrastActivations) -> Float[Tensor, "n n_layers d"]:
    return (activations.positive - activations.negative).double()


def split_half(activations: ContrastActivations, *, n_splits: int = 20, seed: int = 0) -> Float[Tensor, " n_layers"]:
    """Split-half reliability per layer: mean over ``n_splits`` random halvings of the pairs of the cosine
    between the mean-difference vectors of the two disjoint halves."""
    diffs = _differences(activations)
    if len(diffs) < 4:
        raise InputError(f"Split-half reliability needs at least 4 pairs, got {len(diffs)}.")
    generator = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(n_splits):
        order = torch.randperm(len(diffs), generator=generator)
        half = len(diffs) // 2
        values.append(_cos(diffs[order[:half]].mean(0), diffs[order[half : 2 * half]].mean(0)))
    return torch.stack(values).mean(0).float()


def shuffled_null(
    a: ContrastActivations, b: ContrastActivations, *, n_draws: int = 50, seed: int = 0
) -> Float[Tensor, "n_draws n_layers"]:
    """Null distribution of the cosine between two bias vectors when the positive/negative labels carry
    no information: each pair's difference is sign-flipped at random before averaging."""
    da, db = _differences(a), _differences(b)
    generator = torch.Generator().manual_seed(seed)
    draws = []
    for _ in range(n_draws):
        sa = torch.randint(0, 2, (len(da), 1, 1), generator=generator) * 2 - 1
        sb = torch.randint(0, 2, (len(db), 1, 1), generator=generator) * 2 - 1
        draws.append(_cos((da * sa).mean(0), (db * sb).mean(0)))
    return torch.stack(draws).float()


def null_abs_quantile(
    activations: Mapping[str, ContrastActivations], *, q: float = 0.95, seed: int = 0
) -> Float[Tensor, " n_layers"]:
    """Per layer, the ``q`` quantile of ``|cos|`` between two bias vectors under :func:`shuffled_null`,
    pooled over every two distinct bias types and their draws."""
    names = list(activations)
    null = torch.stack(
        [shuffled_null(activations[a], activations[b], seed=seed) for i, a in enumerate(names) for b in names[i + 1 :]]
    )  # [pairs, draws, layers]
    return null.abs().flatten(0, 1).quantile(q, dim=0)


def _mean_off_diagonal(means: list[Tensor]) -> Tensor:
    """Mean pairwise cosine over distinct bias types, per layer, from per-type mean differences."""
    stacked = torch.stack(means, dim=1)  # [layers, k, d]
    matrix = _cos(stacked[:, :, None], stacked[:, None, :])
    k = len(means)
    off = ~torch.eye(k, dtype=torch.bool)
    return matrix[:, off].mean(-1)


def off_diagonal_mean(
    activations: Mapping[str, ContrastActivations], *, n_resamples: int = 500, level: float = 0.95, seed: int = 0
) -> list[Estimate]:
    """Per layer, the mean cosine between the mean-difference vectors of distinct bias types, with a
    percentile bootstrap interval from resampling each type's pairs with replacement."""
    if len(activations) < 2:
        raise InputError("Need at least two bias types.")
    diffs = [_differences(a) for a in activations.values()]
    value = _mean_off_diagonal([d.mean(0) for d in diffs])
    rng = np.random.default_rng(seed)
    boot = torch.stack(
        [
            _mean_off_diagonal([d[torch.from_numpy(rng.integers(0, len(d), len(d)))].mean(0) for d in diffs])
            for _ in range(n_resamples)
        ]
    )  # [resamples, layers]
    alpha = (1 - level) / 2
    low, high = torch.quantile(boot, alpha, dim=0), torch.quantile(boot, 1 - alpha, dim=0)
    n = min(len(d) for d in diffs)
    return [Estimate(float(v), float(lo), float(hi), n, level) for v, lo, hi in zip(value, low, high)]


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out[prefix] = value


def check_comparable(a: SteeringVector, b: SteeringVector) -> None:
    """Raise InputError naming every provenance field in which two vectors differ, other than which
    checkpoint they came from (name, source, file hash, revision). Same architecture shape, dtype,
    weight processing, hook, layers, positions, template, method, data and seed are required."""
    flat_a: dict[str, Any] = {}
    flat_b: dict[str, Any] = {}
    _flatten("", {**a.provenance, "layers": list(a.layers), "hook": a.hook}, flat_a)
    _flatten("", {**b.provenance, "layers": list(b.layers), "hook": b.hook}, flat_b)
    ignored = {f"model.{key}" for key in CHECKPOINT_KEYS}
    differences = sorted(
        key
        for key in set(flat_a) | set(flat_b)
        if not any(key == i or key.startswith(i + ".") for i in ignored) and flat_a.get(key) != flat_b.get(key)
    )
    if differences:
        detail = "; ".join(f"{k}: {flat_a.get(k)!r} vs {flat_b.get(k)!r}" for k in differences)
        raise InputError(
            f"Vectors {a.name!r} and {b.name!r} were not made the same way, so comparing them "
            f"would confound the checkpoint with: {detail}. Rebuild both with identical settings."
        )


@dataclass
class CheckpointComparison:
    """Per layer: ``self_similarity[bias]`` = cos(v_base, v_chat) of the same bias vector;
    ``off_diagonal_a`` / ``off_diagonal_b`` = mean bias-bias cosine in each checkpoint with intervals;
    ``difference`` = b minus a, with a bootstrap interval (positive: biases more alike in b)."""

    layers: tuple[int, ...]
    self_similarity: dict[str, list[float]]
    off_diagonal_a: list[Estimate]
    off_diagonal_b: list[Estimate]
    difference: list[Estimate]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: layers, self-similarities, and the three series of estimates as dicts."""
        return {
            "layers": list(self.layers),
            "self_similarity": self.self_similarity,
            "off_diagonal_a": [e.to_dict() for e in self.off_diagonal_a],
            "off_diagonal_b": [e.to_dict() for e in self.off_diagonal_b],
            "difference": [e.to_dict() for e in self.difference],
        }


def compare_checkpoints(
    vectors_a: Mapping[str, SteeringVector],
    vectors_b: Mapping[str, SteeringVector],
    activations_a: Mapping[str, ContrastActivations],
    activations_b: Mapping[str, ContrastActivations],
    *,
    n_resamples: int = 500,
    seed: int = 0,
) -> CheckpointComparison:
    """Compare the bias vectors of checkpoint a (e.g. base) and b (e.g. RLHF chat), bias by bias."""
    if set(vectors_a) != set(vectors_b):
        raise InputError(f"Both checkpoints need the same bias types: {sorted(vectors_a)} vs {sorted(vectors_b)}.")
    for bias in vectors_a:
        check_comparable(vectors_a[bias], vectors_b[bias])
    layers = _common_layers(
        {**{f"a.{k}": v for k, v in vectors_a.items()}, **{f"b.{k}": v for k, v in vectors_b.items()}}
    )
    self_similarity = {
        bias: _cos(vectors_a[bias].directions, vectors_b[bias].directions).float().tolist() for bias in vectors_a
    }
    off_a = off_diagonal_mean(activations_a, n_resamples=n_resamples, seed=seed)
    off_b = off_diagonal_mean(activations_b, n_resamples=n_resamples, seed=seed + 1)
    diffs_a = [_differences(activations_a[k]) for k in vectors_a]
    diffs_b = [_differences(activations_b[k]) for k in vectors_a]
    rng = np.random.default_rng(seed + 2)

    def resampled(diffs):
        return _mean_off_diagonal([d[torch.from_numpy(rng.integers(0, len(d), len(d)))].mean(0) for d in diffs])

    boot = torch.stack([resampled(diffs_b) - resampled(diffs_a) for _ in range(n_resamples)])
    point = _mean_off_diagonal([d.mean(0) for d in diffs_b]) - _mean_off_diagonal([d.mean(0) for d in diffs_a])
    low, high = torch.quantile(boot, 0.025, dim=0), torch.quantile(boot, 0.975, dim=0)
    n = min(len(d) for d in diffs_a + diffs_b)
    difference = [Estimate(float(p), float(lo), float(hi), n) for p, lo, hi in zip(point, low, high)]
    return CheckpointComparison(layers, self_similarity, off_a, off_b, difference)
