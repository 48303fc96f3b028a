"""Activation patching over clean/corrupted prompt pairs: exact (batched, from cached activations) and
attribution patching (gradient x activation difference), with a measure of how well the two agree.

Setup. A *clean* prompt and a *corrupted* prompt differ in one detail (a demographic term swapped for a
counterpart of the same token length); a metric (e.g. :func:`logit_diff_metric`: logit of the answer the
clean prompt's stereotype predicts minus logit of the other answer) is high on the clean run and low on
the corrupted run. Patching one activation from one run into the other shows how much of the difference
that activation carries. Two directions, named everywhere by ``direction``:

* ``"denoising"``: run the *corrupted* prompt, patch in one *clean* activation. A score near 1 means this
  activation alone is *sufficient* to restore the clean behaviour.
* ``"noising"``: run the *clean* prompt, patch in one *corrupted* activation. A score near 0 means this
  activation is *necessary*: corrupting it alone destroys the clean behaviour.

Normalisation (both directions): ``score = (patched - corrupted) / (clean - corrupted)``, so 1 = the
clean run's metric and 0 = the corrupted run's. Pairs whose clean and corrupted metrics differ by at most
``min_gap`` have no defined score: they are flagged in :attr:`PatchResult.degenerate`, their scores are
NaN, and a warning names them.

Targets (``target=``), with the hook patched at layer L and what one configuration patches:

* ``resid_pre`` / ``resid_mid`` / ``resid_post`` (``blocks.L.hook_resid_*``), ``attn_out``
  (``blocks.L.hook_attn_out``), ``mlp_out`` (``blocks.L.hook_mlp_out``): one position; scores
  ``[pair, layer, pos]``.
* ``z`` (``blocks.L.attn.hook_z``): one query head's output at all positions; ``[pair, layer, head]``.
* ``z_pos``: one query head at one position; ``[pair, layer, pos, head]``.
* ``k`` / ``v`` (``blocks.L.attn.hook_k`` / ``hook_v``): one key/value head at all positions;
  ``k_pos`` / ``v_pos``: one key/value head at one position.

On grouped-query-attention models (SmolLM2: 9 query heads, 3 kv heads) ``hook_k``/``hook_v`` hold the
kv heads (``[batch, pos, n_key_value_heads, d_head]``, unless the config sets
``ungroup_grouped_query_attention``), so ``k``/``v`` patch one kv head: the keys or values shared by its
group of query heads.

How exact patching is fast; results equal ``transformer_lens.patching`` (tested to 1e-4):

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
   are not run: causal attention makes those activations identical in both runs, so the patch changes
   nothing and the score is the base run's metric.
5. A :class:`PositionMetric` (e.g. :func:`logit_diff_metric`) gets the logits of its one position: the
   final norm and unembedding run on that position only.

Memory: the caches hold ``2 x n_layers x n_pairs x pos x d_model`` floats at most (SmolLM2, 12 tokens, 30
layers: 1.7 MB per pair); a forward holds the activations of ``batch_size`` rows and their logits at one
position (all positions for a metric that is not a :class:`PositionMetric`).

Padding: pairs may have different lengths (right padding). Clean and corrupted versions of one pair must
have the same length. Positions at or after a pair's length are padding: their scores are NaN.

The metric. ``metric(logits, batch)`` returns one value per row of ``batch``; patching calls it with the
logits of all pairs at once, in the order of ``batch``, so per-pair answer ids line up with the rows.

Model: :func:`patch` needs a ``HookedTransformer`` (it uses ``start_at_layer``); the hook names it
patches are the ones stable across HookedTransformer and TransformerBridge.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol, Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer
from transformer_lens.utilities.activation_functions import apply_softcap

from lens_bias.data.patching_pairs import PatchingPair
from lens_bias.data.records import ContrastPair
from lens_bias.interventions import hooks_added
from lens_bias.models import check_layers
from lens_bias.prompts import PromptBatch, tokenize

Metric = Callable[[Float[Tensor, "batch pos d_vocab"], PromptBatch], Float[Tensor, "batch"]]
Direction = Literal["denoising", "noising"]
DIRECTIONS = ("denoising", "noising")
#: Default smallest |clean - corrupted| metric gap (in the metric's units) for which a pair is scored.
MIN_GAP = 1e-3


@dataclass(frozen=True)
class _Target:
    hook: str  # hook name after "blocks.{layer}."
    unit: Literal["pos", "head", "head_pos"]  # what one configuration patches
    heads: Literal["query", "kv"] | None = None


TARGETS: dict[str, _Target] = {
    "resid_pre": _Target("hook_resid_pre", "pos"),
    "resid_mid": _Target("hook_resid_mid", "pos"),
    "resid_post": _Target("hook_resid_post", "pos"),
    "attn_out": _Target("hook_attn_out", "pos"),
    "mlp_out": _Target("hook_mlp_out", "pos"),
    "z": _Target("attn.hook_z", "head", "query"),
    "z_pos": _Target("attn.hook_z", "head_pos", "query"),
    "k": _Target("attn.hook_k", "head", "kv"),
    "v": _Target("attn.hook_v", "head", "kv"),
    "k_pos": _Target("attn.hook_k", "head_pos", "kv"),
    "v_pos": _Target("attn.hook_v", "head_pos", "kv"),
}
_AXES = {"pos": ("pair", "layer", "pos"), "head": ("pair", "layer", "head"),
         "head_pos": ("pair", "layer", "pos", "head")}


# --------------------------------------------------------------------------------------------------
# Metric
# --------------------------------------------------------------------------------------------------


class PositionMetric(Protocol):
    """A :data:`Metric` that reads the logits of one named position only. :func:`patch` then unembeds
    just that position of each patched run (the unembedding of every position costs as much as ~8
    layers of SmolLM2) and calls ``at_position``; ``metric(logits, batch)`` must equal
    ``metric.at_position(logits[rows, batch.positions[metric.position]], batch)``."""

    position: str

    def __call__(self, logits: Float[Tensor, "batch pos d_vocab"], batch: PromptBatch) -> Float[Tensor, "batch"]:
        ...

    def at_position(self, logits: Float[Tensor, "batch d_vocab"], batch: PromptBatch) -> Float[Tensor, "batch"]:
        ...


@dataclass(frozen=True)
class LogitDiff:
    """``logit[positive] - logit[negative]`` per row at ``batch.positions[position]`` (a
    :class:`PositionMetric`); ``positive``/``negative`` hold one id for all rows (0-d) or one per row."""

    positive: Int[Tensor, "..."]
    negative: Int[Tensor, "..."]
    position: str = "last"

    def __call__(self, logits: Float[Tensor, "batch pos d_vocab"], batch: PromptBatch) -> Float[Tensor, "batch"]:
        if self.position not in batch.positions:
            raise ValueError(f"Position {self.position!r} is not in the batch (has {sorted(batch.positions)}).")
        rows = torch.arange(logits.shape[0], device=logits.device)
        return self.at_position(logits[rows, batch.positions[self.position].to(logits.device)], batch)

    def at_position(self, logits: Float[Tensor, "batch d_vocab"], batch: PromptBatch) -> Float[Tensor, "batch"]:
        n = logits.shape[0]
        if self.positive.ndim == 1 and len(self.positive) != n:
            raise ValueError(f"The metric has {len(self.positive)} answer-id pairs but was called on {n} "
                             "rows: give one id pair per prompt pair (or a single id pair for all).")
        rows = torch.arange(n, device=logits.device)
        logits = logits.float()
        return (logits[rows, self.positive.to(logits.device).expand(n)]
                - logits[rows, self.negative.to(logits.device).expand(n)])


def logit_diff_metric(
    positive_ids: int | Sequence[int] | Tensor,
    negative_ids: int | Sequence[int] | Tensor,
    position: str = "last",
) -> LogitDiff:
    """``logit[positive_id] - logit[negative_id]`` per row, read at ``batch.positions[position]``.

    Ids are one token id for every row, or one per row (per pair: the rows of the batch the metric is
    called with). Returns a :class:`LogitDiff` giving ``[batch]`` float32 logit differences (the
    log-odds between the two tokens, in nats).
    """
    positive = torch.as_tensor(positive_ids, dtype=torch.long)
    negative = torch.as_tensor(negative_ids, dtype=torch.long)
    if positive.ndim > 1 or negative.ndim > 1 or positive.shape != negative.shape:
        raise ValueError(f"positive_ids and negative_ids must be two ints or two 1-D sequences of equal "
                         f"length, got shapes {tuple(positive.shape)} and {tuple(negative.shape)}.")
    return LogitDiff(positive, negative, position)


@dataclass(frozen=True)
class ContinuationLogProb:
    """Per row, the summed log-probability (nats) of the tokens from ``batch.positions[start]`` to the last
    real token, each given the tokens before it: how likely the rest of a sentence is after a swapped
    term (minimal pairs, :func:`minimal_pair_inputs`). A generic :data:`Metric` (reads every position)."""

    start: str = "continuation"

    def __call__(self, logits: Float[Tensor, "batch pos d_vocab"], batch: PromptBatch) -> Float[Tensor, "batch"]:
        if self.start not in batch.positions:
            raise ValueError(f"Position {self.start!r} is not in the batch (has {sorted(batch.positions)}).")
        tokens = batch.tokens.to(logits.device)
        # next-token log-probs: column t holds log P(tokens[t + 1] | tokens[: t + 1])
        logprobs = logits[:, :-1].float().log_softmax(-1).gather(-1, tokens[:, 1:, None])[..., 0]
        index = torch.arange(logprobs.shape[1], device=logits.device)[None]
        first = batch.positions[self.start].to(logits.device)[:, None] - 1
        last = batch.lengths.to(logits.device)[:, None] - 2
        return (logprobs * ((index >= first) & (index <= last))).sum(1)


# --------------------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------------------


@dataclass
class PatchResult:
    """Scores of one patching sweep, per pair.

    ``scores``: ``[n_pairs, n_layers, n_positions]`` (residual, attention-out, MLP-out targets),
    ``[n_pairs, n_layers, n_heads]`` (``z``, ``k``, ``v``) or ``[n_pairs, n_layers, n_positions, n_heads]``
    (``z_pos``, ``k_pos``, ``v_pos``); ``axes`` names the dimensions. With ``normalized`` the scores are
    ``(patched - corrupted) / (clean - corrupted)`` (1 = clean, 0 = corrupted), else the raw patched
    metric. NaN marks padding positions and the rows of ``degenerate`` pairs (normalised only).
    ``n_heads`` is the number of query heads for ``z``/``z_pos`` and of key/value heads for ``k``/``v``.

    ``method``: ``"exact"`` (activation patching) or ``"attribution"`` (gradient x activation-difference
    estimate of the patched metric). ``clean_metric``/``corrupted_metric``: ``[n_pairs]`` metric of the
    unpatched runs. ``clean_tokens``/``corrupted_tokens``: token strings of each pair (real tokens only).
    """

    scores: Tensor
    axes: tuple[str, ...]
    target: str
    direction: Direction
    method: Literal["exact", "attribution"]
    layers: list[int]
    normalized: bool
    clean_metric: Float[Tensor, "n_pairs"]
    corrupted_metric: Float[Tensor, "n_pairs"]
    degenerate: Tensor  # [n_pairs] bool: |clean - corrupted| <= min_gap
    clean_tokens: list[list[str]]
    corrupted_tokens: list[list[str]]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def n_pairs(self) -> int:
        return self.scores.shape[0]

    def baseline(self) -> Float[Tensor, "n_pairs"]:
        """The score of a patch that changes nothing: the base run's metric (0 when denoising and 1 when
        noising, if normalised)."""
        if self.normalized:
            value = 0.0 if self.direction == "denoising" else 1.0
            return torch.full((self.n_pairs,), value)
        return self.corrupted_metric if self.direction == "denoising" else self.clean_metric

    def mean(self) -> Tensor:
        """Mean over the non-degenerate pairs (NaN-aware: padding positions are skipped), shape
        ``scores.shape[1:]``. NaN everywhere if every pair is degenerate."""
        kept = self.scores[~self.degenerate]
        if len(kept) == 0:
            return torch.full(self.scores.shape[1:], math.nan)
        return kept.nanmean(0)

    def effects(self) -> Tensor:
        """``scores - baseline()`` per pair: how far each patch moves the metric (0 = no effect)."""
        base = self.baseline().reshape(-1, *[1] * (self.scores.ndim - 1))
        return self.scores - base

    def position_labels(self) -> list[str]:
        """One unique label per position: ``"{i} {token}"`` where every pair (clean and corrupted) has the
        same token there, ``"{i} {clean}/{corrupted}"`` where they differ within a single pair, and
        ``"{i} (varies)"`` where tokens vary across pairs."""
        width = max(len(tokens) for tokens in self.clean_tokens)
        labels = []
        for i in range(width):
            clean = {tokens[i] for tokens in self.clean_tokens if i < len(tokens)}
            corrupted = {tokens[i] for tokens in self.corrupted_tokens if i < len(tokens)}
            if clean == corrupted and len(clean) == 1:
                labels.append(f"{i} {next(iter(clean))!r}")
            elif len(clean) == 1 and len(corrupted) == 1:
                labels.append(f"{i} {next(iter(clean))!r}/{next(iter(corrupted))!r}")
            else:
                labels.append(f"{i} (varies)")
        return labels

    def head_labels(self) -> list[str]:
        """``H{h}`` (query heads) or ``KV{h}`` (key/value heads), one per head."""
        if "head" not in self.axes:
            raise ValueError(f"Target {self.target!r} has no head axis (axes {self.axes}).")
        prefix = "KV" if TARGETS[self.target].heads == "kv" else "H"
        return [f"{prefix}{h}" for h in range(self.scores.shape[-1])]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: everything above, with tensors as nested lists (NaN kept as float)."""
        return {
            "target": self.target, "direction": self.direction, "method": self.method,
            "layers": list(self.layers), "axes": list(self.axes), "normalized": self.normalized,
            "scores": self.scores.tolist(), "mean": self.mean().tolist(),
            "clean_metric": self.clean_metric.tolist(), "corrupted_metric": self.corrupted_metric.tolist(),
            "degenerate": self.degenerate.tolist(), "clean_tokens": self.clean_tokens,
            "corrupted_tokens": self.corrupted_tokens, "position_labels": self.position_labels(),
            "config": dict(self.config),
        }


