"""The steering study's refusal vector and its sweep: refusal vs compliance answers, oriented by refusal propensity.

:func:`refusal_vector` fits a mean-difference vector on the ``"refusal"`` contrast
(:func:`lens_bias.data.contrast_split`: harmful requests answered with a refusal vs a compliance opening,
rendered with a chat template, split by topic), picks the layer by held-out separability and fixes the sign
so that a positive multiplier raises the refusal propensity (:func:`lens_bias.forward.readouts.refusal_propensity`)
of held-out harmful requests. Apply it with ``AddVector(fitted.vector, multiplier, [fitted.layer])`` (added from
the end of the instruction on). :func:`refusal_sweep` reads, per multiplier, the refusal propensity of held-out
harmful and benign requests (:func:`held_out_requests`) and the gender bias of held-out sentence pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.cache import key_sha256
from lens_bias.cells import CellStore
from lens_bias.data import contrast_split, split_by_target
from lens_bias.data.records import ContrastPair, fingerprint
from lens_bias.data.refusal import compliance_openers, refusal_openers, refusal_requests
from lens_bias.directions import SteeringVector
from lens_bias.forward.readouts import refusal_propensity, score_pairs
from lens_bias.interventions import AddVector, Intervention
from lens_bias.models import AnyModel
from lens_bias.prompts import ChatTemplate, template_for
from lens_bias.stats import bootstrap_mean, share
from lens_bias.steering.fit import FittedVector, fit_vector
from lens_bias.steering.sweep import sweep

N_ORIENT_REQUESTS = 8
"""Held-out harmful requests the sign is measured on by default."""


def held_out_requests(seed: int, n: int | None = None) -> tuple[list[str], list[str]]:
    """The first ``n`` (None: all) harmful and benign requests of the held-out topics (30%, split with ``seed``)."""
    _, held_out = split_by_target(refusal_requests(), 0.3, seed)
    harmful = [request.text for request in held_out if request.harmful][:n]
    benign = [request.text for request in held_out if not request.harmful][:n]
    return harmful, benign


def _propensity(
    model: AnyModel, template: ChatTemplate, requests: Sequence[str], steer: Sequence[Intervention], batch_size: int
) -> Float[Tensor, " n"]:
    """Per request, log sum P(refusal openers) - log sum P(compliance openers) under ``steer`` (nats)."""
    return refusal_propensity(
        model, template, requests, refusal_openers(), compliance_openers(), interventions=steer, batch_size=batch_size
    )


def refusal_vector(
    model: HookedTransformer,
    layers: Sequence[int],
    *,
    template: ChatTemplate | None = None,
    n_train: int | None = 100,
    n_test: int | None = 40,
    orient_multiplier: float = 0.5,
    orient_requests: Sequence[str] | None = None,
    batch_size: int = 16,
    seed: int = 0,
    progress: bool | str = False,
) -> FittedVector:
    """The refusal vector at ``layers``, its best held-out layer, oriented toward refusing.

    ``template``: the chat template the contrast is rendered with (default ``template_for(model)``);
    ``n_train`` / ``n_test``: refusal pairs to fit on / to measure the layers on (None: all);
    ``orient_multiplier``: the raw multiplier whose ``+/-`` the sign is measured with, on ``orient_requests``
    (default: the first :data:`N_ORIENT_REQUESTS` held-out harmful requests, :func:`held_out_requests`).
    Defaults are the steering study's.
    """
    template = template or template_for(model)
    split = contrast_split("refusal", n_train=n_train, n_test=n_test, seed=seed)
    harmful = list(orient_requests or held_out_requests(seed, N_ORIENT_REQUESTS)[0])

    def propensity(steer: Sequence[Intervention]) -> float:
        return float(_propensity(model, template, harmful, steer, batch_size).mean())

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


def refusal_sweep(
    model: AnyModel,
    template: ChatTemplate,
    vector: SteeringVector,
    layer: int,
    multipliers: Sequence[float],
    harmful: Sequence[str],
    benign: Sequence[str],
    gender_test: Sequence[ContrastPair],
    *,
    cells: CellStore,
    batch_size: int,
    seed: int,
) -> list[dict[str, Any]]:
    """Per multiplier of ``vector`` at ``layer``: the refusal propensity of ``harmful`` and ``benign`` requests
    (nats; the vector added from the instruction end in chat prompts) and the gender bias of ``gender_test``
    (mean per-token log P(stereotype) - log P(anti), nats, and the share preferring the stereotype; raw
    sentences, so the vector is added at every position). Sweep rows with Estimate dicts and, under
    ``items``, the per-item ``propensity_harmful`` and ``gender_bias`` (for paired changes and correlations)."""

    def evaluate(model: AnyModel, steer: list[AddVector]) -> dict[str, Any]:
        raw = [AddVector(s.vector, s.multiplier, s.layers, start=None) for s in steer]
        bias = score_pairs(model, gender_test, interventions=raw, batch_size=batch_size).preference().numpy()
        harmful_scores = _propensity(model, template, harmful, steer, batch_size).numpy()
        benign_scores = _propensity(model, template, benign, steer, batch_size).numpy()
        return {
            "propensity_harmful": bootstrap_mean(harmful_scores, seed=seed).to_dict(),
            "propensity_benign": bootstrap_mean(benign_scores, seed=seed).to_dict(),
            "gender_bias": bootstrap_mean(bias, seed=seed).to_dict(),
            "gender_share": share(bias > 0, seed=seed).to_dict(),
            "items": {"propensity_harmful": harmful_scores.tolist(), "gender_bias": bias.tolist()},
        }

    readout = {
        "name": "refusal_and_gender_bias",
        "template": template.describe(model.tokenizer),
        "harmful": key_sha256({"texts": list(harmful)}),
        "benign": key_sha256({"texts": list(benign)}),
        "gender": fingerprint(gender_test),
        "openers": [refusal_openers(), compliance_openers()],
        "batch_size": batch_size,
    }
    return sweep(model, vector, [layer], multipliers, evaluate, cells=cells, readout=readout, progress="refusal: sweep")
