"""BiasScope's control: random head draws, the selected heads against random heads (bookkeeping by hand, and
on the real model with an injected bias)."""

from __future__ import annotations

import numpy as np
import pytest
from biasscope_fixtures import injected_smollm

from lens_bias.data.injection_specs import candidate_entities, injection_spec
from lens_bias.localize import (
    AblationComparison,
    bias_contrast,
    compare_to_random,
    localization_prompts,
    random_heads,
    score_components,
    top_k_heads,
)
from lens_bias.localize.inject import closest_entities, elicit


def test_random_heads_are_distinct_seeded_and_exclude_the_selected():
    draws = random_heads(4, 3, 5, 6, seed=1, exclude=[(0, 0), (3, 2)])
    assert draws == random_heads(4, 3, 5, 6, seed=1, exclude=[(0, 0), (3, 2)])
    assert draws != random_heads(4, 3, 5, 6, seed=2, exclude=[(0, 0), (3, 2)])
    for draw in draws:
        assert len(set(draw)) == 5 and not {(0, 0), (3, 2)} & set(draw)
    with pytest.raises(ValueError, match="between 1 and the number of heads"):
        random_heads(2, 2, 4, 1, exclude=[(0, 0)])


def test_compare_to_random_bookkeeping():
    """Per item i, the score is the sum of weights of the heads left on; ablating heads removes exactly
    their weights, so every reduction can be computed by hand."""
    weights = np.random.default_rng(0).random((5, 4, 3))  # [items, layers, heads]
    weights[:, 2, 1] += 5.0
    weights[:, 0, 0] += 4.0

    def score(interventions):
        off = {h for i in interventions for h in i.heads}
        keep = np.ones((4, 3))
        for layer, head in off:
            keep[layer, head] = 0.0
        return (weights * keep).sum((1, 2))

    result = compare_to_random(score, [(2, 1), (0, 0)], n_layers=4, n_heads=3, n_random=4, seed=3)
    assert isinstance(result, AblationComparison) and result.random.shape == (4, 5)
    np.testing.assert_allclose(result.baseline - result.selected, weights[:, 2, 1] + weights[:, 0, 0])
    for draw, row in zip(result.random_heads, result.random):
        np.testing.assert_allclose(result.baseline - row, sum(weights[:, l, h] for l, h in draw))
    summary = result.summary()
    assert summary["advantage"].low > 0 and summary["n_items"] == 5 and summary["n_draws"] == 4
    assert summary["reduction_selected"].value == pytest.approx(float((weights[:, 2, 1] + weights[:, 0, 0]).mean()))


@pytest.mark.slow
def test_real_model_selected_heads_reduce_the_bias_more_than_random_heads(smollm):
    run = injected_smollm(smollm)
    spec = injection_spec("reckless_driving")
    adversarial = next(
        m.entity for m in closest_entities(run.model, run.entity.embedding, candidate_entities()) if m.n_tokens == 1
    )
    contrast = bias_contrast(run.model, spec, adversarial, localization_prompts(spec)[:3])
    scores = score_components(run.model, contrast)
    assert bool((scores.biased_metric > scores.adversarial_metric).all())
    selected = top_k_heads(scores.heads("patching"), 5)

    def entity_log_odds(interventions):  # held-out templates, never used for selection
        return elicit(run.model, spec, [spec.entity_token], interventions=interventions).log_odds.flatten()

    summary = compare_to_random(
        entity_log_odds, selected, n_layers=smollm.cfg.n_layers, n_heads=smollm.cfg.n_heads, n_random=5, seed=0
    ).summary()
    print(
        f"\nadversarial {adversarial}; selected {selected}; baseline {summary['baseline']}; reduction "
        f"selected {summary['reduction_selected']} vs random {summary['reduction_random']} (draws "
        f"{np.round(summary['reduction_random_draws'], 2).tolist()}); advantage {summary['advantage']}"
    )
    assert summary["reduction_selected"].value > 0
    assert summary["reduction_selected"].value > max(summary["reduction_random_draws"])
    assert summary["advantage"].value > 0
