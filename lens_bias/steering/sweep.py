"""Steer over a grid of layers x multipliers, and fix a vector's sign by measurement.

:func:`sweep` evaluates a readout under :class:`lens_bias.interventions.AddVector` at every layer x
multiplier; :func:`orient` flips a vector whose positive multiplier moves a measure the wrong way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from tqdm.auto import tqdm

from lens_bias.interventions import AddVector
from lens_bias.steering.vector import SteeringVector

#: A number read under some steering (e.g. the mean preference for the positive side of training pairs).
Measure = Callable[[list[AddVector]], float]


def sweep(
    vector: SteeringVector,
    layers: Sequence[int],
    multipliers: Sequence[float],
    evaluate: Callable[[list[AddVector]], dict[str, Any]],
    *,
    start: str | None = "instruction_end",
    progress: bool | str = False,
) -> list[dict[str, Any]]:
    """Evaluate ``evaluate(interventions)`` for every layer x multiplier (multiplier 0 runs unsteered).

    Returns one row per setting: ``{"layer", "multiplier", "relative_multiplier", **evaluate(...)}``, where
    ``relative_multiplier`` is the added norm as a share of the layer's mean residual norm."""
    settings = [(layer, m) for layer in layers for m in multipliers]
    rows = []
    for layer, multiplier in tqdm(
        settings, desc=progress if isinstance(progress, str) else "sweep", disable=not progress
    ):
        interventions = [AddVector(vector, multiplier, [layer], start=start)] if multiplier else []
        rows.append(
            {
                "layer": layer,
                "multiplier": multiplier,
                "relative_multiplier": vector.relative_multiplier(multiplier, layer),
                **evaluate(interventions),
            }
        )
    return rows


def orient(
    vector: SteeringVector,
    measure: Measure,
    layer: int,
    multiplier: float,
    *,
    start: str | None = "instruction_end",
) -> tuple[SteeringVector, dict[str, Any]]:
    """Fix the sign by measurement: if adding ``+multiplier x vector`` at ``layer`` lowers ``measure``
    (e.g. the mean preference for the positive side on training pairs) relative to ``-multiplier``, the
    vector is flipped, so a positive multiplier moves toward the side the vector is named for.

    Returns the (possibly flipped) vector and a record of the calibration for provenance."""
    up = measure([AddVector(vector, multiplier, [layer], start=start)])
    down = measure([AddVector(vector, -multiplier, [layer], start=start)])
    flipped = up < down
    record = {"layer": layer, "multiplier": multiplier, "measure_plus": up, "measure_minus": down, "flipped": flipped}
    out = -vector if flipped else vector
    out.provenance = {**out.provenance, "orientation": record}
    out.name = vector.name
    return out, record
