"""Tests for the gender term-swap pairs of activation patching (text only; tokenization is patching's)."""

from __future__ import annotations

import pytest

from lens_bias.data.gender_swap import KINDS, PatchingPair, gender_swap_groups, gender_swap_pairs
from lens_bias.data.records import fingerprint


def test_pairs_are_unchanged_and_in_fixed_order():
    pairs = gender_swap_pairs()
    assert fingerprint(pairs) == "47d0978abbe47b42"  # as built from the Python tuples of contrast_sets.py
    assert fingerprint(gender_swap_pairs(["trait", "activity"])) == "a7f839326c4eb4ee"
    assert len({p.id for p in pairs}) == len(pairs) == 5400
    assert pairs[0].id == "gender-swap-occupation-t0-carpenter-editor"
    assert gender_swap_groups() == [
        "occupation-t0",
        "occupation-t1",
        "occupation-t2",
        "occupation-t3",
        "occupation-t4",
        "occupation-t5",
        "trait-t0",
        "trait-t2",
        "activity-t0",
    ]


def test_kinds_and_groups_filter():
    assert {p.group for p in gender_swap_pairs(["activity"])} == {"activity-t0"}
    trait = gender_swap_pairs(["trait"], groups=["trait-t2"])
    assert len(trait) == 2 * 10 * 10 and {p.positive for p in trait} == {" she", " he"}
    assert gender_swap_groups(["trait"]) == ["trait-t0", "trait-t2"]
    assert KINDS == ("occupation", "trait", "activity")


def test_bad_input_says_what_to_use():
    with pytest.raises(ValueError, match="use any of"):
        gender_swap_pairs(["hobby"])
    with pytest.raises(ValueError, match="trait-t0"):
        gender_swap_pairs(["trait"], groups=["trait-t1"])
    with pytest.raises(ValueError, match="identical"):
        PatchingPair("x", "The nurse", "The nurse", " she", " he", "nurse", "nurse", "occupation-t0")