# --------------------------------------------------------------------------------------------------
# Input checks and shared pieces
# --------------------------------------------------------------------------------------------------


def _check_target(target: str) -> _Target:
    if target not in TARGETS:
        raise ValueError(f"Unknown target {target!r}: use one of {', '.join(TARGETS)}.")
    return TARGETS[target]


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"Unknown direction {direction!r}: use 'denoising' (clean activations into the "
                         "corrupted run) or 'noising' (corrupted activations into the clean run).")


def _check_pairs(clean: PromptBatch, corrupted: PromptBatch) -> tuple[PromptBatch, PromptBatch]:
    """Same number of prompts, same length pair by pair; returns both trimmed to their longest row."""
    if len(clean) != len(corrupted):
        raise ValueError(f"clean has {len(clean)} prompts and corrupted has {len(corrupted)}: build both "
                         "batches from the same list of pairs, in the same order.")
    if len(clean) == 0:
        raise ValueError("No pairs to patch: the batches are empty.")
    mismatch = (clean.lengths != corrupted.lengths).nonzero().flatten().tolist()
    if mismatch:
        raise ValueError(f"Pairs {mismatch} have clean and corrupted prompts of different token lengths "
                         f"(clean {clean.lengths[mismatch].tolist()}, corrupted "
                         f"{corrupted.lengths[mismatch].tolist()}): patching needs aligned positions. Drop "
                         "them or swap in a counterpart of the same token length (patching_inputs() does).")
    return clean[0:len(clean)], corrupted[0:len(corrupted)]


