"""lens_bias.metrics.preference: the preference summaries equal their per-item readouts."""

from __future__ import annotations

import pytest

from lens_bias.data.records import ContrastPair, to_ab_items
from lens_bias.forward.readouts import ab_choice, score_pairs
from lens_bias.metrics import ab_preference, likelihood_preference
from lens_bias.prompts import template_for


def _pairs() -> list[ContrastPair]:
    subjects = [("nurse", " she"), ("engineer", " he"), ("teacher", " she"), ("mechanic", " he")]
    return [
        ContrastPair(
            id=f"p{i}",
            bias_type="gender",
            target=term,
            prompt=f"The {term} said that",
            positive=f"{pronoun} was tired.",
            negative=f"{' he' if pronoun == ' she' else ' she'} was tired.",
            source="test",
        )
        for i, (term, pronoun) in enumerate(subjects)
    ]


def test_likelihood_preference_summarises_the_per_pair_scores(tiny_model):
    pairs = _pairs()
    diff = score_pairs(tiny_model, pairs).preference("mean").numpy()
    pref = likelihood_preference(tiny_model, pairs)
    assert pref.mean_logprob_diff.value == pytest.approx(float(diff.mean()), abs=1e-6)
    assert pref.share_positive.value == pytest.approx(float((diff > 0).mean()))
    assert pref.n == 4 and pref.by == "mean"
    assert pref.mean_logprob_diff.low <= pref.mean_logprob_diff.value <= pref.mean_logprob_diff.high


def test_likelihood_preference_takes_dicts_and_datasets_and_gives_per_pair_rows(tiny_model):
    import dataclasses

    import datasets

    pairs = _pairs()
    rows = [{k: v for k, v in dataclasses.asdict(p).items() if k not in ("source", "unrelated")} for p in pairs]
    expected = likelihood_preference(tiny_model, pairs)
    for table in (rows, datasets.Dataset.from_list(rows)):
        pref = likelihood_preference(tiny_model, table)
        assert pref.to_dict() == expected.to_dict() and "diffs" not in pref.to_dict()
    frame = pref.to_frame("baseline")
    assert list(frame["item_id"]) == ["p0", "p1", "p2", "p3"] and set(frame["condition"]) == {"baseline"}
    assert list(frame["group"]) == ["nurse", "engineer", "teacher", "mechanic"]
    assert frame["logprob_diff"].mean() == pytest.approx(expected.mean_logprob_diff.value, abs=1e-6)


def test_ab_preference_summarises_the_per_item_choices(tiny_model):
    items = to_ab_items(_pairs(), seed=0)
    assert {item.positive_letter for item in items} == {"A", "B"}  # balanced order
    template = template_for(tiny_model)
    scores = ab_choice(tiny_model, items, template)
    pref = ab_preference(tiny_model, items, template)
    assert pref.p_positive.value == pytest.approx(float(scores.p_positive.mean()), abs=1e-6)
    assert pref.position_bias.value == pytest.approx(float((scores.p_a / scores.format_mass).mean()), abs=1e-6)
    assert pref.format_mass.value == pytest.approx(float(scores.format_mass.mean()), abs=1e-6)
