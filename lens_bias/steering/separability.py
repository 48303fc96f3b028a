"""Where a contrast lives: PCA views of paired activations and held-out separability per layer.

``separability`` is the paired AUC of held-out pairs on a steering vector: the share of pairs whose
positive side projects higher than its negative side (ties half): 0.5 = the direction does not tell the
sides apart, 1 = it always does. Pairing removes the between-item variance (different sentences sit far
apart in the residual stream) that an unpaired AUC would mix in. It picks the default steering layer;
where it saturates (a refusal contrast separates perfectly at every layer), ``effect_size`` (the paired
margins' mean over their standard deviation, which does not saturate) breaks the tie. PCA projects both
sides of a contrast on the top two principal components of their pooled, centred activations at one
layer (for figures).
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from lens_bias.directions import SteeringVector
from lens_bias.errors import InputError
from lens_bias.steering.contrast import ContrastActivations


def _margins(vector: SteeringVector, held_out: ContrastActivations) -> dict[int, Float[Tensor, " n"]]:
    """Per layer, ``(positive - negative) . direction`` for every held-out pair (residual-stream units)."""
    if tuple(held_out.layers) != vector.layers:
        raise InputError(f"Held-out activations are at layers {held_out.layers}, the vector at {vector.layers}.")
    return {
        layer: (held_out.positive[:, i].float() - held_out.negative[:, i].float()) @ vector.directions[i].float()
        for i, layer in enumerate(vector.layers)
    }


def separability(vector: SteeringVector, held_out: ContrastActivations) -> dict[int, float]:
    """Per layer, the share of held-out pairs with ``(positive - negative) . direction > 0`` (ties 1/2)."""
    return {
        layer: float(((m > 0).float() + 0.5 * (m == 0).float()).mean())
        for layer, m in _margins(vector, held_out).items()
    }


def effect_size(vector: SteeringVector, held_out: ContrastActivations) -> dict[int, float]:
    """Per layer, the paired standardised margin: mean / standard deviation of the held-out pairs'
    ``(positive - negative) . direction`` (dimensionless; needs at least 2 pairs)."""
    if held_out.positive.shape[0] < 2:
        raise InputError("effect_size needs at least 2 held-out pairs.")
    return {layer: float(m.mean() / m.std().clamp_min(1e-12)) for layer, m in _margins(vector, held_out).items()}


def best_layer(scores: dict[int, float], tie_break: dict[int, float] | None = None) -> int:
    """The layer with the highest separability; ties go to the highest ``tie_break`` (e.g.
    :func:`effect_size`), then to the earliest layer."""
    return max(scores, key=lambda layer: (scores[layer], tie_break[layer] if tie_break else 0.0, -layer))


def pca_2d(activations: ContrastActivations, layer: int) -> tuple[Float[Tensor, "n2 2"], Tensor]:
    """Both sides' activations at ``layer`` projected on their top two principal components.

    Returns ``(coords [2n, 2], is_positive [2n] bool)``: positive rows first."""
    i = activations.layers.index(layer)
    pooled = torch.cat([activations.positive[:, i], activations.negative[:, i]]).double()
    centred = pooled - pooled.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    coords = (centred @ vh[:2].T).float()
    n = activations.positive.shape[0]
    return coords, torch.arange(2 * n) < n