def _layers(model: HookedTransformer, layers: Sequence[int] | None) -> list[int]:
    if not isinstance(model, HookedTransformer):
        raise TypeError(f"Patching needs a HookedTransformer (it runs from and to a given layer with "
                        f"start_at_layer/stop_at_layer), got {type(model).__name__}: load the checkpoint with "
                        "lens_bias.load_model. Extraction, steering and readouts also work on a TransformerBridge.")
    return list(range(model.cfg.n_layers)) if layers is None else sorted(set(check_layers(model, list(layers))))


def _str_tokens(model: HookedTransformer, batch: PromptBatch) -> list[list[str]]:
    return [list(model.to_str_tokens(batch.tokens[i, : int(batch.lengths[i])])) for i in range(len(batch))]


def _valid_positions(unit: str, lengths: Tensor, width: int, n_heads: int) -> Tensor | None:
    """``[n_pairs, *config shape]`` bool, False at padding positions; None for units without positions."""
    if unit == "head":
        return None
    real = torch.arange(width)[None] < lengths.cpu()[:, None]  # [n_pairs, pos]
    return real if unit == "pos" else real[:, :, None].expand(-1, -1, n_heads)


def _finish(raw: Tensor, *, spec_name: str, direction: Direction, method: str, layers: list[int],
            clean_metric: Tensor, corrupted_metric: Tensor, valid: Tensor | None, normalize: bool,
            min_gap: float, model: HookedTransformer, clean: PromptBatch, corrupted: PromptBatch,
            config: dict[str, Any]) -> PatchResult:
    """Mask padding, normalise, flag degenerate pairs, and wrap everything in a PatchResult."""
    spec = TARGETS[spec_name]
    raw = raw.float().cpu()
    if valid is not None:
        raw = raw.masked_fill(~valid[:, None], math.nan)
    clean_metric, corrupted_metric = clean_metric.float().cpu(), corrupted_metric.float().cpu()
    gap = clean_metric - corrupted_metric
    degenerate = gap.abs() <= min_gap
    if bool(degenerate.any()):
        warnings.warn(f"{int(degenerate.sum())} of {len(gap)} pairs have |clean - corrupted| metric <= "
                      f"{min_gap} (pairs {degenerate.nonzero().flatten().tolist()}): their normalised scores "
                      "are undefined and set to NaN; see PatchResult.degenerate.", stacklevel=3)
    shape = (-1,) + (1,) * (raw.ndim - 1)
    if normalize:
        safe_gap = torch.where(degenerate, torch.ones_like(gap), gap)
        scores = (raw - corrupted_metric.reshape(shape)) / safe_gap.reshape(shape)
        scores = scores.masked_fill(degenerate.reshape(shape), math.nan)
    else:
        scores = raw
    return PatchResult(scores=scores, axes=_AXES[spec.unit], target=spec_name, direction=direction,
                       method=method, layers=layers, normalized=normalize, clean_metric=clean_metric,
                       corrupted_metric=corrupted_metric, degenerate=degenerate,
                       clean_tokens=_str_tokens(model, clean), corrupted_tokens=_str_tokens(model, corrupted),
                       config=config)


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


