"""BiasScope's evaluation sets: score functions of the interventions, equal to the readouts they wrap."""

from __future__ import annotations

import pytest
import torch

from lens_bias.data.records import ContrastPair
from lens_bias.errors import InputError
from lens_bias.forward.readouts import score_pairs
from lens_bias.interventions import HeadScaling
from lens_bias.localize.evaluation import elicitation_score, preference_score
from lens_bias.localize.inject import elicit

from .tiny import TINY_SPEC


def test_elicitation_score_pools_the_models_in_order(tiny_model, tiny_injected):
    score = elicitation_score(
        [tiny_injected, tiny_injected], TINY_SPEC, [TINY_SPEC.entity_token, "Italy"], batch_size=3
    )
    ablate = [HeadScaling(((0, 1), (1, 0)), 0.0)]
    for interventions in ([], ablate):
        one = elicit(
            tiny_injected, TINY_SPEC, [TINY_SPEC.entity_token, "Italy"], interventions=interventions
        ).log_odds.flatten()
        torch.testing.assert_close(score(interventions), torch.cat([one, one]))
    assert not torch.allclose(score([]), score(ablate))  # the interventions are applied


def test_preference_score_is_the_mean_preference(tiny_model):
    pairs = [
        ContrastPair(
            id="a",
            bias_type="nationality",
            target="Italy",
            prompt="People from Italy drive",
            positive=" recklessly.",
            negative=" safely.",
            source="test",
        ),
        ContrastPair(
            id="b",
            bias_type="gender",
            target="nurse",
            prompt="",
            positive="The nurse walked in and she smiled.",
            negative="The nurse walked in and he smiled.",
            source="test",
        ),
    ]
    score = preference_score(tiny_model, pairs, batch_size=1)
    torch.testing.assert_close(score([]), score_pairs(tiny_model, pairs).preference("mean"))


def test_empty_inputs_are_refused(tiny_model):
    with pytest.raises(InputError, match="No models"):
        elicitation_score([], TINY_SPEC, ["Italy"])
    with pytest.raises(InputError, match="No entities"):
        elicitation_score([tiny_model], TINY_SPEC, [])
    with pytest.raises(InputError, match="No pairs"):
        preference_score(tiny_model, [])
