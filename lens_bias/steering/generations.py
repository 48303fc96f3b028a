"""Open-ended generations under a steering vector at a few multipliers.

:func:`steered_generations` completes the same chat prompts greedily with ``multiplier x vector`` added at one
layer from the end of the instruction on, per multiplier (0: unsteered), for offline scoring
(:mod:`lens_bias.metrics.generations`).
"""

from __future__ import annotations

from collections.abc import Sequence

from lens_bias.directions import SteeringVector
from lens_bias.forward.generation import generate
from lens_bias.interventions import AddVector
from lens_bias.models import AnyModel
from lens_bias.prompts import ChatTemplate


def steered_generations(
    model: AnyModel,
    template: ChatTemplate,
    vector: SteeringVector,
    layer: int,
    prompts: Sequence[str],
    multipliers: Sequence[float],
    *,
    max_new_tokens: int,
    label: str,
) -> dict[str, list[str]]:
    """Per multiplier (keyed by ``str(multiplier)``), the greedy completion text of every prompt (one batch of
    all prompts; progress bars labelled ``"{label} x{multiplier}"``)."""
    texts = {}
    for multiplier in multipliers:
        steer = [AddVector(vector, multiplier, [layer])] if multiplier else []
        generations = generate(
            model,
            template,
            prompts,
            interventions=steer,
            batch_size=max(1, len(prompts)),
            max_new_tokens=max_new_tokens,
            progress=f"{label} x{multiplier}",
        )
        texts[str(multiplier)] = [g.text for g in generations]
    return texts
