"""Contrast-consistent search (CCS, Burns et al. 2022): an unsupervised probe direction per layer of paired activations.

:func:`ccs_subspace` trains, per layer, a linear probe ``p(x) = sigmoid(w.x + b)`` on the paired
activations, each side normalised on its own (minus that side's mean, divided by that side's per-dimension
standard deviation), with the CCS loss (:func:`ccs_loss`): consistency ``mean[(p(x+) - (1 - p(x-)))^2]``
plus confidence ``mean[min(p(x+), p(x-))^2]``. The best of ``n_tries`` random starts (lowest final loss) is
kept; its weight vector, mapped back to residual units and made unit, is the layer's direction in a
one-row :class:`~lens_bias.steering.build.Subspace` for :class:`lens_bias.interventions.SubspaceEdit`.

Facts of the original (``CCS.ipynb`` of github.com/collin-burns/discovering_latent_knowledge): AdamW,
lr 1e-3, weight decay 0.01, 1000 full-batch epochs, 10 tries, best by final loss; ``normalize`` subtracts
each side's mean and, with ``var_normalize``, divides by each side's per-dimension standard deviation
(population std, as numpy's default). Here the std division is always on: residual streams have a few
dimensions with ~100x the spread of the rest, which would otherwise dominate the probe.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor

from lens_bias.directions import Subspace
from lens_bias.errors import InputError
from lens_bias.steering.contrast import ContrastActivations
from lens_bias.steering.methods import CCSConfig, register_subspace_method

#: Floor for a per-dimension standard deviation (constant dimensions are left at zero, not divided by 0).
_MIN_STD = 1e-6


def ccs_loss(p_positive: Float[Tensor, "*batch n"], p_negative: Float[Tensor, "*batch n"]) -> Float[Tensor, "*batch"]:
    """The CCS loss over pairs (last dimension): ``mean[(p+ - (1 - p-))^2] + mean[min(p+, p-)^2]``,
    probabilities in [0, 1]; 0 for a consistent, confident probe, 0.25 for the constant ``p = 0.5``."""
    return _loss(p_positive, p_negative)


def _loss(p_positive, p_negative):
    """:func:`ccs_loss` without shape annotations, for the training loop (run-time shape checks in the
    tests would otherwise cost more than the step)."""
    consistency = (p_positive - (1 - p_negative)).pow(2).mean(-1)
    confidence = torch.minimum(p_positive, p_negative).pow(2).mean(-1)
    return consistency + confidence


def _normalise(x: Float[Tensor, "n_layers n d"]) -> tuple[Float[Tensor, "n_layers n d"], Float[Tensor, "n_layers d"]]:
    """One side's activations minus its mean over pairs, divided by its per-dimension population std
    (floored at :data:`_MIN_STD`); returns the normalised activations and the std."""
    centred = x - x.mean(1, keepdim=True)
    std = centred.pow(2).mean(1).sqrt().clamp_min(_MIN_STD)
    return centred / std[:, None], std


def _train(
    positive: Float[Tensor, "n_layers n d"],
    negative: Float[Tensor, "n_layers n d"],
    *,
    seed: int,
    n_tries: int,
    epochs: int,
    lr: float,
    weight_decay: float,
) -> tuple[Float[Tensor, "n_layers n_tries d"], Float[Tensor, "n_layers n_tries"]]:
    """Train ``n_tries`` probes per layer at once, full batch, with AdamW on the summed losses.

    Each probe's loss depends on its own parameters only and AdamW updates every parameter on its own,
    so training them together gives exactly the updates of training each alone. Starts are PyTorch's
    ``nn.Linear`` initialisation (uniform in +-1/sqrt(d)) from a generator seeded with ``seed``.
    Returns the weights and each probe's loss after the last update (the biases only shift ``p``).
    """
    n_layers, _, d = positive.shape
    generator = torch.Generator().manual_seed(seed)
    bound = 1.0 / d**0.5
    weight = (
        (torch.rand(n_layers, n_tries, d, generator=generator, dtype=positive.dtype) * 2 - 1) * bound
    ).requires_grad_()
    bias = ((torch.rand(n_layers, n_tries, generator=generator, dtype=positive.dtype) * 2 - 1) * bound).requires_grad_()
    optimizer = torch.optim.AdamW([weight, bias], lr=lr, weight_decay=weight_decay)

    def losses():  # [n_layers, n_tries]
        p_pos = torch.sigmoid(torch.einsum("lnd,ltd->ltn", positive, weight) + bias[..., None])
        p_neg = torch.sigmoid(torch.einsum("lnd,ltd->ltn", negative, weight) + bias[..., None])
        return _loss(p_pos, p_neg)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: on a loaded machine, waking a second thread per op costs ~ms
    try:
        with torch.enable_grad():
            for _ in range(epochs):
                optimizer.zero_grad()
                losses().sum().backward()
                optimizer.step()
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        return weight.detach(), losses()


@register_subspace_method("ccs", CCSConfig)
def ccs_subspace(
    activations: ContrastActivations,
    *,
    seed: int = CCSConfig.seed,
    n_tries: int = CCSConfig.n_tries,
    epochs: int = CCSConfig.epochs,
    lr: float = CCSConfig.lr,
    weight_decay: float = CCSConfig.weight_decay,
) -> Subspace:
    """One CCS direction per layer of ``activations``, as a :class:`Subspace` with one unit row per layer.

    Per layer: both sides normalised on their own (module docstring); ``n_tries`` probes trained for
    ``epochs`` full-batch AdamW steps (``lr``, ``weight_decay``) from starts drawn with ``seed`` (a rerun
    with the same inputs and seed gives identical directions); the probe with the lowest final loss kept.

    Direction: the probe reads ``w.((x - mean) / std)``, i.e. ``w / std`` in residual units; with the two
    sides' stds averaged, ``w / std`` made unit is the layer's basis row. CCS is sign-ambiguous (flipping
    ``w, b`` to ``-w, -b`` turns ``p`` into ``1 - p`` with the same loss), so the sign is fixed so that the
    mean paired difference (positive - negative, in residual units) projects positive.

    Returned :class:`Subspace`: ``variance`` is the mean over layers of the share of the paired differences'
    squared norm along the direction (the SVD subspace's variance share, measured instead of targeted);
    ``provenance``: ``{"method": "ccs", "source", "seed", "n_tries", "epochs", "lr", "weight_decay",
    "n_pairs", "per_layer": [{"layer", "loss", "accuracy", "explained"}, ...]}`` with per layer the kept
    probe's final ``loss`` (0.25 = no better than the constant ``p = 0.5``), its ``accuracy`` (share of pairs
    with ``p(x+) > p(x-)`` after the sign fix, the probe read on the un-centred activations, i.e.
    ``direction.(x+ - x-) > 0``; a layer where the direction orders the pairs reads near 1) and
    ``explained`` (the share above). The per-side centering removes the average contrast from the probe's
    inputs: CCS finds the direction along which the pairs' contrasts *vary* consistently (Burns et al.'s
    true/false statements), so a contrast that is the same for every pair is invisible to it; the
    accuracy shows whether that direction also orders the pairs.
    """
    n_pairs = int(activations.positive.shape[0])
    if activations.positive.shape != activations.negative.shape:
        raise InputError(
            f"activations.positive {tuple(activations.positive.shape)} and activations.negative "
            f"{tuple(activations.negative.shape)} differ in shape: pass paired activations."
        )
    if n_pairs < 2:
        raise InputError(f"CCS needs at least 2 pairs (it normalises each side over pairs), got {n_pairs}.")
    for name, value in (("n_tries", n_tries), ("epochs", epochs)):
        if int(value) != value or value < 1:
            raise InputError(f"{name} must be a whole number >= 1, got {value!r}.")
    if not lr > 0:
        raise InputError(f"lr must be > 0, got {lr!r}.")
    if not weight_decay >= 0:
        raise InputError(f"weight_decay must be >= 0, got {weight_decay!r}.")
    # float64: in float32 AdamW's second moments of saturated probes fall into denormals, which are ~100x slower
    positive = activations.positive.double().transpose(0, 1)  # [n_layers, n, d]
    negative = activations.negative.double().transpose(0, 1)
    z_pos, std_pos = _normalise(positive)
    z_neg, std_neg = _normalise(negative)
    weight, loss = _train(
        z_pos, z_neg, seed=seed, n_tries=int(n_tries), epochs=int(epochs), lr=lr, weight_decay=weight_decay
    )
    best = loss.argmin(1)  # [n_layers]
    layer_index = torch.arange(len(activations.layers))
    w = weight[layer_index, best]  # [n_layers, d]
    direction = w / ((std_pos + std_neg) / 2)
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    differences = positive - negative
    sign = torch.where(torch.einsum("ld,ld->l", direction, differences.mean(1)) < 0, -1.0, 1.0)
    direction = direction * sign[:, None]
    # Accuracy in residual units: p(x+) > p(x-) for the sign-fixed probe read on un-centred activations,
    # i.e. direction.(x+ - x-) > 0. (On its own centred inputs the average contrast is gone, so there the
    # share is ~0.5 by construction whenever every pair's positive side is the "true" one.)
    accuracy = (torch.einsum("lnd,ld->ln", differences, direction) > 0).float().mean(1)
    explained = torch.einsum("lnd,ld->ln", differences, direction).pow(2).sum(1) / differences.pow(2).sum(
        (1, 2)
    ).clamp_min(1e-12)
    per_layer = [
        {
            "layer": layer,
            "loss": float(loss[i, best[i]]),
            "accuracy": float(accuracy[i]),
            "explained": float(explained[i]),
        }
        for i, layer in enumerate(activations.layers)
    ]
    provenance = {
        "method": "ccs",
        "source": activations.source,
        "seed": seed,
        "n_tries": int(n_tries),
        "epochs": int(epochs),
        "lr": lr,
        "weight_decay": weight_decay,
        "n_pairs": n_pairs,
        "normalisation": "per side: minus mean, divided by per-dimension population std",
        "per_layer": per_layer,
    }
    bases = {layer: direction[i : i + 1].float() for i, layer in enumerate(activations.layers)}
    return Subspace(bases, activations.hook, float(explained.mean()), provenance)
