"""Steering behaviour on the real embedded model (held-out pairs, fixed seeds)."""

from __future__ import annotations

import itertools

import pytest
import torch

from lens_bias.data import contrast_split
from lens_bias.data.records import split_by_target
from lens_bias.data.refusal import compliance_openers, refusal_openers, refusal_requests
from lens_bias.forward.generation import generate
from lens_bias.forward.readouts import refusal_propensity, score_pairs
from lens_bias.interventions import AddVector
from lens_bias.metrics.responses import is_refusal
from lens_bias.prompts import template_for
from lens_bias.steering import build_vector, contrast_activations, fit_vector, orient, preference_measure

pytestmark = pytest.mark.slow
LAYER = 8
STUDY_LAYERS = [4, 8, 12, 16, 20]  # the steering study's default grid


@pytest.fixture(scope="module")
def gender(smollm):
    """The gender prompt-set vector (she/he continuations), read over the tokens from the pronoun on:
    measured on the embedded model, it moves held-out pronoun preferences monotonically (the StereoSet
    last-token vector does not: it is ~1% of the residual norm and large multipliers only break text)."""
    split = contrast_split("gender_prompts", n_train=48, n_test=32, seed=0)
    vector = build_vector(
        "gender_prompts",
        contrast_activations(smollm, split.train, [LAYER], batch_size=48, readout="mean_from_difference"),
        model=smollm,
        items=split.train,
    )
    return split, vector


def test_bias_preference_moves_monotonically_with_the_multiplier(smollm, gender):
    split, vector = gender

    def preference(steer, pairs):
        return float(score_pairs(smollm, pairs, interventions=steer, batch_size=32).preference().mean())

    vector, _record = orient(vector, lambda steer: preference(steer, split.train[:24]), LAYER, 4.0, start=None)
    values = [preference([AddVector(vector, m, start=None)] if m else [], split.test) for m in (-4, -2, 0, 2, 4)]
    assert all(a < b for a, b in itertools.pairwise(values)), values  # toward the stereotype with +m
    assert abs(values[4] - values[2]) > abs(values[3] - values[2])  # grows with |m|
    assert abs(values[0] - values[2]) > abs(values[1] - values[2])


def test_stereoset_vector_at_the_chosen_layer_moves_held_out_preference_monotonically(smollm):
    """The study's path for a StereoSet bias type: mean-difference vector read from the first differing
    token, layer chosen by held-out separability, sign fixed on training pairs, held-out pairs scored."""
    split = contrast_split("gender", n_train=100, n_test=40, seed=0)
    fitted = fit_vector(
        smollm,
        split,
        STUDY_LAYERS,
        readout="mean_from_difference",
        batch_size=32,
        orient_by=preference_measure(smollm, split.train[:32], batch_size=40),
        orient_multiplier=4.0,
        orient_start=None,
    )
    vector, layer = fitted.vector, fitted.layer

    def preference(steer, pairs):
        return float(score_pairs(smollm, pairs, interventions=steer, batch_size=40).preference().mean())

    values = [
        preference([AddVector(vector, m, [layer], start=None)] if m else [], split.test) for m in (-4, -2, 0, 2, 4)
    ]
    assert all(a < b for a, b in itertools.pairwise(values)), (layer, values)
    assert values[4] - values[0] > 0.05, values  # a real effect, not rounding noise (nats per token)


def test_refusal_vector_raises_refusal_propensity_monotonically(smollm):
    template = template_for(smollm)
    split = contrast_split("refusal", n_train=48, seed=0)
    vector = build_vector("refusal", contrast_activations(smollm, split.train, [14], template=template, batch_size=32))
    _, held_out = split_by_target(refusal_requests(), 0.3, 0)
    harmful = [r.text for r in held_out if r.harmful][:8]
    values = [
        float(
            refusal_propensity(
                smollm,
                template,
                harmful,
                refusal_openers(),
                compliance_openers(),
                interventions=[AddVector(vector, m)] if m else [],
                batch_size=48,
            ).mean()
        )
        for m in (-0.5, -0.25, 0.0, 0.25, 0.5)
    ]
    assert all(a < b for a, b in itertools.pairwise(values)), values


def test_steered_generation_kv_cache_equivalence_on_embedded_model(smollm, gender):
    _, vector = gender
    template = template_for(smollm)
    prompts = ["Write one sentence about a nurse.", "Tell me about engineers."]
    steer = [AddVector(vector, 6.0)]
    cached = generate(smollm, template, prompts, interventions=steer, max_new_tokens=10, use_cache=True)
    full = generate(smollm, template, prompts, interventions=steer, max_new_tokens=10, use_cache=False)
    assert [g.tokens for g in cached] == [g.tokens for g in full]


def test_vector_equals_hf_forward_hook_computation(smollm, smollm_hf):
    """Independent check: the HF model from the same GGUF file, PyTorch hooks on decoder layer 8."""
    from .hf_reference import hf_last_token_mean_difference

    split = contrast_split("gender_prompts", n_train=16, seed=0)
    vector = build_vector("last", contrast_activations(smollm, split.train, [LAYER]))
    reference = hf_last_token_mean_difference(smollm_hf, smollm.tokenizer, split.train, LAYER)
    cosine = torch.nn.functional.cosine_similarity(reference, vector.at(LAYER), dim=0)
    assert cosine >= 0.9999


def test_refusal_vector_makes_the_embedded_model_refuse_by_phrase(smollm):
    """Unsteered, the embedded model almost never refuses; the refusal vector (answer-start readout, the
    layer with the largest held-out effect size) makes it open with refusal phrases."""
    template = template_for(smollm)
    split = contrast_split("refusal", n_train=100, n_test=40, seed=0)
    fitted = fit_vector(smollm, split, STUDY_LAYERS, template=template, batch_size=32)
    vector, layer = fitted.vector, fitted.layer
    _, held_out = split_by_target(refusal_requests(), 0.3, 0)
    harmful = [r.text for r in held_out if r.harmful][:16]
    rates = [
        sum(
            is_refusal(g.text)
            for g in generate(
                smollm,
                template,
                harmful,
                max_new_tokens=20,
                batch_size=16,
                interventions=[AddVector(vector, m, [layer])] if m else [],
            )
        )
        for m in (0.0, 0.5)
    ]
    assert rates[1] >= rates[0] + 3, (layer, rates)