def _first_difference(clean: PromptBatch, corrupted: PromptBatch) -> int:
    """The first position at which any pair's clean and corrupted tokens differ (the width if none):
    activations at earlier positions are identical in both runs (causal attention)."""
    differs = (clean.tokens != corrupted.tokens).any(0).nonzero()
    return int(differs[0]) if len(differs) else clean.tokens.shape[1]


def _storing_hook(cache: dict[str, Tensor], key: str, rows: slice | None = None) -> Callable:
    """A hook keeping the activation (``rows=None``: the tensor itself, part of the autograd graph) or a
    copy of some of its rows under ``cache[key]``."""

    def hook(activation: Tensor, hook) -> None:
        cache[key] = activation if rows is None else activation[rows].clone()

    return hook


def _patch_hook(mask: Tensor, source: Tensor, n_pairs: int) -> Callable:
    """A hook replacing, in rows ``c * n_pairs + i``, the activation where ``mask[c]`` is True by
    ``source[i]``. ``mask``: ``[C, pos]`` or ``[C, pos, heads]``; ``source``: ``[n_pairs, pos, ...]``."""
    mask = mask[:, None, ..., None]  # [C, 1, pos, (heads,) 1]

    def hook(activation: Tensor, hook) -> Tensor:
        shape = activation.shape
        grouped = activation.reshape(-1, n_pairs, *shape[1:])
        return torch.where(mask, source, grouped).reshape(shape)

    return hook


