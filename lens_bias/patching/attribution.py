"""Attribution patching (gradient x activation difference: every configuration from two forwards and one
backward), and how well an approximate sweep agrees with exact patching (:func:`agreement`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.errors import InputError
from lens_bias.interventions import hooks_added
from lens_bias.patching.checks import (
    check_direction,
    check_pairs,
    check_target,
    finish,
    forward_metric,
    storing_hook,
    sweep_layers,
    valid_positions,
)
from lens_bias.patching.metrics import Metric
from lens_bias.patching.result import MIN_GAP, Direction, PatchResult
from lens_bias.prompts import PromptBatch


def _as_leaf(activation: Tensor, hook) -> Tensor:
    """Cut the graph at the embedding so gradients exist even for frozen weights, and stop there."""
    return activation.detach().requires_grad_(True)


def attribution_patch(
    model: HookedTransformer,
    clean: PromptBatch,
    corrupted: PromptBatch,
    metric: Metric,
    *,
    target: str,
    direction: Direction = "denoising",
    layers: Sequence[int] | None = None,
    normalize: bool = True,
    min_gap: float = MIN_GAP,
) -> PatchResult:
    """Attribution patching: the first-order estimate of :func:`patch`'s result, for every configuration
    at once, from two forward passes and one backward pass.

    With base run b (corrupted when denoising, clean when noising) and source run s, the estimated
    patched metric of a configuration is ``metric_b + sum((act_s - act_b) * d metric_b / d act_b)``, the
    sum running over the patched entries (one position's ``d_model`` vector, or one head's ``d_head``
    vectors at one or all positions). The gradient is taken on the base run only (one backward of the
    summed per-pair metric; rows do not interact). Same arguments and result layout as :func:`patch`
    (``method="attribution"``); all pairs go through one forward with gradients, so memory grows with
    the number of pairs.
    """
    spec = check_target(target)
    check_direction(direction)
    clean, corrupted = check_pairs(clean, corrupted)
    layers = sweep_layers(model, layers)
    base, source = (corrupted, clean) if direction == "denoising" else (clean, corrupted)
    names = [f"blocks.{layer}.{spec.hook}" for layer in layers]
    source_cache: dict[str, Tensor] = {}
    base_cache: dict[str, Tensor] = {}
    tokens = [batch.tokens.to(model.cfg.device) for batch in (source, base)]
    with torch.no_grad(), hooks_added(model, [(name, storing_hook(source_cache, name)) for name in names]):
        source_metric = forward_metric(model, metric, tokens[0], [source])[0]
    with (
        torch.enable_grad(),
        hooks_added(model, [("hook_embed", _as_leaf)] + [(name, storing_hook(base_cache, name)) for name in names]),
    ):
        base_metric = forward_metric(model, metric, tokens[1], [base])[0]
        grads = torch.autograd.grad(base_metric.sum(), [base_cache[name] for name in names])
    with torch.no_grad():
        reduce_dims = {"pos": (-1,), "head": (1, -1), "head_pos": (-1,)}[spec.unit]
        effects = torch.stack(
            [((source_cache[name] - base_cache[name]) * grad).sum(reduce_dims) for name, grad in zip(names, grads)], 1
        )  # [n_pairs, n_layers, ...]
        base_metric = base_metric.detach()
        raw = effects + base_metric.reshape(-1, *[1] * (effects.ndim - 1))
    n_heads = effects.shape[-1] if spec.unit != "pos" else 1
    return finish(
        raw,
        spec_name=target,
        direction=direction,
        method="attribution",
        layers=layers,
        source_metric=source_metric,
        base_metric=base_metric,
        valid=valid_positions(spec.unit, base.lengths, base.tokens.shape[1], n_heads),
        normalize=normalize,
        min_gap=min_gap,
        model=model,
        clean=clean,
        corrupted=corrupted,
        config={"min_gap": min_gap},
    )


def agreement(exact: PatchResult, approx: PatchResult, k: int = 10) -> dict[str, Any]:
    """How well ``approx`` (e.g. :func:`attribution_patch`) reproduces ``exact`` (:func:`patch`) on the same
    target, direction, layers and pairs.

    Both are compared as *effects* (``scores - baseline()``: how far each patch moves the metric), over
    the pairs that are degenerate in neither, skipping padding cells. Returns

    * ``pearson``: Pearson correlation of the pair-mean effect maps (the heatmaps one looks at);
    * ``pearson_all_pairs``: Pearson correlation of every (pair, cell) effect;
    * ``top_k_overlap``: share of the ``k`` cells with the largest ``|mean effect|`` under ``exact`` that
      are also among the ``k`` largest under ``approx`` (``k`` is capped at the number of cells);
    * ``k``, ``n_cells`` (cells of the mean map compared), ``n_pairs`` (pairs compared).

    A correlation is NaN when fewer than 2 cells remain or one side is constant.
    """
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}.")
    for name in ("target", "direction", "layers", "normalized"):
        if getattr(exact, name) != getattr(approx, name):
            raise InputError(
                f"The results differ in {name} ({getattr(exact, name)!r} vs "
                f"{getattr(approx, name)!r}): compare sweeps of the same configuration."
            )
    if exact.scores.shape != approx.scores.shape:
        raise InputError(
            f"The results have different shapes {tuple(exact.scores.shape)} and "
            f"{tuple(approx.scores.shape)}: compare sweeps over the same pairs."
        )
    kept = ~(exact.degenerate | approx.degenerate)
    exact_effects, approx_effects = exact.effects()[kept], approx.effects()[kept]
    exact_map, approx_map = exact_effects.nanmean(0).flatten(), approx_effects.nanmean(0).flatten()
    valid = exact_map.isfinite() & approx_map.isfinite()
    exact_map, approx_map = exact_map[valid], approx_map[valid]
    cells = exact_effects.isfinite() & approx_effects.isfinite()
    k = min(k, len(exact_map))
    overlap = math.nan
    if k:
        top_exact = set(exact_map.abs().topk(k).indices.tolist())
        top_approx = set(approx_map.abs().topk(k).indices.tolist())
        overlap = len(top_exact & top_approx) / k
    return {
        "pearson": _pearson(exact_map, approx_map),
        "pearson_all_pairs": _pearson(exact_effects[cells], approx_effects[cells]),
        "top_k_overlap": overlap,
        "k": k,
        "n_cells": len(exact_map),
        "n_pairs": int(kept.sum()),
    }


def _pearson(x: Tensor, y: Tensor) -> float:
    if len(x) < 2 or float(x.std()) == 0 or float(y.std()) == 0:
        return math.nan
    return float(torch.corrcoef(torch.stack([x.double(), y.double()]))[0, 1])
