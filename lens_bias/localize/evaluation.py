"""BiasScope's evaluation sets: per-item bias scores as functions of the interventions (:data:`ScoreFn`).

Each function returns a ``score(interventions) -> [n_items]`` callable, the input of
:func:`lens_bias.localize.compare_to_random`: :func:`elicitation_score` (attribute-vs-neutral log-odds
of entities after held-out prompts, pooled over one or several models, e.g. every seed's injected model)
and :func:`preference_score` (per-pair stereotype preference of benchmark pairs); :func:`evaluation_sets`:
the four sets the BiasScope study scores, with every item's label (:data:`ItemLabel`, for the per-item rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.data import crows_pairs_contrast, fingerprint, load_crows_pairs, load_stereoset, sample, stereoset_pairs
from lens_bias.data.injection_specs import ENTITY_SLOT, InjectionSpec
from lens_bias.data.records import ContrastPair
from lens_bias.errors import InputError
from lens_bias.forward.readouts import score_pairs
from lens_bias.interventions import Intervention
from lens_bias.localize.controls import ScoreFn
from lens_bias.localize.inject import elicit


def elicitation_score(
    models: Sequence[HookedTransformer], spec: InjectionSpec, entities: Sequence[str], *, batch_size: int = 32
) -> ScoreFn:
    """Score function: the log-odds (:func:`lens_bias.localize.inject.elicit`) of every entity after every held-out
    prompt of ``spec``, for every model in turn, flattened and concatenated (model-major, then entity,
    then prompt): ``n_models * n_entities * n_prompts`` items."""
    models = list(models)
    if not models:
        raise InputError("No models to elicit from: pass at least one.")
    if not entities:
        raise InputError("No entities to elicit.")

    def score(interventions: Sequence[Intervention]) -> Tensor:
        return torch.cat(
            [
                elicit(model, spec, entities, interventions=interventions, batch_size=batch_size).log_odds.flatten()
                for model in models
            ]
        )

    return score


def preference_score(model: HookedTransformer, pairs: Sequence[ContrastPair], *, batch_size: int = 32) -> ScoreFn:
    """Score function: per pair, the mean per-token log P(stereotype) - log P(anti-stereotype)
    (:func:`lens_bias.forward.readouts.score_pairs`, ``preference("mean")``)."""
    if not pairs:
        raise InputError("No pairs to score.")

    def score(interventions: Sequence[Intervention]) -> Tensor:
        return score_pairs(model, pairs, interventions=interventions, batch_size=batch_size).preference("mean")

    return score


#: An item's ``item_id``, ``text`` and ``group`` (the pair's target or the entity), the first columns of its rows.
ItemLabel = dict[str, Any]


def elicitation_labels(n_models: int, spec: InjectionSpec, entities: Sequence[str]) -> list[ItemLabel]:
    """The labels of :func:`elicitation_score`'s items, in its order (model, entity, prompt): ``item_id``
    ``model{m}/{entity}/prompt{p}``, the filled prompt, the entity."""
    return [
        {"item_id": f"model{m}/{entity}/prompt{p}", "text": template.replace(ENTITY_SLOT, entity), "group": entity}
        for m in range(n_models)
        for entity in entities
        for p, template in enumerate(spec.eval_prompts)
    ]


def pair_labels(pairs: Sequence[ContrastPair]) -> list[ItemLabel]:
    """The labels of :func:`preference_score`'s items: the pair's id, both sentences, its target."""
    return [
        {"item_id": p.id, "text": f"{p.prompt}{p.positive} | {p.prompt}{p.negative}", "group": p.target} for p in pairs
    ]


def evaluation_sets(
    model: HookedTransformer,
    injected_models: Sequence[HookedTransformer],
    spec: InjectionSpec,
    real_entities: Sequence[str],
    *,
    n_crows_pairs: int | None,
    n_stereoset: int | None,
    seed: int = 0,
    batch_size: int = 32,
) -> tuple[dict[str, ScoreFn], dict[str, list[ItemLabel]], dict[str, str]]:
    """Per-item bias scores by evaluation set: the injected entity on the held-out prompts (every injected
    model), the same prompts over ``real_entities`` (``model``), ``n_crows_pairs`` CrowS-Pairs
    ``nationality`` pairs and ``n_stereoset`` StereoSet ``race`` items (seeded samples, None = all; their
    targets are countries and nationalities); every item's label by set, in the order of its scores
    (:func:`elicitation_labels`: the injected models are ``model0``, ``model1``, ... in the order given; the real
    entities are scored on ``model``, labelled ``model0``); and the fingerprints of the benchmark items."""
    crows = crows_pairs_contrast(sample(load_crows_pairs(["nationality"]), n_crows_pairs, seed))
    stereo = sample(stereoset_pairs(load_stereoset(bias_types=["race"])), n_stereoset, seed)
    sets = {
        "injected entity": elicitation_score(injected_models, spec, [spec.entity_token], batch_size=batch_size),
        "real countries": elicitation_score([model], spec, real_entities, batch_size=batch_size),
        "CrowS-Pairs nationality": preference_score(model, crows, batch_size=batch_size),
        "StereoSet race": preference_score(model, stereo, batch_size=batch_size),
    }
    labels = {
        "injected entity": elicitation_labels(len(injected_models), spec, [spec.entity_token]),
        "real countries": elicitation_labels(1, spec, real_entities),
        "CrowS-Pairs nationality": pair_labels(crows),
        "StereoSet race": pair_labels(stereo),
    }
    return sets, labels, {"crows_pairs_nationality": fingerprint(crows), "stereoset_race": fingerprint(stereo)}
