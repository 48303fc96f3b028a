"""The steering study's refusal vector in one call: refusal vs compliance answers, oriented by refusal propensity.

:func:`refusal_vector` fits a mean-difference vector on the ``"refusal"`` contrast
(:func:`lens_bias.data.contrast_split`: harmful requests answered with a refusal vs a compliance opening,
rendered with a chat template, split by topic), picks the layer by held-out separability and fixes the sign
so that a positive multiplier raises the refusal propensity (:func:`lens_bias.forward.readouts.refusal_propensity`)
of held-out harmful requests, as ``experiments.steering`` does. Apply it with
``AddVector(fitted.vector, multiplier, [fitted.layer])`` (added from the end of the instruction on).
"""

from __future__ import annotations

from collections.abc import Sequence

from transformer_lens import HookedTransformer

from lens_bias.data import contrast_split, split_by_target
from lens_bias.data.refusal import compliance_openers, refusal_openers, refusal_requests
from lens_bias.forward.readouts import refusal_propensity
from lens_bias.interventions import Intervention
from lens_bias.prompts import ChatTemplate, template_for
from lens_bias.steering.fit import FittedVector, fit_vector

N_ORIENT_REQUESTS = 8
"""Held-out harmful requests the sign is measured on (as in ``experiments.steering``)."""


def refusal_vector(
    model: HookedTransformer,
    layers: Sequence[int],
    *,
    template: ChatTemplate | None = None,
    n_train: int | None = 100,
    n_test: int | None = 40,
    orient_multiplier: float = 0.5,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool | str = False,
) -> FittedVector:
    """The refusal vector at ``layers``, its best held-out layer, oriented toward refusing.

    ``template``: the chat template the contrast is rendered with (default ``template_for(model)``);
    ``n_train`` / ``n_test``: refusal pairs to fit on / to measure the layers on (None: all);
    ``orient_multiplier``: the raw multiplier whose ``+/-`` the sign is measured with, on the first
    :data:`N_ORIENT_REQUESTS` harmful requests of the held-out topics (split with ``seed``, as the study does).
    Defaults are the steering study's.
    """
    template = template or template_for(model)
    split = contrast_split("refusal", n_train=n_train, n_test=n_test, seed=seed)
    _, held_out = split_by_target(refusal_requests(), 0.3, seed)
    harmful = [request.text for request in held_out if request.harmful][:N_ORIENT_REQUESTS]

    def propensity(steer: Sequence[Intervention]) -> float:
        scores = refusal_propensity(
            model,
            template,
            harmful,
            refusal_openers(),
            compliance_openers(),
            interventions=steer,
            batch_size=batch_size,
        )
        return float(scores.mean())

    return fit_vector(
        model,
        split,
        layers,
        name="refusal",
        template=template,
        seed=seed,
        orient_by=propensity,
        orient_multiplier=orient_multiplier,
        batch_size=batch_size,
        progress=progress,
    )