def _reads_one_position(metric: Metric) -> bool:
    return isinstance(getattr(metric, "position", None), str) and callable(getattr(metric, "at_position", None))


def _forward_metric(model: HookedTransformer, metric: Metric, x: Tensor, blocks: Sequence[PromptBatch],
                    **forward_kwargs: Any) -> Float[Tensor, "n_blocks n_pairs"]:
    """Forward ``x`` (tokens, or a residual stream with ``start_at_layer``) and evaluate the metric on each
    consecutive block of rows, block ``b`` against ``blocks[b]`` (its prompts). A :class:`PositionMetric`
    gets the logits of its one position only (final norm and unembedding applied to that position)."""
    n_pairs = len(blocks[0])
    if _reads_one_position(metric):
        for block in blocks:
            if metric.position not in block.positions:
                raise ValueError(f"Position {metric.position!r} is not in the batch (has {sorted(block.positions)}).")
        final = model(x, stop_at_layer=model.cfg.n_layers, **forward_kwargs)  # [rows, pos, d_model]
        read = torch.cat([block.positions[metric.position] for block in blocks]).to(final.device)
        at = final[torch.arange(len(final), device=final.device), read][:, None]  # [rows, 1, d_model]
        if model.cfg.normalization_type is not None:
            at = model.ln_final(at)
        logits = apply_softcap(model.unembed(at), model.cfg.output_logits_soft_cap)[:, 0]
        values = [metric.at_position(logits[b * n_pairs:(b + 1) * n_pairs], block) for b, block in enumerate(blocks)]
    else:
        logits = model(x, **forward_kwargs)
        values = [metric(logits[b * n_pairs:(b + 1) * n_pairs], block) for b, block in enumerate(blocks)]
    for value in values:
        if not isinstance(value, Tensor) or value.shape != (n_pairs,):
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"The metric must return one value per row, shape ({n_pairs},); got {shape}.")
    return torch.stack(values).float()


