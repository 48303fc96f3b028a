"""Paired activations -> a steering vector (a registered vector method) or an SVD subspace.

:func:`build_vector` turns :class:`ContrastActivations` into a :class:`SteeringVector` by a vector method
registered by name (:mod:`lens_bias.steering.methods`): ``mean_difference`` or ``first_pc`` (first principal
component of the centred paired differences, sign fixed so the positive side projects positive), both
registered here; :func:`svd_subspace` (registered as the subspace method ``svd``) keeps the components
explaining a share of variance, for the self-alignment edit rules (:class:`lens_bias.interventions.SubspaceEdit`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.data.records import fingerprint
from lens_bias.directions import SteeringVector, Subspace
from lens_bias.errors import InputError
from lens_bias.models import model_record
from lens_bias.steering.contrast import ContrastActivations
from lens_bias.steering.methods import (
    Method,
    SVDConfig,
    register_subspace_method,
    register_vector_method,
    vector_method,
)


@register_vector_method("mean_difference")
def mean_difference(differences: Float[Tensor, "n n_layers d"]) -> Float[Tensor, "n_layers d"]:
    """Mean over pairs of (positive - negative), per layer (residual units)."""
    return differences.mean(0)


@register_vector_method("first_pc")
def first_pc(differences: Float[Tensor, "n n_layers d"]) -> Float[Tensor, "n_layers d"]:
    """Per layer, the first principal component of the mean-centred paired differences, scaled to the norm of
    the mean difference (so multipliers compare across methods), the positive side projecting positive."""
    mean = differences.mean(0)
    return torch.stack([_first_pc(differences[:, i], mean[i]) * mean[i].norm() for i in range(differences.shape[1])])


def _first_pc(differences: Float[Tensor, "n d"], mean_difference: Float[Tensor, " d"]) -> Float[Tensor, " d"]:
    """Unit first principal component of the centred differences, oriented so that the mean
    difference (positive minus negative) projects positive."""
    centred = differences - differences.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(centred.double(), full_matrices=False)
    component = vh[0].to(differences.dtype)
    return component if float(component @ mean_difference) >= 0 else -component


def build_vector(
    name: str,
    activations: ContrastActivations,
    *,
    method: Method | str = "mean_difference",
    model: HookedTransformer | None = None,
    dataset: str = "",
    items: Sequence[Any] | None = None,
    seed: int | None = None,
) -> SteeringVector:
    """A :class:`SteeringVector` from paired activations by the vector method registered as ``method``
    (:func:`mean_difference`, :func:`first_pc`; an unknown name raises InputError naming the known ones).
    ``model``/``dataset``/``items``/``seed`` fill the provenance (model record, data fingerprint).
    """
    directions_of = vector_method(method)
    differences = (activations.positive - activations.negative).float()
    directions = directions_of(differences)  # [n_layers, d_model]
    both = torch.cat([activations.positive, activations.negative]).float()
    provenance = {
        "method": method,
        "hook": activations.hook,
        "layers": list(activations.layers),
        "source": activations.source,
        "n_pairs": int(differences.shape[0]),
        "dataset": dataset,
        "data_fingerprint": fingerprint(items) if items is not None else None,
        "seed": seed,
        "model": model_record(model).to_dict() if model is not None else None,
    }
    return SteeringVector(name, activations.layers, directions, both.norm(dim=-1).mean(0), activations.hook, provenance)


@register_subspace_method("svd", SVDConfig)
def svd_subspace(
    activations: ContrastActivations,
    *,
    variance: float = SVDConfig.variance,
    max_pair_cosine: float | None = SVDConfig.max_pair_cosine,
) -> Subspace:
    """The SVD subspace of (positive - negative) per layer, keeping components up to ``variance``.

    ``max_pair_cosine``: drop pairs whose two sides have cosine above this (the self-alignment recipe
    uses 0.8 on sentence embeddings). Default off: residual-stream activations of paired prompts share
    most of their direction (cosines ~0.9+ at every layer), so the rule would drop nearly every pair.
    """
    if not 0.0 < variance <= 1.0:
        raise InputError(f"variance must be in (0, 1], got {variance}.")
    bases = {}
    for i, layer in enumerate(activations.layers):
        pos, neg = activations.positive[:, i].float(), activations.negative[:, i].float()
        keep = torch.ones(len(pos), dtype=torch.bool)
        if max_pair_cosine is not None:
            keep = torch.nn.functional.cosine_similarity(pos, neg, dim=-1) <= max_pair_cosine
            if not keep.any():
                raise InputError(f"Every pair at layer {layer} has cosine > {max_pair_cosine}; raise it or pass None.")
        differences = (pos - neg)[keep]
        _, singular, vh = torch.linalg.svd(differences.double(), full_matrices=False)
        explained = (singular**2).cumsum(0) / (singular**2).sum()
        k = int((explained < variance).sum()) + 1
        basis = vh[:k].float()
        signs = torch.sign(basis @ differences.mean(0))
        bases[layer] = basis * torch.where(signs == 0, 1.0, signs)[:, None]
    return Subspace(
        bases,
        activations.hook,
        variance,
        {"method": "svd", "source": activations.source, "max_pair_cosine": max_pair_cosine},
    )
