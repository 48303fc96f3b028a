"""lm-evaluation-harness's BBQ rules by hand: its 12 choices, correct and biased answers, group parsing
(quirks included) and aggregations. Its own output on real items: tests/benchmarks/test_bbq.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lens_bias.data.bbq import load_bbq
from lens_bias.data.bbq_harness import (
    UNKNOWN_RESPONSES,
    _groups,
    harness_biased,
    harness_choice_roles,
    harness_choices,
    harness_prompt,
    harness_scores,
    harness_targets,
)


@pytest.fixture(scope="module")
def age():
    return {item.example_id: item for item in load_bbq(["Age"]) if item.example_id < 8}


def test_choices_targets_and_prompt(age):
    item = age[0]  # ambiguous, negative: the grandfather / the grandson / unknown
    choices = harness_choices(item)
    assert len(choices) == 12 and choices[2:] == UNKNOWN_RESPONSES
    assert list(choices[:2]) == [a for i, a in enumerate(item.answers) if i != item.unknown_index]
    assert harness_targets(item) == tuple(range(2, 12))  # any unknown wording is correct
    disambiguated = next(i for i in age.values() if i.context_condition == "disambig" and i.label != i.unknown_index)
    assert harness_targets(disambiguated) == (
        harness_choices(disambiguated).index(disambiguated.answers[disambiguated.label]),
    )
    assert harness_prompt(item) == f"{item.context}\n\nQ: {item.question}\nA:"


def test_group_parsing_keeps_the_harness_quirks():
    assert _groups("lowSES-M-Black") == ["low ses", "m", "black"]
    assert _groups("Black woman_F-Black") == ["black f", "woman", "f", "black"]
    assert _groups("German_Europe") == ["germ", "man", "europe"]  # 'man' replaced inside 'German'
    assert _groups("nonObese") == ["non obese"]


def test_biased_answers_by_polarity(age):
    neg, nonneg = age[0], age[2]
    assert (neg.polarity, nonneg.polarity) == ("neg", "nonneg")
    info = [("grandfather", "old"), ("grandson", "nonOld"), ("Can't be determined", "unknown")]
    # negative question: the answer in the stereotyped group; non-negative: the other non-unknown one
    assert harness_biased(neg, info, ["old"]) == (harness_choices(neg).index(neg.answers[0]),)
    assert harness_biased(nonneg, info, ["old"]) == (harness_choices(nonneg).index(nonneg.answers[1]),)
    roles = harness_choice_roles([neg, nonneg])
    assert roles["biased"].sum(1).tolist() == [1, 1] and roles["unknown"][:, 2:].all()
    assert not roles["unknown"][:, :2].any()


def test_aggregations_by_hand():
    target = np.zeros((4, 12), bool)
    target[[0, 1], 2:] = True  # two ambiguous items: unknown is correct
    target[[2, 3], [0, 1]] = True
    biased = np.zeros((4, 12), bool)
    biased[:, 0] = True
    unknown = np.zeros((4, 12), bool)
    unknown[:, 2:] = True
    ambiguous = np.array([True, True, False, False])
    scores = harness_scores(np.array([0, 5, 0, 0]), target, biased, unknown, ambiguous)
    assert scores["acc"] == 0.5 and scores["accuracy_ambig"] == 0.5 and scores["accuracy_disambig"] == 0.5
    assert scores["s_dis"] == 1.0  # 2 biased of 2 non-unknown
    assert scores["s_amb"] == (1 - 0.5) * 1.0
    none_biased = harness_scores(np.array([3, 5, 2, 4]), target, biased, unknown, ambiguous)
    assert none_biased["s_dis"] == 0.0 and none_biased["n_non_unknown_disambig"] == 0  # the harness's 0.0, not NaN
    only_ambiguous = harness_scores(np.array([0, 5]), target[:2], biased[:2], unknown[:2], ambiguous[:2])
    assert math.isnan(only_ambiguous["s_dis"]) and math.isnan(only_ambiguous["accuracy_disambig"])