# --------------------------------------------------------------------------------------------------
# Exact patching
# --------------------------------------------------------------------------------------------------


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
    progress: bool | str = False,
) -> PatchResult:
    """Activation patching of every configuration of ``target`` at ``layers`` (default all), per pair.

    Args:
        clean, corrupted: the same pairs as two right-padded batches (same number of rows, each pair the
            same token length in both), e.g. from :func:`patching_inputs`.
        metric: ``metric(logits, batch) -> [batch]``; called with the logits of all pairs at once.
        target: one of :data:`TARGETS` (see the module docstring).
        direction: ``"denoising"`` (clean activation into the corrupted run) or ``"noising"`` (corrupted
            activation into the clean run).
        layers: layers to sweep (negative indices count from the end); sorted, duplicates dropped.
        batch_size: rows per patched forward (configurations x pairs); at least one configuration with
            all pairs runs per forward whatever its value.
        normalize: scores as ``(patched - corrupted) / (clean - corrupted)`` (else the raw metric).
        min_gap: pairs with ``|clean - corrupted| <= min_gap`` (metric units) are flagged degenerate.
        progress: show a tqdm bar (a string sets its description).

    Returns a :class:`PatchResult` (``method="exact"``; ``config`` records the number of forwards and of
    configurations run). Equals ``transformer_lens.patching``'s ``get_act_patch_*`` functions run pair
    by pair (``normalize=False``) to float precision.
    """
    spec = _check_target(target)
    _check_direction(direction)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    clean, corrupted = _check_pairs(clean, corrupted)
    layers = _layers(model, layers)
    base, source = (corrupted, clean) if direction == "denoising" else (clean, corrupted)
    n_pairs, width = len(base), base.tokens.shape[1]
    n_heads = 1
    if spec.unit != "pos":
        n_heads = model.cfg.n_heads if spec.heads == "query" else model.cfg.n_key_value_heads or model.cfg.n_heads
        if spec.heads == "kv" and model.cfg.ungroup_grouped_query_attention:
            n_heads = model.cfg.n_heads  # hook_k/hook_v then hold the repeated (query-head) copies
    masks = _config_masks(spec.unit, width, n_heads)
    # a patch touching only positions where both runs have the same tokens so far changes nothing
    runs = (_last_touched_position(masks) >= _first_difference(clean, corrupted)).nonzero().flatten().tolist()
    items = [(j, c) for j in range(len(layers)) for c in runs]  # (layer index, configuration)
    per_forward = max(1, batch_size // n_pairs)
    chunks = [items[i:i + per_forward] for i in range(0, len(items), per_forward)]
    starts = sorted({layers[chunk[0][0]] for chunk in chunks})  # each forward starts at its lowest layer

    cache: dict[str, Tensor] = {}
    rows_source, rows_base = slice(0, n_pairs), slice(n_pairs, 2 * n_pairs)
    storing = ([(f"blocks.{layer}.{spec.hook}", _storing_hook(cache, f"source.{layer}", rows_source))
                for layer in layers]
               + [(f"blocks.{layer}.hook_resid_pre", _storing_hook(cache, f"base.{layer}", rows_base))
                  for layer in starts])
    with torch.inference_mode():
        with hooks_added(model, storing):  # both runs in one forward: rows [source; base]
            source_metric, base_metric = _forward_metric(
                model, metric, torch.cat([source.tokens, base.tokens]).to(model.cfg.device), [source, base])
        # what a full forward of the base tokens passes to every block besides the residual stream
        _, _, shortformer, attention_mask = model.input_to_embed(base.tokens.to(model.cfg.device))
        raw = base_metric.cpu()[:, None, None].repeat(1, len(layers), len(masks))
        bar_name = progress if isinstance(progress, str) else f"patch {target} ({direction})"
        for chunk in tqdm(chunks, desc=bar_name, disable=not progress, leave=False):
            chunk_layers = torch.tensor([j for j, _ in chunk])
            mask = masks[[c for _, c in chunk]]
            hooks = []
            for j in sorted(set(chunk_layers.tolist())):
                own = (chunk_layers == j).reshape(-1, *[1] * (mask.ndim - 1))
                hooks.append((f"blocks.{layers[j]}.{spec.hook}",
                              _patch_hook((mask & own).to(model.cfg.device), cache[f"source.{layers[j]}"], n_pairs)))

            def repeat(x: Tensor | None) -> Tensor | None:
                return None if x is None else x.repeat(len(chunk), *[1] * (x.ndim - 1))

            start = layers[chunk[0][0]]
            with hooks_added(model, hooks):
                values = _forward_metric(model, metric, repeat(cache[f"base.{start}"]), [base] * len(chunk),
                                         start_at_layer=start, attention_mask=repeat(attention_mask),
                                         shortformer_pos_embed=repeat(shortformer))
            for (j, c), value in zip(chunk, values.cpu()):
                raw[:, j, c] = value
    if spec.unit == "head_pos":
        raw = raw.reshape(n_pairs, len(layers), width, n_heads)
    clean_metric, corrupted_metric = ((source_metric, base_metric) if direction == "denoising"
                                      else (base_metric, source_metric))
    return _finish(raw, spec_name=target, direction=direction, method="exact", layers=layers,
                   clean_metric=clean_metric, corrupted_metric=corrupted_metric,
                   valid=_valid_positions(spec.unit, base.lengths, width, n_heads), normalize=normalize,
                   min_gap=min_gap, model=model, clean=clean, corrupted=corrupted,
                   config={"batch_size": batch_size, "min_gap": min_gap, "n_configs": len(masks) * len(layers),
                           "n_configs_run": len(items), "n_forwards": len(chunks) + 1})


# --------------------------------------------------------------------------------------------------
# Attribution patching
# --------------------------------------------------------------------------------------------------


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
    spec = _check_target(target)
    _check_direction(direction)
    clean, corrupted = _check_pairs(clean, corrupted)
    layers = _layers(model, layers)
    base, source = (corrupted, clean) if direction == "denoising" else (clean, corrupted)
    names = [f"blocks.{layer}.{spec.hook}" for layer in layers]
    source_cache: dict[str, Tensor] = {}
    base_cache: dict[str, Tensor] = {}
    tokens = [batch.tokens.to(model.cfg.device) for batch in (source, base)]
    with torch.no_grad(), hooks_added(model, [(name, _storing_hook(source_cache, name)) for name in names]):
        source_metric = _forward_metric(model, metric, tokens[0], [source])[0]
    with torch.enable_grad(), hooks_added(model, [("hook_embed", _as_leaf)]
                                          + [(name, _storing_hook(base_cache, name)) for name in names]):
        base_metric = _forward_metric(model, metric, tokens[1], [base])[0]
        grads = torch.autograd.grad(base_metric.sum(), [base_cache[name] for name in names])
    with torch.no_grad():
        reduce_dims = {"pos": (-1,), "head": (1, -1), "head_pos": (-1,)}[spec.unit]
        effects = torch.stack([((source_cache[name] - base_cache[name]) * grad).sum(reduce_dims)
                               for name, grad in zip(names, grads)], 1)  # [n_pairs, n_layers, ...]
        base_metric = base_metric.detach()
        raw = effects + base_metric.reshape(-1, *[1] * (effects.ndim - 1))
    n_heads = effects.shape[-1] if spec.unit != "pos" else 1
    clean_metric, corrupted_metric = ((source_metric, base_metric) if direction == "denoising"
                                      else (base_metric, source_metric))
    return _finish(raw, spec_name=target, direction=direction, method="attribution", layers=layers,
                   clean_metric=clean_metric, corrupted_metric=corrupted_metric,
                   valid=_valid_positions(spec.unit, base.lengths, base.tokens.shape[1], n_heads),
                   normalize=normalize, min_gap=min_gap, model=model, clean=clean, corrupted=corrupted,
                   config={"min_gap": min_gap})


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
        raise ValueError(f"k must be >= 1, got {k}.")
    for name in ("target", "direction", "layers", "normalized"):
        if getattr(exact, name) != getattr(approx, name):
            raise ValueError(f"The results differ in {name} ({getattr(exact, name)!r} vs "
                             f"{getattr(approx, name)!r}): compare sweeps of the same configuration.")
    if exact.scores.shape != approx.scores.shape:
        raise ValueError(f"The results have different shapes {tuple(exact.scores.shape)} and "
                         f"{tuple(approx.scores.shape)}: compare sweeps over the same pairs.")
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
    return {"pearson": _pearson(exact_map, approx_map),
            "pearson_all_pairs": _pearson(exact_effects[cells], approx_effects[cells]),
            "top_k_overlap": overlap, "k": k, "n_cells": len(exact_map), "n_pairs": int(kept.sum())}


def _pearson(x: Tensor, y: Tensor) -> float:
    if len(x) < 2 or float(x.std()) == 0 or float(y.std()) == 0:
        return math.nan
    return float(torch.corrcoef(torch.stack([x.double(), y.double()]))[0, 1])


# --------------------------------------------------------------------------------------------------
# Inputs from prompt pairs
# --------------------------------------------------------------------------------------------------


@dataclass
class PatchingInputs:
    """Pairs tokenized for :func:`patch`: ``clean``/``corrupted`` batches (row i = ``pairs[i]``, same token
    length in both), the first token of each pair's ``positive``/``negative`` answer (``[n_pairs]``), and
    the ids of the pairs left out, by reason (``"length_mismatch"``: clean and corrupted prompts tokenize
    to different lengths; ``"same_answer_token"``: both answers start with the same token)."""

    pairs: list[PatchingPair]
    clean: PromptBatch
    corrupted: PromptBatch
    positive_ids: Int[Tensor, "n_pairs"]
    negative_ids: Int[Tensor, "n_pairs"]
    dropped: dict[str, list[str]]

    def metric(self, position: str = "last") -> Metric:
        """``logit(positive answer) - logit(negative answer)`` at ``position`` (the last prompt token)."""
        return logit_diff_metric(self.positive_ids, self.negative_ids, position)


def patching_inputs(tokenizer: Any, pairs: Sequence[PatchingPair], *, add_start: bool = True) -> PatchingInputs:
    """Tokenize clean and corrupted prompts (after the document-start token with ``add_start``), keep the
    pairs whose two prompts have the same token length and whose answers start with different tokens.

    Raises ValueError when no pair is left (naming how many were dropped for which reason).
    """
    if not pairs:
        raise ValueError("No pairs given.")
    dropped: dict[str, list[str]] = {"length_mismatch": [], "same_answer_token": []}
    kept, positive_ids, negative_ids = [], [], []
    for pair in pairs:
        lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in (pair.clean, pair.corrupted)]
        answers = [tokenizer(text, add_special_tokens=False)["input_ids"][0] for text in (pair.positive, pair.negative)]
        if lengths[0] != lengths[1]:
            dropped["length_mismatch"].append(pair.id)
        elif answers[0] == answers[1]:
            dropped["same_answer_token"].append(pair.id)
        else:
            kept.append(pair)
            positive_ids.append(answers[0])
            negative_ids.append(answers[1])
    if not kept:
        raise ValueError(f"None of the {len(pairs)} pairs is usable: {len(dropped['length_mismatch'])} have "
                         f"clean and corrupted prompts of different token lengths, "
                         f"{len(dropped['same_answer_token'])} answers starting with the same token.")
    return PatchingInputs(
        pairs=kept,
        clean=tokenize(tokenizer, [pair.clean for pair in kept], add_start=add_start),
        corrupted=tokenize(tokenizer, [pair.corrupted for pair in kept], add_start=add_start),
        positive_ids=torch.tensor(positive_ids), negative_ids=torch.tensor(negative_ids), dropped=dropped,
    )


