"""What a patching sweep patches and what it returns: directions, targets (hook, unit, axes) and
:class:`PatchResult`, the per-pair scores with their views.

Directions, named everywhere by ``direction``:

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

Padding: positions at or after a pair's length are padding: their scores are NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor

from lens_bias.errors import InputError

Direction = Literal["denoising", "noising"]
DIRECTIONS = ("denoising", "noising")
#: Default smallest |clean - corrupted| metric gap (in the metric's units) for which a pair is scored.
MIN_GAP = 1e-3


@dataclass(frozen=True)
class Target:
    """Where a target patches: ``hook`` (the hook name after ``blocks.{layer}.``), ``unit`` (what one
    configuration patches: one position, one head at all positions, or one head at one position) and,
    for head targets, whether the heads are query or key/value heads."""

    hook: str
    unit: Literal["pos", "head", "head_pos"]
    heads: Literal["query", "kv"] | None = None


TARGETS: dict[str, Target] = {
    "resid_pre": Target("hook_resid_pre", "pos"),
    "resid_mid": Target("hook_resid_mid", "pos"),
    "resid_post": Target("hook_resid_post", "pos"),
    "attn_out": Target("hook_attn_out", "pos"),
    "mlp_out": Target("hook_mlp_out", "pos"),
    "z": Target("attn.hook_z", "head", "query"),
    "z_pos": Target("attn.hook_z", "head_pos", "query"),
    "k": Target("attn.hook_k", "head", "kv"),
    "v": Target("attn.hook_v", "head", "kv"),
    "k_pos": Target("attn.hook_k", "head_pos", "kv"),
    "v_pos": Target("attn.hook_v", "head_pos", "kv"),
}
#: The score axes of each unit.
AXES = {
    "pos": ("pair", "layer", "pos"),
    "head": ("pair", "layer", "head"),
    "head_pos": ("pair", "layer", "pos", "head"),
}


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
    clean_metric: Float[Tensor, " n_pairs"]
    corrupted_metric: Float[Tensor, " n_pairs"]
    degenerate: Tensor  # [n_pairs] bool: |clean - corrupted| <= min_gap
    clean_tokens: list[list[str]]
    corrupted_tokens: list[list[str]]
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def n_pairs(self) -> int:
        return self.scores.shape[0]

    def baseline(self) -> Float[Tensor, " n_pairs"]:
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
            raise InputError(f"Target {self.target!r} has no head axis (axes {self.axes}).")
        prefix = "KV" if TARGETS[self.target].heads == "kv" else "H"
        return [f"{prefix}{h}" for h in range(self.scores.shape[-1])]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data: everything above, with tensors as nested lists (NaN kept as float)."""
        return {
            "target": self.target,
            "direction": self.direction,
            "method": self.method,
            "layers": list(self.layers),
            "axes": list(self.axes),
            "normalized": self.normalized,
            "scores": self.scores.tolist(),
            "mean": self.mean().tolist(),
            "clean_metric": self.clean_metric.tolist(),
            "corrupted_metric": self.corrupted_metric.tolist(),
            "degenerate": self.degenerate.tolist(),
            "clean_tokens": self.clean_tokens,
            "corrupted_tokens": self.corrupted_tokens,
            "position_labels": self.position_labels(),
            "config": dict(self.config),
        }
