"""Residual-stream edits along steering directions: add a vector, project it out, edit a subspace.

:class:`AddVector` adds ``multiplier x vector`` at chosen layers at every position from a named position on
(``instruction_end`` for chat prompts: the last instruction token and every answer token, including each
token generated with the KV cache) or at all positions; :class:`ProjectOut` removes the direction;
:class:`SubspaceEdit` applies the self-alignment edit rules with an SVD subspace. All are
:class:`lens_bias.interventions.Intervention` s, so every readout runs under them, and all save and load
through :func:`lens_bias.interventions.save_intervention` / :func:`~lens_bias.interventions.load_intervention`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from lens_bias.errors import InputError
from lens_bias.interventions.hooks import ForwardContext, HookFn, residual_hook_name
from lens_bias.interventions.saved import register
from lens_bias.models import AnyModel, check_layers

if TYPE_CHECKING:  # lens_bias.steering imports this module, so its types are imported where they are built
    from lens_bias.steering.build import Subspace
    from lens_bias.steering.vector import SteeringVector

ADD_VECTOR_RESULT = "add_vector"
PROJECT_OUT_RESULT = "project_out"
SUBSPACE_EDIT_RESULT = "subspace_edit"


def _vector_from_state(meta: dict[str, Any], tensors: dict[str, Tensor]) -> "SteeringVector":
    from lens_bias.steering.vector import SteeringVector

    return SteeringVector.from_state(meta, tensors)


def _position_mask(context: ForwardContext, seq_len: int, start: str | None, device) -> Tensor | None:
    """``[batch, pos, 1]`` mask of absolute positions at or after ``context.batch.positions[start]``
    (None = every position)."""
    if start is None:
        return None
    if start not in context.batch.positions:
        raise InputError(
            f"Steering starts at {start!r}, but the batch has positions "
            f"{sorted(context.batch.positions)}; use start=None to steer every position."
        )
    absolute = torch.arange(seq_len, device=device) + context.offset
    first = context.batch.positions[start].to(device)
    return (absolute[None, :] >= first[:, None])[..., None]


def _check_width(model: AnyModel, what: str, width: int) -> None:
    """``what`` (e.g. ``"Vector 'gender'"``) must have the model's residual width."""
    if width != model.cfg.d_model:
        raise InputError(
            f"{what} has width {width}, but the model {model.cfg.model_name} has d_model {model.cfg.d_model}: "
            "it was built on another model; build it on this one."
        )


def _check_vector(model: AnyModel, vector: SteeringVector, layers: Sequence[int] | None) -> None:
    """The vector's width is the model's and it has a direction at every layer it is applied at, all inside
    the model."""
    _check_width(model, f"Vector {vector.name!r}", int(vector.directions.shape[-1]))
    for layer in check_layers(model, list(layers) if layers is not None else list(vector.layers)):
        vector.at(layer)


