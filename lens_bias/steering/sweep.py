"""Steer over a grid of layers x multipliers, and fix a vector's sign by measurement.

:func:`sweep` evaluates a readout under :class:`lens_bias.interventions.AddVector` at every layer x
multiplier, each setting a resumable cell (:mod:`lens_bias.cells`) that any executor can run;
:func:`orient` flips a vector whose positive multiplier moves a measure the wrong way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from lens_bias.cells import Arrays, CellStore, arrays_record, interventions_key, record_arrays
from lens_bias.directions import SteeringVector
from lens_bias.interventions import AddVector
from lens_bias.models import AnyModel

#: The number :func:`orient` fixes a sign by: a scalar read under some steering (e.g. the mean preference
#: for the positive side of training pairs, nats).
OrientationMeasure = Callable[[list[AddVector]], float]
#: A sweep's readout: ``evaluate(model, interventions) -> JSON-ready values`` of one setting.
Evaluate = Callable[[AnyModel, list[AddVector]], dict[str, Any]]


def sweep(
    model: AnyModel,
    vector: SteeringVector,
    layers: Sequence[int],
    multipliers: Sequence[float],
    evaluate: Evaluate,
    *,
    cells: CellStore | None = None,
    readout: dict[str, Any] | None = None,
    start: str | None = "instruction_end",
    progress: bool | str = False,
) -> list[dict[str, Any]]:
    """Evaluate ``evaluate(model, interventions)`` for every layer x multiplier (multiplier 0 runs unsteered).

    Each setting is a cell of ``cells`` (default: kept nowhere, run here), keyed by ``readout`` (what
    ``evaluate`` reads and on which data: give its name and data fingerprint, so two readouts never share
    cells) and the setting's intervention (the vector's values, multiplier, layer, start), so an
    interrupted sweep resumes and ``--executor ray`` spreads the settings over workers. ``evaluate`` must
    take the model as its argument and return JSON-ready values.

    Returns one row per setting: ``{"layer", "multiplier", "relative_multiplier", **evaluate(...)}``, where
    ``relative_multiplier`` is the added norm as a share of the layer's mean residual norm."""
    store = cells if cells is not None else CellStore(None)
    settings = [(layer, m) for layer in layers for m in multipliers]
    steers = [[AddVector(vector, m, [layer], start=start)] if m else [] for layer, m in settings]
    keys = [{"readout": readout or {}, "interventions": interventions_key(steer)} for steer in steers]
    desc = progress if isinstance(progress, str) else "sweep"
    done = store.map(keys, steers, partial(_evaluate_cell, evaluate), model=model, desc=desc, progress=bool(progress))
    return [
        {
            "layer": layer,
            "multiplier": m,
            "relative_multiplier": vector.relative_multiplier(m, layer),
            **arrays_record(arrays),
        }
        for (layer, m), arrays in zip(settings, done)
    ]


def _evaluate_cell(evaluate: Evaluate, model: AnyModel, steer: list[AddVector]) -> Arrays:
    return record_arrays(evaluate(model, steer))


def orient(
    vector: SteeringVector,
    measure: OrientationMeasure,
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