@dataclass
class MinimalPairInputs:
    """Minimal sentence pairs tokenized for :func:`patch` (e.g. CrowS-Pairs): ``clean`` = each pair's
    positive sentence (the more stereotyping one), ``corrupted`` = its negative; the two differ in one
    contiguous span of tokens (the swapped term) and share every token after it. ``positions`` has
    ``"continuation"``: the first shared token after the span. The metric (:meth:`metric`) is the
    log-probability of that shared continuation, so clean - corrupted is how much more likely the rest of
    the sentence is after the stereotyped term. ``dropped``: pair ids left out, by reason."""

    pairs: list[ContrastPair]
    clean: PromptBatch
    corrupted: PromptBatch
    dropped: dict[str, list[str]]

    def metric(self) -> Metric:
        """Summed log P of the shared continuation (nats)."""
        return ContinuationLogProb("continuation")


def minimal_pair_inputs(tokenizer: Any, pairs: Sequence[ContrastPair], *,
                        add_start: bool = True) -> MinimalPairInputs:
    """Keep the pairs whose two sentences (``prompt + positive`` / ``prompt + negative``) tokenize to the
    same length, differ in one contiguous span of tokens, and share at least one token after it.

    Raises ValueError when no pair is left (naming how many were dropped for which reason).
    """
    if not pairs:
        raise ValueError("No pairs given.")
    dropped: dict[str, list[str]] = {"length_mismatch": [], "not_one_span": [], "no_shared_continuation": []}
    kept, continuation = [], []
    offset = 1 if add_start else 0
    for pair in pairs:
        a, b = (tokenizer(pair.prompt + side, add_special_tokens=False)["input_ids"] for side in (pair.positive, pair.negative))
        differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        if len(a) != len(b):
            dropped["length_mismatch"].append(pair.id)
        elif not differ or differ[-1] - differ[0] + 1 != len(differ):
            dropped["not_one_span"].append(pair.id)
        elif differ[-1] == len(a) - 1:
            dropped["no_shared_continuation"].append(pair.id)
        else:
            kept.append(pair)
            continuation.append(differ[-1] + 1 + offset)
    if not kept:
        raise ValueError(f"None of the {len(pairs)} pairs is usable: " + ", ".join(
            f"{len(ids)} {reason.replace('_', ' ')}" for reason, ids in dropped.items()) + ".")
    clean = tokenize(tokenizer, [pair.prompt + pair.positive for pair in kept], add_start=add_start)
    corrupted = tokenize(tokenizer, [pair.prompt + pair.negative for pair in kept], add_start=add_start)
    for batch in (clean, corrupted):
        batch.positions["continuation"] = torch.tensor(continuation)
    return MinimalPairInputs(kept, clean, corrupted, dropped)
