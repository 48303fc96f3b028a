"""Residual-stream edits along steering directions: add a vector, project it out, edit a subspace.

:class:`AddVector` adds ``multiplier x vector`` at chosen layers at every position from a named position on
(``instruction_end`` for chat prompts: the last instruction token and every answer token, including each
token generated with the KV cache) or at all positions; :class:`ProjectOut` removes the direction;
:class:`SubspaceEdit` applies the self-alignment (AlignEZ) edit rules with an SVD or CCS subspace, with an edit
strength and optional per-query layer selection. All are
:class:`lens_bias.interventions.Intervention` s, so every readout runs under them, and all save and load
through :func:`lens_bias.interventions.save_intervention` / :func:`~lens_bias.interventions.load_intervention`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from lens_bias.directions import SteeringVector, Subspace
from lens_bias.errors import InputError
from lens_bias.forward.activations import extract
from lens_bias.forward.hooks import ForwardContext, Hookable, HookFn, residual_hook_name
from lens_bias.interventions.saved import register
from lens_bias.models import AnyModel, check_layers
from lens_bias.prompts import PromptBatch

ADD_VECTOR_RESULT = "add_vector"
PROJECT_OUT_RESULT = "project_out"
SUBSPACE_EDIT_RESULT = "subspace_edit"


def _vector_from_state(meta: dict[str, Any], tensors: dict[str, Tensor]) -> SteeringVector:
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
class AddVector(Hookable):
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
class ProjectOut(Hookable):
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


def _right_padded(batch: PromptBatch) -> PromptBatch:
    """``batch`` with every row's real tokens moved to the start (right padding, id 0 after them) and its
    positions shifted with them; a right-padded batch comes back as is. Each row's real tokens are the
    ``lengths`` tokens ending at ``positions["last"]`` (so left-padded generation batches qualify)."""
    first = batch.positions["last"] - batch.lengths + 1
    if not bool((first == 0).all()):
        tokens = torch.zeros_like(batch.tokens)
        for row, (start, n) in enumerate(zip(first.tolist(), batch.lengths.tolist())):
            tokens[row, :n] = batch.tokens[row, start : start + n]
        batch = PromptBatch(
            tokens[:, : int(batch.lengths.max())],
            batch.lengths,
            {name: index - first for name, index in batch.positions.items()},
            batch.texts,
            batch.meta,
        )
    return batch


@register(SUBSPACE_EDIT_RESULT)
@dataclass
class SubspaceEdit(Hookable):
    """The self-alignment (AlignEZ) edit with a :class:`lens_bias.steering.Subspace`, at every position.

    ``boost``: ``x + strength * sum_v tanh(v.x) v``; ``remove``: ``x - sum_v relu(v.x) v`` (v the layer's
    unit basis rows, x the residual at the subspace's hook). Each ``tanh`` term is at most 1 in size, so at
    ``strength`` 1 the boost moves a residual of norm 40-700 (SmolLM2-135M) by at most ``sqrt(k)``;
    ``strength`` is the reference code's ``w_s``. ``remove`` takes no strength: it already removes the
    whole positive component along each v (a larger factor would flip the sign, a smaller one leave part).

    ``layers``: the candidate layers (default every layer of the subspace). ``top_layers``: when set, each
    row (query) is edited only at the ``top_layers`` candidate layers whose subspace its *unedited*
    residual aligns with most, alignment = ``|B_l x| / |x|`` (:meth:`alignment`: the norm of x's
    projection on the layer's basis over the norm of x, i.e. the cosine between x and that projection),
    read at the position ``select_at`` (default ``"instruction_end"``: the prompt's last token before the
    answer starts, the same token in a prompt-only and a prompt + answer batch; ``"last"`` for raw-text
    batches). Ties go to the earlier layer.

    How the selection is made: :meth:`hooks` runs one unedited forward of ``context.batch`` (up to the
    deepest candidate layer, a right-padded copy so left padding changes nothing) before any hook of this
    call is attached, so it sees hooks attached earlier but not those of interventions applied together
    with this one. The selection is kept for the forwards that continue that batch from the KV cache
    (``context.offset > 0``: generated tokens); a continuation batch with other rows maps each row to its
    prompt row through ``batch.meta["prompt_rows"]``.
    """

    subspace: Subspace
    mode: Literal["boost", "remove"]
    layers: Sequence[int] | None = None
    strength: float = 1.0
    top_layers: int | None = None
    select_at: str = "instruction_end"

    def candidate_layers(self) -> list[int]:
        """The layers the edit may act at: ``layers``, or every layer of the subspace."""
        return list(self.layers) if self.layers is not None else list(self.subspace.bases)

    def alignment(self, model: AnyModel, batch: PromptBatch) -> Float[Tensor, "batch n_layers"]:
        """Per row and candidate layer, ``|B_l x| / |x|`` in [0, 1]: x the unedited residual (no
        intervention) at the subspace's hook at ``batch.positions[select_at]``, B_l the layer's basis."""
        layers = check_layers(model, self.candidate_layers())
        if self.select_at not in batch.positions:
            raise InputError(
                f"select_at={self.select_at!r} is not a position of the batch (it has {sorted(batch.positions)}): "
                "pass select_at='last' for raw-text prompts."
            )
        right = _right_padded(batch.to("cpu"))
        x = extract(model, right, layers, position=self.select_at, hook=self.subspace.hook).float()
        bases = [self.subspace.bases[layer].float() for layer in layers]
        projected = torch.stack([(x[:, j] @ basis.T).norm(dim=-1) for j, basis in enumerate(bases)], dim=1)
        return projected / x.norm(dim=-1).clamp_min(1e-12)

    def select(self, model: AnyModel, batch: PromptBatch) -> Bool[Tensor, "batch n_layers"]:
        """Per row, True at the ``top_layers`` candidate layers (order of :meth:`candidate_layers`) with the
        highest :meth:`alignment`; every layer when ``top_layers`` is None."""
        if self.top_layers is None:
            return torch.ones(len(batch), len(self.candidate_layers()), dtype=torch.bool)
        alignment = self.alignment(model, batch)
        order = alignment.argsort(dim=1, descending=True, stable=True)[:, : self.top_layers]
        return torch.zeros_like(alignment, dtype=torch.bool).scatter_(1, order, True)

    def hooks(self, model: AnyModel, context: ForwardContext) -> list[tuple[str, HookFn]]:
        layers = check_layers(model, self.candidate_layers())
        selected: Tensor | None = None
        if self.top_layers is not None:
            if context.offset != 0:
                raise InputError(
                    "SubspaceEdit with top_layers selects its layers on the prompt forward: apply it before the "
                    f"first forward of the batch (context.offset is {context.offset}, not 0)."
                )
            selected = self.select(model, context.batch).to(model.cfg.device)
        prompt_batch = context.batch

        def rows(column: int) -> Tensor:
            """``[batch, 1, 1]``: 1 for the rows of this forward edited at candidate layer ``column``."""
            assert selected is not None
            if context.batch is prompt_batch:
                chosen = selected
            elif context.offset > 0 and "prompt_rows" in context.batch.meta:
                chosen = selected[torch.as_tensor(context.batch.meta["prompt_rows"], device=selected.device)]
            else:
                raise InputError(
                    "SubspaceEdit with top_layers selected its layers per row of the prompt batch, but this forward "
                    "runs another batch without meta['prompt_rows'] (the prompt row of each row): apply the "
                    "intervention anew for a new batch."
                )
            return chosen[:, column, None, None]

        hooks = []
        for column, layer in enumerate(layers):
            basis = self.subspace.bases[layer].to(model.cfg.device, model.cfg.dtype)  # [k, d]

            def edit(activation: Tensor, hook, basis=basis, column=column) -> Tensor:
                coefficients = activation @ basis.T  # [batch, pos, k]
                if self.mode == "boost":
                    delta = self.strength * torch.tanh(coefficients) @ basis
                else:
                    delta = -torch.relu(coefficients) @ basis
                if selected is not None:
                    delta = delta * rows(column).to(delta.dtype)
                return activation + delta

            hooks.append((residual_hook_name(layer, self.subspace.hook), edit))
        return hooks

    def check(self, model: AnyModel) -> None:
        """A known mode; a finite strength (1 for ``remove``); ``top_layers`` a whole number from 1 to the
        number of candidate layers; a basis of width ``d_model`` at every candidate layer, inside the model."""
        if self.mode not in ("boost", "remove"):
            raise InputError(f"mode must be 'boost' or 'remove', got {self.mode!r}.")
        if not math.isfinite(self.strength):
            raise InputError(f"strength must be a finite number, got {self.strength!r}.")
        if self.mode == "remove" and self.strength != 1.0:
            raise InputError(
                f"strength={self.strength} applies to mode='boost' only: 'remove' subtracts the whole positive "
                "component (x - sum relu(v.x) v); leave strength at 1."
            )
        layers = check_layers(model, self.candidate_layers())
        if self.top_layers is not None and (
            isinstance(self.top_layers, bool)
            or int(self.top_layers) != self.top_layers
            or not 1 <= self.top_layers <= len(layers)
        ):
            raise InputError(
                f"top_layers must be a whole number from 1 to the {len(layers)} candidate layers {layers}, "
                f"got {self.top_layers!r} (None edits every candidate layer)."
            )
        for layer in layers:
            if layer not in self.subspace.bases:
                raise InputError(f"The subspace has no basis at layer {layer}; it has {sorted(self.subspace.bases)}.")
            _check_width(model, f"The subspace basis at layer {layer}", int(self.subspace.bases[layer].shape[-1]))

    def describe(self) -> dict[str, Any]:
        return {
            "kind": SUBSPACE_EDIT_RESULT,
            "mode": self.mode,
            "method": self.subspace.provenance.get("method"),
            "variance": self.subspace.variance,
            "dims": {layer: int(b.shape[0]) for layer, b in self.subspace.bases.items()},
            "strength": self.strength,
            "top_layers": self.top_layers,
            "select_at": self.select_at,
        }

    def state(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """The subspace (``config["subspace"]``, tensors ``basis.{layer}``) and the candidate ``layers``."""
        meta, tensors = self.subspace.state()
        return {"subspace": meta, "layers": list(self.layers) if self.layers is not None else None}, tensors

    @classmethod
    def from_state(
        cls, description: dict[str, Any], config: dict[str, Any], tensors: dict[str, Tensor]
    ) -> "SubspaceEdit":
        """Inverse of :meth:`describe` + :meth:`state`; files saved before ``strength`` / ``top_layers`` /
        ``select_at`` existed load with their defaults (1, None, ``"instruction_end"``)."""
        return cls(
            Subspace.from_state(config["subspace"], tensors),
            description["mode"],
            config["layers"],
            float(description.get("strength", 1.0)),
            description.get("top_layers"),
            description.get("select_at", "instruction_end"),
        )