@register(ADD_VECTOR_RESULT)
@dataclass
class AddVector:
    """Add ``multiplier x vector`` to the residual stream at ``layers`` (default: every layer of the
    vector), at every position from ``start`` on (``"instruction_end"``: the last token of the
    instruction and everything after it, generated tokens included; ``None``: every position)."""

    vector: SteeringVector
    multiplier: float
    layers: Sequence[int] | None = None
    start: str | None = "instruction_end"

    def hooks(self, model: AnyModel, context: ForwardContext) -> list[tuple[str, HookFn]]:
        layers = check_layers(model, list(self.layers) if self.layers is not None else list(self.vector.layers))
        hooks = []
        for layer in layers:
            delta = (self.multiplier * self.vector.at(layer)).to(model.cfg.device, model.cfg.dtype)

            def add(activation: Tensor, hook, delta=delta) -> Tensor:
                mask = _position_mask(context, activation.shape[1], self.start, activation.device)
                return activation + (delta if mask is None else mask * delta)

            hooks.append((residual_hook_name(layer, self.vector.hook), add))
        return hooks

    def check(self, model: AnyModel) -> None:
        """The vector fits the model: its width is ``d_model``; it has a direction at each layer, in the model."""
        _check_vector(model, self.vector, self.layers)

    def describe(self) -> dict[str, Any]:
        layers = list(self.layers) if self.layers is not None else list(self.vector.layers)
        return {
            "kind": ADD_VECTOR_RESULT,
            "vector": self.vector.name,
            "multiplier": self.multiplier,
            "relative_multiplier": {layer: self.vector.relative_multiplier(self.multiplier, layer) for layer in layers},
            "layers": layers,
            "start": self.start,
            "hook": self.vector.hook,
        }

    def state(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """The vector (``config["vector"]``: name, layers, hook, provenance; tensors: directions, norms)."""
        meta, tensors = self.vector.state()
        return {"vector": meta}, tensors

    @classmethod
    def from_state(cls, description: dict[str, Any], config: dict[str, Any], tensors: dict[str, Tensor]) -> "AddVector":
        return cls(
            _vector_from_state(config["vector"], tensors),
            float(description["multiplier"]),
            list(description["layers"]),
            description["start"],
        )


@register(PROJECT_OUT_RESULT)
@dataclass
class ProjectOut:
    """Remove the vector's direction from the residual stream at ``layers``: ``x - (x . u) u`` with
    ``u`` the unit direction, at every position."""

    vector: SteeringVector
    layers: Sequence[int] | None = None

    def hooks(self, model: AnyModel, context: ForwardContext) -> list[tuple[str, HookFn]]:
        layers = check_layers(model, list(self.layers) if self.layers is not None else list(self.vector.layers))
        hooks = []
        for layer in layers:
            unit = self.vector.at(layer) / self.vector.at(layer).norm().clamp_min(1e-12)
            unit = unit.to(model.cfg.device, model.cfg.dtype)

            def project(activation: Tensor, hook, unit=unit) -> Tensor:
                return activation - (activation @ unit)[..., None] * unit

            hooks.append((residual_hook_name(layer, self.vector.hook), project))
        return hooks

    def check(self, model: AnyModel) -> None:
        """As :meth:`AddVector.check`."""
        _check_vector(model, self.vector, self.layers)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": PROJECT_OUT_RESULT,
            "vector": self.vector.name,
            "layers": list(self.layers or self.vector.layers),
        }

    def state(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """The vector, as for :meth:`AddVector.state`."""
        meta, tensors = self.vector.state()
        return {"vector": meta}, tensors

    @classmethod
    def from_state(
        cls, description: dict[str, Any], config: dict[str, Any], tensors: dict[str, Tensor]
    ) -> "ProjectOut":
        return cls(_vector_from_state(config["vector"], tensors), list(description["layers"]))


@register(SUBSPACE_EDIT_RESULT)
@dataclass
class SubspaceEdit:
    """The self-alignment edit with a :class:`lens_bias.steering.Subspace`: ``boost``:
    ``x + sum_v tanh(v.x) v``; ``remove``: ``x - sum_v relu(v.x) v`` (v unit basis vectors), at ``layers``
    and every position."""

    subspace: Subspace
    mode: Literal["boost", "remove"]
    layers: Sequence[int] | None = None

    def hooks(self, model: AnyModel, context: ForwardContext) -> list[tuple[str, HookFn]]:
        layers = check_layers(model, list(self.layers) if self.layers is not None else list(self.subspace.bases))
        hooks = []
        for layer in layers:
            basis = self.subspace.bases[layer].to(model.cfg.device, model.cfg.dtype)  # [k, d]

            def edit(activation: Tensor, hook, basis=basis) -> Tensor:
                coefficients = activation @ basis.T  # [batch, pos, k]
                if self.mode == "boost":
                    return activation + torch.tanh(coefficients) @ basis
                return activation - torch.relu(coefficients) @ basis

            hooks.append((residual_hook_name(layer, self.subspace.hook), edit))
        return hooks

    def check(self, model: AnyModel) -> None:
        """A known mode; a basis of width ``d_model`` at every edited layer, inside the model."""
        if self.mode not in ("boost", "remove"):
            raise InputError(f"mode must be 'boost' or 'remove', got {self.mode!r}.")
        for layer in check_layers(model, list(self.layers) if self.layers is not None else list(self.subspace.bases)):
            if layer not in self.subspace.bases:
                raise InputError(f"The subspace has no basis at layer {layer}; it has {sorted(self.subspace.bases)}.")
            _check_width(model, f"The subspace basis at layer {layer}", int(self.subspace.bases[layer].shape[-1]))

    def describe(self) -> dict[str, Any]:
        return {
            "kind": SUBSPACE_EDIT_RESULT,
            "mode": self.mode,
            "variance": self.subspace.variance,
            "dims": {layer: int(b.shape[0]) for layer, b in self.subspace.bases.items()},
        }

    def state(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """The subspace (``config["subspace"]``, tensors ``basis.{layer}``) and the edited ``layers``."""
        meta, tensors = self.subspace.state()
        return {"subspace": meta, "layers": list(self.layers) if self.layers is not None else None}, tensors

    @classmethod
    def from_state(
        cls, description: dict[str, Any], config: dict[str, Any], tensors: dict[str, Tensor]
    ) -> "SubspaceEdit":
        from lens_bias.steering.build import Subspace

        return cls(Subspace.from_state(config["subspace"], tensors), description["mode"], config["layers"])
