"""The one seeded subsample: the same items as the four helpers it replaced, all for None, clear errors."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from lens_bias.data import sample


@dataclass(frozen=True)
class _Item:
    id: str
    value: int


# Items whose id order differs from their list order, with a repeated id (ties keep the draw order).
ITEMS = [_Item(id=f"item-{(7 * i) % 23:02d}", value=i) for i in range(23)] + [_Item(id="item-05", value=99)]


def _by_id(item: _Item) -> str:
    return item.id


@pytest.mark.parametrize("seed", [0, 1, 2, 13])
@pytest.mark.parametrize("n", [1, 5, 12, 23])
def test_sorted_by_key_equals_the_former_sorted_sample(n, seed):
    # Former contrast_split / side_effects / bias_profile helpers: sorted(Random(seed).sample(items, n), key).
    assert sample(ITEMS, n, seed, key=_by_id) == sorted(random.Random(seed).sample(ITEMS, n), key=_by_id)


@pytest.mark.parametrize("seed", [0, 1, 2, 13])
@pytest.mark.parametrize("n", [1, 5, 12, 23])
def test_original_order_equals_the_former_index_sample(n, seed):
    # Former biasscope helper: the indices drawn from range(len(items)), items kept in their original order.
    keep = set(random.Random(seed).sample(range(len(ITEMS)), n))
    assert sample(ITEMS, n, seed) == [item for i, item in enumerate(ITEMS) if i in keep]


def test_fixed_draws():
    assert sample(list(range(20)), 5, 0) == [1, 8, 12, 13, 15]
    assert sample(list("abcdefghij"), 3, 7, key=lambda c: -ord(c)) == ["g", "f", "c"]


def test_all_items_for_none_or_n_at_least_len():
    for n in (None, len(ITEMS), len(ITEMS) + 1):
        drawn = sample(ITEMS, n, 0, key=_by_id)
        assert drawn == ITEMS and drawn is not ITEMS  # all, in their given order, as a new list
    assert sample((), None, 0) == [] and sample((), 3, 0) == []


@pytest.mark.parametrize("n", [0, -1])
def test_n_below_one_says_to_pass_none(n):
    with pytest.raises(ValueError, match="n=None"):
        sample(ITEMS, n, 0)
