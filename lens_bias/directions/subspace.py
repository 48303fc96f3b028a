"""Per-layer orthonormal bases of a contrast's paired differences: a plain type that interventions edit with
(:class:`lens_bias.interventions.SubspaceEdit`) and direction methods build (SVD, CCS in :mod:`lens_bias.steering`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jaxtyping import Float
from torch import Tensor

from lens_bias.forward.hooks import ResidHook


@dataclass
class Subspace:
    """Per-layer orthonormal bases ``{layer: [k_layer, d_model]}`` of the paired differences, keeping
    the top right-singular vectors that explain ``variance`` of their total variance (self-alignment by
    representation editing). Signs are fixed so the mean difference projects positive on each."""

    bases: dict[int, Float[Tensor, "_k d_model"]]
    hook: ResidHook
    variance: float
    provenance: dict[str, Any] = field(default_factory=dict)

    def state(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """``({"layers", "hook", "variance", "provenance"}, {"basis.{layer}": [k, d_model]})``, as saved
        inside a saved :class:`lens_bias.interventions.SubspaceEdit`."""
        meta = {"layers": list(self.bases), "hook": self.hook, "variance": self.variance, "provenance": self.provenance}
        return meta, {f"basis.{layer}": basis for layer, basis in self.bases.items()}

    @classmethod
    def from_state(cls, meta: dict[str, Any], tensors: dict[str, Tensor]) -> "Subspace":
        """Inverse of :meth:`state`."""
        return cls(
            {int(layer): tensors[f"basis.{layer}"] for layer in meta["layers"]},
            meta["hook"],
            float(meta["variance"]),
            meta["provenance"],
        )
