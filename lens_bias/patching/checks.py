"""Shared by exact and attribution patching: input checks, the metric on a forward pass, and raw
patched metrics turned into a normalised :class:`PatchResult` (padding masked, degenerate pairs flagged).

The metric. ``metric(logits, batch)`` returns one value per row of ``batch``; a sweep calls it with the
logits of all pairs at once, in the order of ``batch``, so per-pair answer ids line up with the rows. A
:class:`PositionMetric` gets the logits of its one position only: the final norm and unembedding run on
that position alone.

Model: patching needs a ``HookedTransformer`` (exact patching uses ``start_at_layer``); the hook names it
patches are the ones stable across HookedTransformer and TransformerBridge.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer
from transformer_lens.utilities.activation_functions import apply_softcap

from lens_bias.errors import InputError
from lens_bias.models import check_layers
from lens_bias.patching.metrics import Metric, reads_one_position
from lens_bias.patching.result import AXES, DIRECTIONS, TARGETS, Direction, PatchResult, Target
from lens_bias.prompts import PromptBatch


def check_target(target: str) -> Target:
    """The :class:`Target` named ``target``; InputError naming the known ones otherwise."""
    if target not in TARGETS:
        raise InputError(f"Unknown target {target!r}: use one of {', '.join(TARGETS)}.")
    return TARGETS[target]


def check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise InputError(
            f"Unknown direction {direction!r}: use 'denoising' (clean activations into the "
            "corrupted run) or 'noising' (corrupted activations into the clean run)."
        )


def check_pairs(clean: PromptBatch, corrupted: PromptBatch) -> tuple[PromptBatch, PromptBatch]:
    """Same number of prompts, same length pair by pair; returns both trimmed to their longest row."""
    if len(clean) != len(corrupted):
        raise InputError(
            f"clean has {len(clean)} prompts and corrupted has {len(corrupted)}: build both "
            "batches from the same list of pairs, in the same order."
        )
    if len(clean) == 0:
        raise InputError("No pairs to patch: the batches are empty.")
    mismatch = (clean.lengths != corrupted.lengths).nonzero().flatten().tolist()
    if mismatch:
        raise InputError(
            f"Pairs {mismatch} have clean and corrupted prompts of different token lengths "
            f"(clean {clean.lengths[mismatch].tolist()}, corrupted "
            f"{corrupted.lengths[mismatch].tolist()}): patching needs aligned positions. Drop "
            "them or swap in a counterpart of the same token length (patching_inputs() does)."
        )
    return clean[0 : len(clean)], corrupted[0 : len(corrupted)]


def sweep_layers(model: HookedTransformer, layers: Sequence[int] | None) -> list[int]:
    """The layers to sweep (all by default), sorted, duplicates dropped; TypeError for other models than a
    HookedTransformer."""
    if not isinstance(model, HookedTransformer):
        raise InputError(
            f"Patching needs a HookedTransformer (it runs from and to a given layer with "
            f"start_at_layer/stop_at_layer), got {type(model).__name__}: load the checkpoint with "
            "lens_bias.load_model. Extraction, steering and readouts also work on a TransformerBridge."
        )
    return list(range(model.cfg.n_layers)) if layers is None else sorted(set(check_layers(model, list(layers))))


def _str_tokens(model: HookedTransformer, batch: PromptBatch) -> list[list[str]]:
    """Each row's tokens as strings (``to_str_tokens`` of a 1-D tensor gives one list of strings)."""
    return [
        [str(token) for token in model.to_str_tokens(batch.tokens[i, : int(batch.lengths[i])])]
        for i in range(len(batch))
    ]


def valid_positions(unit: str, lengths: Tensor, width: int, n_heads: int) -> Tensor | None:
    """``[n_pairs, *config shape]`` bool, False at padding positions; None for units without positions."""
    if unit == "head":
        return None
    real = torch.arange(width)[None] < lengths.cpu()[:, None]  # [n_pairs, pos]
    return real if unit == "pos" else real[:, :, None].expand(-1, -1, n_heads)


