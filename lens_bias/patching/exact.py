"""Exact activation patching: every configuration of a target, batched from cached activations.

How it is fast; results equal ``transformer_lens.patching`` (tested to 1e-4):

1. One forward with the source and base prompts as rows caches only what the sweep reads: the source
   run's target hook at each swept layer, and the base run's ``hook_resid_pre`` at the layers where a
   patched forward starts. No ``ActivationCache``.
2. Many configurations run in one forward: the batch holds ``configurations x pairs`` rows, up to
   ``batch_size`` rows, in layer order (a forward may span consecutive layers).
3. A forward starts at the lowest layer among its configurations
   (``HookedTransformer.forward(start_at_layer=L)``) from the base run's cached ``resid_pre``, instead of
   re-running the layers below it; the rows of a configuration at a higher layer run unpatched up to
   their layer, which reproduces the base run there. Rotary positions are ``0..pos-1`` as in a full
   forward (no attention mask with right padding); where the model would build an attention mask or
   shortformer positional embedding (left-padding tokenizers), the base run's are passed along.
4. Configurations that patch only positions before the first token at which clean and corrupted differ
   (:func:`lens_bias.prompts.first_difference`, the earliest over the pairs that differ at all) are not
   run: causal attention makes those activations identical in both runs, so the patch changes nothing
   and the score is the base run's metric.
5. A position metric (:class:`lens_bias.patching.PositionMetric`, e.g. :func:`lens_bias.patching.logit_diff_metric`)
   gets the logits of its one position: the final norm and unembedding run on that position only.

Memory: the caches hold ``2 x n_layers x n_pairs x pos x d_model`` floats at most (SmolLM2, 12 tokens, 30
layers: 1.7 MB per pair); a forward holds the activations of ``batch_size`` rows and their logits at one
position (all positions for a metric that is not a position metric).

Padding: pairs may have different lengths (right padding). Clean and corrupted versions of one pair must
have the same length. Positions at or after a pair's length are padding: their scores are NaN.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast, overload

import numpy as np
import torch
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.cells import CellStore
from lens_bias.errors import InputError
from lens_bias.executors import Compute
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
from lens_bias.patching.result import MIN_GAP, TARGETS, Direction, PatchResult
from lens_bias.prompts import PromptBatch, first_difference


def _first_differing_position(clean: PromptBatch, corrupted: PromptBatch) -> int:
    """The first position at which any pair's clean and corrupted tokens differ (the width if none does):
    activations at earlier positions are identical in both runs (causal attention)."""
    identical = (clean.tokens == corrupted.tokens).all(1)
    return int(first_difference(clean, corrupted).masked_fill(identical, clean.tokens.shape[1]).min())


def _config_masks(unit: str, width: int, n_heads: int) -> Tensor:
    """One boolean mask per configuration, ``[n_configs, pos]`` (unit ``pos``) or ``[n_configs, pos,
    heads]``; configurations are ordered position-major for ``head_pos`` (matching ``[pos, head]``)."""
    if unit == "pos":
        return torch.eye(width, dtype=torch.bool)
    if unit == "head":
        return torch.eye(n_heads, dtype=torch.bool)[:, None, :].expand(-1, width, -1)
    return torch.eye(width * n_heads, dtype=torch.bool).reshape(width * n_heads, width, n_heads)


def _last_touched_position(masks: Tensor) -> Tensor:
    """``[n_configs]``: the last position each configuration patches."""
    touched = masks if masks.ndim == 2 else masks.any(-1)
    index = torch.arange(touched.shape[1]).expand_as(touched)
    return torch.where(touched, index, -1).max(1).values


def _patch_hook(mask: Tensor, source: Tensor, n_pairs: int) -> Callable:
    """A hook replacing, in rows ``c * n_pairs + i``, the activation where ``mask[c]`` is True by
    ``source[i]``. ``mask``: ``[C, pos]`` or ``[C, pos, heads]``; ``source``: ``[n_pairs, pos, ...]``."""
    mask = mask[:, None, ..., None]  # [C, 1, pos, (heads,) 1]

    def hook(activation: Tensor, hook) -> Tensor:
        shape = activation.shape
        grouped = activation.reshape(-1, n_pairs, *shape[1:])
        return torch.where(mask, source, grouped).reshape(shape)

    return hook


@overload
def _repeat_rows(x: Tensor, n: int) -> Tensor: ...
@overload
def _repeat_rows(x: None, n: int) -> None: ...
def _repeat_rows(x: Tensor | None, n: int) -> Tensor | None:
    """``x`` stacked ``n`` times along its first axis (one copy per configuration of a chunk); None stays None."""
    return None if x is None else x.repeat(n, *[1] * (x.ndim - 1))


def patch(
    model: HookedTransformer,
    clean: PromptBatch,
    corrupted: PromptBatch,
    metric: Metric,
    *,
    target: str,
    direction: Direction = "denoising",
    layers: Sequence[int] | None = None,
    batch_size: int = 64,
    normalize: bool = True,
    min_gap: float = MIN_GAP,
    cells: CellStore | None = None,
    progress: bool | str = False,
) -> PatchResult:
    """Activation patching of every configuration of ``target`` at ``layers`` (default all), per pair.

    Args:
        clean, corrupted: the same pairs as two right-padded batches (same number of rows, each pair the
            same token length in both), e.g. from :func:`lens_bias.patching.patching_inputs`.
        metric: ``metric(logits, batch) -> [batch]``; called with the logits of all pairs at once.
        target: one of :data:`lens_bias.patching.TARGETS` (see :mod:`lens_bias.patching.result`).
        direction: ``"denoising"`` (clean activation into the corrupted run) or ``"noising"`` (corrupted
            activation into the clean run).
        layers: layers to sweep (negative indices count from the end); sorted, duplicates dropped.
        batch_size: rows per patched forward (configurations x pairs); at least one configuration with
            all pairs runs per forward whatever its value.
        normalize: scores as ``(patched - corrupted) / (clean - corrupted)`` (else the raw metric).
        min_gap: pairs with ``|clean - corrupted| <= min_gap`` (metric units) are flagged degenerate.
        cells: the store of the sweep's cells (default: kept nowhere, run here). The layers are swept in
            blocks of consecutive layers, each block a cell (its own caching forward, then its patched
            forwards), keyed by the pairs' tokens, the metric (a dataclass metric, such as
            :func:`lens_bias.patching.logit_diff_metric`'s, to keep cells in a folder), target, direction,
            block and batch size: an interrupted sweep resumes, and the store's executor spreads blocks.
        progress: show a tqdm bar (a string sets its description).

    Returns a :class:`PatchResult` (``method="exact"``; ``config`` records the number of forwards and of
    configurations run). Equals ``transformer_lens.patching``'s ``get_act_patch_*`` functions run pair
    by pair (``normalize=False``) to float precision.
    """
    spec = check_target(target)
    check_direction(direction)
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}.")
    clean, corrupted = check_pairs(clean, corrupted)
    layers = sweep_layers(model, layers)
    store = cells if cells is not None else CellStore(None)
    base = corrupted if direction == "denoising" else clean
    n_pairs, width, n_heads = len(base), base.tokens.shape[1], _n_heads(model, spec)
    masks = _config_masks(spec.unit, width, n_heads)
    # a patch touching only positions where both runs have the same tokens so far changes nothing
    runs = (_last_touched_position(masks) >= _first_differing_position(clean, corrupted)).nonzero().flatten().tolist()
    # blocks of consecutive layers that fill at least one forward of batch_size rows each
    per_block = max(1, -(-max(1, batch_size // n_pairs) // max(1, len(runs))))
    blocks = [layers[i : i + per_block] for i in range(0, len(layers), per_block)]
    sweep = _Sweep(clean, corrupted, metric, target, direction, runs, batch_size)
    key = {"patch": sweep.key(store.folder is not None)}
    done = store.map(
        [{**key, "layers": block} for block in blocks],
        blocks,
        cast(Compute, sweep.run),  # a HookedTransformer's: sweep_layers checked the model
        model=model,
        desc=progress if isinstance(progress, str) else f"patch {target} ({direction})",
        progress=bool(progress),
    )
    raw = torch.cat([torch.from_numpy(cell["raw"]) for cell in done], dim=1)  # [n_pairs, layers, configs]
    if spec.unit == "head_pos":
        raw = raw.reshape(n_pairs, len(layers), width, n_heads)
    return finish(
        raw,
        spec_name=target,
        direction=direction,
        method="exact",
        layers=layers,
        source_metric=torch.from_numpy(done[0]["source_metric"]),
        base_metric=torch.from_numpy(done[0]["base_metric"]),
        valid=valid_positions(spec.unit, base.lengths, width, n_heads),
        normalize=normalize,
        min_gap=min_gap,
        model=model,
        clean=clean,
        corrupted=corrupted,
        config={
            "batch_size": batch_size,
            "min_gap": min_gap,
            "n_configs": len(masks) * len(layers),
            "n_configs_run": len(runs) * len(layers),
            "n_forwards": int(sum(int(cell["n_forwards"][0]) for cell in done)),
            "n_cells": len(blocks),
        },
    )


def _n_heads(model: HookedTransformer, spec: Any) -> int:
    """Heads per configuration of a head target (1 for a position target)."""
    if spec.unit == "pos":
        return 1
    if spec.heads == "kv" and not model.cfg.ungroup_grouped_query_attention:
        return model.cfg.n_key_value_heads or model.cfg.n_heads
    return model.cfg.n_heads  # query heads; hook_k/hook_v hold the repeated copies when ungrouped


@dataclass(frozen=True)
class _Sweep:
    """One patching sweep's fixed inputs; :meth:`run` computes one block of layers (a cell)."""

    clean: PromptBatch
    corrupted: PromptBatch
    metric: Metric
    target: str
    direction: Direction
    runs: list[int]
    batch_size: int

    def key(self, persistent: bool) -> dict[str, Any]:
        """What identifies the sweep's cells; ``persistent``: the key must mean the same in another process."""
        if dataclasses.is_dataclass(self.metric) and not isinstance(self.metric, type):
            metric: Any = {"type": type(self.metric).__name__, **vars(self.metric)}
        elif persistent:
            raise InputError(
                f"Patching cells kept in a folder need a metric that can be identified: a dataclass (such as "
                f"logit_diff_metric's), not {type(self.metric).__name__}; or pass cells=None."
            )
        else:
            metric = {"id": id(self.metric)}
        tokens = [self.clean.tokens, self.clean.lengths, self.corrupted.tokens, self.corrupted.lengths]
        return {
            "target": self.target,
            "direction": self.direction,
            "tokens": tokens,
            "metric": metric,
            "batch_size": self.batch_size,
        }

    def run(self, model: HookedTransformer, layers: list[int]) -> dict[str, np.ndarray]:
        """``raw`` ``[n_pairs, len(layers), n_configs]`` patched metric (the base run's where a configuration is
        not run), ``source_metric`` / ``base_metric`` ``[n_pairs]``, ``n_forwards`` ``[1]``."""
        spec = TARGETS[self.target]
        base, source = (self.corrupted, self.clean) if self.direction == "denoising" else (self.clean, self.corrupted)
        n_pairs, width, n_heads = len(base), base.tokens.shape[1], _n_heads(model, spec)
        masks = _config_masks(spec.unit, width, n_heads)
        items = [(j, c) for j in range(len(layers)) for c in self.runs]  # (layer index, configuration)
        per_forward = max(1, self.batch_size // n_pairs)
        chunks = [items[i : i + per_forward] for i in range(0, len(items), per_forward)]
        starts = sorted({layers[chunk[0][0]] for chunk in chunks})  # each forward starts at its lowest layer
        cache: dict[str, Tensor] = {}
        rows_source, rows_base = slice(0, n_pairs), slice(n_pairs, 2 * n_pairs)
        storing = [
            (f"blocks.{layer}.{spec.hook}", storing_hook(cache, f"source.{layer}", rows_source)) for layer in layers
        ] + [(f"blocks.{layer}.hook_resid_pre", storing_hook(cache, f"base.{layer}", rows_base)) for layer in starts]
        with torch.inference_mode():
            with hooks_added(model, storing):  # both runs in one forward: rows [source; base]
                source_metric, base_metric = forward_metric(
                    model, self.metric, torch.cat([source.tokens, base.tokens]).to(model.cfg.device), [source, base]
                )
            # what a full forward of the base tokens passes to every block besides the residual stream
            _, _, shortformer, attention_mask = model.input_to_embed(base.tokens.to(model.cfg.device))
            raw = base_metric.cpu()[:, None, None].repeat(1, len(layers), len(masks))
            for chunk in chunks:
                chunk_layers = torch.tensor([j for j, _ in chunk])
                mask = masks[[c for _, c in chunk]]
                hooks = []
                for j in sorted(set(chunk_layers.tolist())):
                    own = (chunk_layers == j).reshape(-1, *[1] * (mask.ndim - 1))
                    hooks.append(
                        (
                            f"blocks.{layers[j]}.{spec.hook}",
                            _patch_hook((mask & own).to(model.cfg.device), cache[f"source.{layers[j]}"], n_pairs),
                        )
                    )
                start, n = layers[chunk[0][0]], len(chunk)
                with hooks_added(model, hooks):
                    values = forward_metric(
                        model,
                        self.metric,
                        _repeat_rows(cache[f"base.{start}"], n),
                        [base] * n,
                        start_at_layer=start,
                        attention_mask=_repeat_rows(attention_mask, n),
                        shortformer_pos_embed=_repeat_rows(shortformer, n),
                    )
                for (j, c), value in zip(chunk, values.cpu()):
                    raw[:, j, c] = value
        return {
            "raw": raw.numpy(),
            "source_metric": source_metric.cpu().numpy(),
            "base_metric": base_metric.cpu().numpy(),
            "n_forwards": np.array([len(chunks) + 1]),
        }
