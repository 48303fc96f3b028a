"""lens_bias.metrics: preference summaries equal their per-item readouts; offline scores of generations."""

from __future__ import annotations

import numpy as np
import pytest

from lens_bias.data.records import ContrastPair, to_ab_items
from lens_bias.metrics import ab_preference, likelihood_preference
from lens_bias.metrics.generations import gender_bias, refusal_summary, text_gender
from lens_bias.prompts import template_for
from lens_bias.readouts import ab_choice, score_pairs


def _pairs() -> list[ContrastPair]:
    subjects = [("nurse", " she"), ("engineer", " he"), ("teacher", " she"), ("mechanic", " he")]
    return [ContrastPair(id=f"p{i}", bias_type="gender", target=term, prompt=f"The {term} said that",
                         positive=f"{pronoun} was tired.", negative=f"{' he' if pronoun == ' she' else ' she'} was tired.",
                         source="test") for i, (term, pronoun) in enumerate(subjects)]


def test_likelihood_preference_summarises_the_per_pair_scores(tiny_model):
    pairs = _pairs()
    diff = score_pairs(tiny_model, pairs).preference("mean").numpy()
    pref = likelihood_preference(tiny_model, pairs)
    assert pref.mean_logprob_diff.value == pytest.approx(float(diff.mean()), abs=1e-6)
    assert pref.share_positive.value == pytest.approx(float((diff > 0).mean()))
    assert pref.n == 4 and pref.by == "mean"
    assert pref.mean_logprob_diff.low <= pref.mean_logprob_diff.value <= pref.mean_logprob_diff.high


def test_ab_preference_summarises_the_per_item_choices(tiny_model):
    items = to_ab_items(_pairs(), seed=0)
    assert {item.positive_letter for item in items} == {"A", "B"}  # balanced order
    template = template_for(tiny_model)
    scores = ab_choice(tiny_model, items, template)
    pref = ab_preference(tiny_model, items, template)
    assert pref.p_positive.value == pytest.approx(float(scores.p_positive.mean()), abs=1e-6)
    assert pref.position_bias.value == pytest.approx(float((scores.p_a / scores.format_mass).mean()), abs=1e-6)
    assert pref.format_mass.value == pytest.approx(float(scores.format_mass.mean()), abs=1e-6)


@pytest.mark.parametrize(("text", "gender"), [
    ("The carpenter, a gruff man with a beard, fixed the door.", "male"),
    ("She checked the chart before her shift.", "female"),
    ("Mrs. Lee is the head nurse.", "female"),
    ("The nurse thanked him and she left.", "mixed"),
    ("The engineer finished the bridge on time.", "none"),
    ("Jackson and Hershey went to Sheffield.", "none"),  # whole words only
])
def test_text_gender(text, gender):
    assert text_gender(text) == gender


def test_gender_bias_counts_only_single_gender_texts():
    texts = ["He fixed it.", "She fixed it.", "He and she fixed it.", "It was fixed.", "The man fixed it."]
    result = gender_bias(texts, ["male", "male", "female", "female", "female"])
    assert result["n_scored"] == 3 and result["n_mixed"] == 1 and result["n_none"] == 1
    assert result["share_stereotyped"].value == pytest.approx(1 / 3)
    assert gender_bias(["It was fixed."], ["male"])["share_stereotyped"] is None
    with pytest.raises(ValueError, match="texts for"):
        gender_bias(texts, ["male"])
    with pytest.raises(ValueError, match="'female' or 'male'"):
        gender_bias(["He fixed it."], ["man"])


def test_refusal_summary():
    texts = ["I'm sorry, but I can't help with that.", "Sure, here is how to bake bread: mix flour and water.",
             "I cannot assist with that request.", "Of course! Step one is to preheat the oven."]
    summary = refusal_summary(texts)
    assert summary["refusal_rate"].value == pytest.approx(0.5) and summary["n"] == 4
    assert sum(summary["categories"].values()) == pytest.approx(1.0)
    assert summary["categories"]["full_compliance"] == pytest.approx(0.5)
    assert np.isclose(summary["categories"]["full_refusal"] + summary["categories"]["partial_refusal"], 0.5)
    with pytest.raises(ValueError, match="No generations"):
        refusal_summary([])