def finish(
    raw: Tensor,
    *,
    spec_name: str,
    direction: Direction,
    method: Literal["exact", "attribution"],
    layers: list[int],
    source_metric: Tensor,
    base_metric: Tensor,
    valid: Tensor | None,
    normalize: bool,
    min_gap: float,
    model: HookedTransformer,
    clean: PromptBatch,
    corrupted: PromptBatch,
    config: dict[str, Any],
) -> PatchResult:
    """Mask padding, normalise, flag degenerate pairs, and wrap everything in a PatchResult. ``source_metric`` /
    ``base_metric``: ``[n_pairs]`` metric of the unpatched source and base runs (clean and corrupted when
    denoising, the other way round when noising)."""
    spec = TARGETS[spec_name]
    clean_metric, corrupted_metric = (
        (source_metric, base_metric) if direction == "denoising" else (base_metric, source_metric)
    )
    raw = raw.float().cpu()
    if valid is not None:
        raw = raw.masked_fill(~valid[:, None], math.nan)
    clean_metric, corrupted_metric = clean_metric.float().cpu(), corrupted_metric.float().cpu()
    gap = clean_metric - corrupted_metric
    degenerate = gap.abs() <= min_gap
    if bool(degenerate.any()):
        warnings.warn(
            f"{int(degenerate.sum())} of {len(gap)} pairs have |clean - corrupted| metric <= "
            f"{min_gap} (pairs {degenerate.nonzero().flatten().tolist()}): their normalised scores "
            "are undefined and set to NaN; see PatchResult.degenerate.",
            stacklevel=3,
        )
    shape = (-1,) + (1,) * (raw.ndim - 1)
    if normalize:
        safe_gap = torch.where(degenerate, torch.ones_like(gap), gap)
        scores = (raw - corrupted_metric.reshape(shape)) / safe_gap.reshape(shape)
        scores = scores.masked_fill(degenerate.reshape(shape), math.nan)
    else:
        scores = raw
    return PatchResult(
        scores=scores,
        axes=AXES[spec.unit],
        target=spec_name,
        direction=direction,
        method=method,
        layers=layers,
        normalized=normalize,
        clean_metric=clean_metric,
        corrupted_metric=corrupted_metric,
        degenerate=degenerate,
        clean_tokens=_str_tokens(model, clean),
        corrupted_tokens=_str_tokens(model, corrupted),
        config=config,
    )


def storing_hook(cache: dict[str, Tensor], key: str, rows: slice | None = None) -> Callable:
    """A hook keeping the activation (``rows=None``: the tensor itself, part of the autograd graph) or a
    copy of some of its rows under ``cache[key]``."""

    def hook(activation: Tensor, hook) -> None:
        cache[key] = activation if rows is None else activation[rows].clone()

    return hook


def forward_metric(
    model: HookedTransformer, metric: Metric, x: Tensor, blocks: Sequence[PromptBatch], **forward_kwargs: Any
) -> Float[Tensor, "n_blocks n_pairs"]:
    """Forward ``x`` (tokens, or a residual stream with ``start_at_layer``) and evaluate the metric on each
    consecutive block of rows, block ``b`` against ``blocks[b]`` (its prompts). A :class:`PositionMetric`
    gets the logits of its one position only (final norm and unembedding applied to that position)."""
    n_pairs = len(blocks[0])
    if reads_one_position(metric):
        for block in blocks:
            if metric.position not in block.positions:
                raise InputError(f"Position {metric.position!r} is not in the batch (has {sorted(block.positions)}).")
        final = model(x, stop_at_layer=model.cfg.n_layers, **forward_kwargs)  # [rows, pos, d_model]
        read = torch.cat([block.positions[metric.position] for block in blocks]).to(final.device)
        at = final[torch.arange(len(final), device=final.device), read][:, None]  # [rows, 1, d_model]
        if model.cfg.normalization_type is not None:
            at = model.ln_final(at)
        logits = apply_softcap(model.unembed(at), model.cfg.output_logits_soft_cap)[:, 0]
        values = [metric.at_position(logits[b * n_pairs : (b + 1) * n_pairs], block) for b, block in enumerate(blocks)]
    else:
        logits = model(x, **forward_kwargs)
        values = [metric(logits[b * n_pairs : (b + 1) * n_pairs], block) for b, block in enumerate(blocks)]
    for value in values:
        if not isinstance(value, Tensor) or value.shape != (n_pairs,):
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise InputError(f"The metric must return one value per row, shape ({n_pairs},); got {shape}.")
    return torch.stack(values).float()
