"""BiasScope's evaluation sets: score functions of the interventions, equal to the readouts they wrap."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lens_bias.data.records import ContrastPair
from lens_bias.errors import InputError
from lens_bias.forward.readouts import score_pairs
from lens_bias.interventions import HeadScaling
from lens_bias.localize.controls import AblationComparison
from lens_bias.localize.evaluation import elicitation_labels, elicitation_score, pair_labels, preference_score
from lens_bias.localize.inject import elicit
from lens_bias.localize.study import ablation_items

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
    labels = pair_labels(pairs)  # one per score, in its order
    assert [label["item_id"] for label in labels] == ["a", "b"] and labels[1]["group"] == "nurse"
    assert labels[0]["text"] == "People from Italy drive recklessly. | People from Italy drive safely."


def test_elicitation_labels_follow_the_scores_order():
    entities = [TINY_SPEC.entity_token, "Italy"]
    labels = elicitation_labels(2, TINY_SPEC, entities)
    prompts = list(TINY_SPEC.eval_prompts)
    assert len(labels) == 2 * 2 * len(prompts)  # model-major, then entity, then prompt: as elicitation_score
    assert labels[len(prompts)] == {
        "item_id": "model0/Italy/prompt0",
        "text": prompts[0].replace("{entity}", "Italy"),
        "group": "Italy",
    }
    assert labels[-1]["item_id"] == f"model1/Italy/prompt{len(prompts) - 1}"


def test_ablation_items_give_every_item_under_every_condition():
    comparison = AblationComparison(
        baseline=np.array([1.0, 2.0]),
        selected=np.array([0.5, 1.5]),
        random=np.array([[0.9, 1.9], [1.1, 2.1]]),
        selected_heads=[(0, 1)],
        random_heads=[[(1, 0)], [(1, 1)]],
        scale=0.0,
    )
    labels = [{"item_id": "a", "text": "x", "group": "g"}, {"item_id": "b", "text": "y", "group": "g"}]
    rows = ablation_items("StereoSet race", labels, comparison)
    assert [(r["item_id"], r["condition"], r["bias_score"]) for r in rows] == [
        ("a", "baseline", 1.0),
        ("b", "baseline", 2.0),
        ("a", "selected heads", 0.5),
        ("b", "selected heads", 1.5),
        ("a", "random heads (draw 1)", 0.9),
        ("b", "random heads (draw 1)", 1.9),
        ("a", "random heads (draw 2)", 1.1),
        ("b", "random heads (draw 2)", 2.1),
    ]
    assert list(rows[0]) == ["item_id", "text", "group", "condition", "evaluation_set", "bias_score"]
    with pytest.raises(InputError, match="1 item labels for 2 scores"):
        ablation_items("StereoSet race", labels[:1], comparison)


def test_empty_inputs_are_refused(tiny_model):
    with pytest.raises(InputError, match="No models"):
        elicitation_score([], TINY_SPEC, ["Italy"])
    with pytest.raises(InputError, match="No entities"):
        elicitation_score([tiny_model], TINY_SPEC, [])
    with pytest.raises(InputError, match="No pairs"):
        preference_score(tiny_model, [])
