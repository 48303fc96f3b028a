"""Scale chosen attention heads' outputs (0 = ablation): the :class:`HeadScaling` intervention.

:class:`HeadScaling` multiplies chosen query heads' outputs (``blocks.{l}.attn.hook_z``, per query head, so
well defined on grouped-query attention) by ``scale`` at every position; ``0`` is ablation (zero ablation:
the head adds only the attention bias ``b_O``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from lens_bias.errors import InputError
from lens_bias.forward.hooks import ForwardContext, Hookable, HookFn
from lens_bias.interventions.saved import register
from lens_bias.models import AnyModel

Head = tuple[int, int]
HEAD_SCALING_RESULT = "head_scaling"


@register(HEAD_SCALING_RESULT)
@dataclass(frozen=True)
class HeadScaling(Hookable):
    """Multiply the outputs of query heads ``heads`` (``(layer, head)`` pairs) by ``scale`` at every
    position, through ``blocks.{layer}.attn.hook_z`` (0 = ablation). An
    :class:`lens_bias.interventions.Intervention`."""

    heads: tuple[Head, ...]
    scale: float = 0.0

    def __post_init__(self) -> None:
        heads = tuple((int(l), int(h)) for l, h in self.heads)
        if not heads:
            raise InputError("HeadScaling needs at least one head.")
        if len(set(heads)) != len(heads):
            raise InputError(f"Duplicate heads in {heads}.")
        if not math.isfinite(self.scale):
            raise InputError(f"scale must be finite, got {self.scale}.")
        object.__setattr__(self, "heads", heads)

    def check(self, model: AnyModel) -> None:
        """Every head is inside the model (layer in ``0..n_layers-1``, query head in ``0..n_heads-1``)."""
        n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
        bad = [(l, h) for l, h in self.heads if not (0 <= l < n_layers and 0 <= h < n_heads)]
        if bad:
            raise InputError(f"Heads {bad} are outside the model ({n_layers} layers x {n_heads} query heads).")

    def hooks(self, model: AnyModel, context: ForwardContext) -> list[tuple[str, HookFn]]:
        n_heads = model.cfg.n_heads
        by_layer: dict[int, list[int]] = {}
        for layer, head in self.heads:
            by_layer.setdefault(layer, []).append(head)
        hooks = []
        for layer, heads in sorted(by_layer.items()):
            factor = torch.ones(n_heads, dtype=model.cfg.dtype, device=model.cfg.device)
            factor[heads] = self.scale

            def scale_heads(z: Tensor, hook, factor=factor) -> Tensor:  # z: [batch, pos, n_heads, d_head]
                return z * factor[:, None]

            hooks.append((f"blocks.{layer}.attn.hook_z", scale_heads))
        return hooks

    def describe(self) -> dict[str, Any]:
        return {
            "kind": HEAD_SCALING_RESULT,
            "heads": [list(h) for h in self.heads],
            "scale": self.scale,
            "hook": "blocks.{layer}.attn.hook_z",
        }

    @classmethod
    def from_description(cls, description: dict[str, Any]) -> "HeadScaling":
        """Inverse of :meth:`describe`."""
        if description.get("kind") != HEAD_SCALING_RESULT:
            raise InputError(f"Not a head-scaling description: kind {description.get('kind')!r}.")
        return cls(tuple(tuple(h) for h in description["heads"]), float(description["scale"]))

    def state(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """Nothing beyond :meth:`describe` (see :func:`lens_bias.interventions.save_intervention`)."""
        return {}, {}

    @classmethod
    def from_state(
        cls, description: dict[str, Any], config: dict[str, Any], tensors: dict[str, Tensor]
    ) -> "HeadScaling":
        return cls.from_description(description)
