"""lens_bias.metrics.generations: offline scores of generations (gendered words, refusal summary)."""

from __future__ import annotations

import numpy as np
import pytest

from lens_bias.metrics.generations import gender_bias, refusal_summary, text_gender


@pytest.mark.parametrize(
    ("text", "gender"),
    [
        ("The carpenter, a gruff man with a beard, fixed the door.", "male"),
        ("She checked the chart before her shift.", "female"),
        ("Mrs. Lee is the head nurse.", "female"),
        ("The nurse thanked him and she left.", "mixed"),
        ("The engineer finished the bridge on time.", "none"),
        ("Jackson and Hershey went to Sheffield.", "none"),  # whole words only
    ],
)
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
    texts = [
        "I'm sorry, but I can't help with that.",
        "Sure, here is how to bake bread: mix flour and water.",
        "I cannot assist with that request.",
        "Of course! Step one is to preheat the oven.",
    ]
    summary = refusal_summary(texts)
    assert summary["refusal_rate"].value == pytest.approx(0.5) and summary["n"] == 4
    assert sum(summary["categories"].values()) == pytest.approx(1.0)
    assert summary["categories"]["full_compliance"] == pytest.approx(0.5)
    assert np.isclose(summary["categories"]["full_refusal"] + summary["categories"]["partial_refusal"], 0.5)
    with pytest.raises(ValueError, match="No generations"):
        refusal_summary([])
