"""The steering-vector type: one direction per layer with its residual norms and provenance, saved as a Result.

A :class:`SteeringVector` holds one direction per layer (``[n_layers, d_model]``, residual-stream units)
with the provenance of how it was made (model record, hook, positions, template, method, dataset and its
fingerprint, seed) and the mean residual norm at each layer, so multipliers can be read relative to the
stream they are added to (norms grow ~20x from the first to the last layer of the embedded model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from lens_bias.errors import InputError
from lens_bias.forward.hooks import ResidHook
from lens_bias.provenance import Result

STEERING_VECTOR_RESULT = "steering_vector"


@dataclass
class SteeringVector:
    """One steering direction per layer.

    ``directions``: ``[n_layers, d_model]`` in residual-stream units, row ``i`` for ``layers[i]``.
    ``residual_norms``: ``[n_layers]`` mean L2 norm of the residual stream the directions were read from
    (both sides of the contrast), for relative multipliers.
    ``provenance``: how the vector was made (see :func:`lens_bias.steering.build_vector`); equality of
    everything but the model is what cross-checkpoint comparisons require.
    """

    name: str
    layers: tuple[int, ...]
    directions: Float[Tensor, "n_layers d_model"]
    residual_norms: Float[Tensor, " n_layers"]
    hook: ResidHook = "resid_post"
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.layers = tuple(int(layer) for layer in self.layers)
        if self.directions.ndim != 2 or self.directions.shape[0] != len(self.layers):
            raise InputError(
                f"directions must be [n_layers={len(self.layers)}, d_model], got {tuple(self.directions.shape)}."
            )
        if self.residual_norms.shape != (len(self.layers),):
            raise InputError(f"residual_norms must be [{len(self.layers)}], got {tuple(self.residual_norms.shape)}.")
        if not (bool(torch.isfinite(self.directions).all()) and bool(torch.isfinite(self.residual_norms).all())):
            raise InputError(
                f"Vector {self.name!r} has NaN or infinite values: refit it (a saved file with them is damaged)."
            )

    def at(self, layer: int) -> Float[Tensor, " d_model"]:
        """The direction at ``layer``."""
        if layer not in self.layers:
            raise InputError(f"Vector {self.name!r} has no direction at layer {layer}; it has {list(self.layers)}.")
        return self.directions[self.layers.index(layer)]

    def norms(self) -> Float[Tensor, " n_layers"]:
        """L2 norm of the direction at each layer."""
        return self.directions.norm(dim=-1)

    def relative_multiplier(self, multiplier: float, layer: int) -> float:
        """``multiplier x |v_layer| / mean |residual_layer|``: the size of the addition as a share of the
        residual stream's typical norm at that layer."""
        i = self.layers.index(layer)
        return float(multiplier * self.directions[i].norm() / self.residual_norms[i])

    def _derived(self, name: str, directions: Tensor, operation: str) -> "SteeringVector":
        provenance = {**self.provenance, "operations": [*self.provenance.get("operations", []), operation]}
        return SteeringVector(name, self.layers, directions, self.residual_norms.clone(), self.hook, provenance)

    def __mul__(self, scale: float) -> "SteeringVector":
        return self._derived(f"{scale}*{self.name}", self.directions * scale, f"scale {scale}")

    __rmul__ = __mul__

    def __neg__(self) -> "SteeringVector":
        return self * -1.0

    def __add__(self, other: "SteeringVector") -> "SteeringVector":
        self._check_compatible(other)
        return self._derived(f"{self.name}+{other.name}", self.directions + other.directions, f"add {other.name}")

    def __sub__(self, other: "SteeringVector") -> "SteeringVector":
        return self + (-other)

    def normalized(self, norms: float | Tensor = 1.0) -> "SteeringVector":
        """The directions rescaled to ``norms`` (a number, or ``[n_layers]`` per layer)."""
        target = torch.as_tensor(norms, dtype=self.directions.dtype)
        target = target.expand(len(self.layers)) if target.ndim == 0 else target
        scaled = self.directions / self.norms()[:, None].clamp_min(1e-12) * target[:, None]
        return self._derived(self.name, scaled, "normalize")

    def _check_compatible(self, other: "SteeringVector") -> None:
        if self.layers != other.layers or self.hook != other.hook or self.directions.shape != other.directions.shape:
            raise InputError(
                f"Vectors {self.name!r} and {other.name!r} differ in layers/hook/shape: "
                f"{self.layers}/{self.hook} vs {other.layers}/{other.hook}."
            )

    def state(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """``({"name", "layers", "hook", "provenance"}, {"directions", "residual_norms"})``: the JSON-able
        part and the tensors, as saved (here and inside saved interventions that carry a vector)."""
        meta = {"name": self.name, "layers": list(self.layers), "hook": self.hook, "provenance": self.provenance}
        return meta, {"directions": self.directions, "residual_norms": self.residual_norms}

    @classmethod
    def from_state(cls, meta: dict[str, Any], tensors: dict[str, Tensor]) -> "SteeringVector":
        """Inverse of :meth:`state`."""
        return cls(
            meta["name"],
            tuple(meta["layers"]),
            tensors["directions"],
            tensors["residual_norms"],
            meta["hook"],
            meta["provenance"],
        )

    def save(self, path_stem: str | Path) -> Path:
        """Write the vector as a :class:`lens_bias.provenance.Result`: ``{stem}.json`` (name, layers, hook
        and provenance under ``config["vector"]``) and ``{stem}.safetensors`` (directions, norms)."""
        meta, tensors = self.state()
        return Result(
            STEERING_VECTOR_RESULT, values={}, config={"vector": meta}, provenance=self.provenance, tensors=tensors
        ).save(path_stem)

    @classmethod
    def load(cls, path: str | Path) -> "SteeringVector":
        """Read a vector written by :meth:`save` (the JSON path or the stem)."""
        result = Result.load(path)
        if result.name != STEERING_VECTOR_RESULT:
            raise InputError(f"{path} is a saved {result.name!r}, not a steering vector.")
        return cls.from_state(result.config["vector"], result.tensors)


def mean_norm_across(vectors: Sequence[SteeringVector]) -> Float[Tensor, " n_layers"]:
    """Per-layer mean of the vectors' norms: contrastive activation addition rescales every behaviour's
    vector to this, so behaviours are compared at equal strength (``v.normalized(mean_norm_across(vs))``)."""
    for other in vectors[1:]:
        vectors[0]._check_compatible(other)
    return torch.stack([v.norms() for v in vectors]).mean(0)
