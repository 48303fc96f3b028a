"""The one seeded subsample of the toolkit: ``sample(items, n, seed)``."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from lens_bias.errors import InputError

T = TypeVar("T")


def sample(items: Sequence[T], n: int | None, seed: int, *, key: Callable[[T], Any] | None = None) -> list[T]:
    """``n`` of ``items`` drawn without replacement with ``random.Random(seed)``, or all of them.

    ``n=None`` or ``n >= len(items)``: all items, in their given order (a new list). Otherwise the
    indices are ``random.Random(seed).sample(range(len(items)), n)`` (the same draw as sampling the items
    themselves); the chosen items come back sorted by ``key`` when it is given (a stable sort of the draw
    order, e.g. ``key=lambda pair: pair.id``), else in their original order. The same seed gives the same
    items for the same input, in every process. Raises InputError for ``n < 1``: pass None for all items.
    """
    if n is None or n >= len(items):
        return list(items)
    if n < 1:
        raise InputError(f"sample: n must be >= 1, got {n}; pass n=None to keep all items.")
    drawn = random.Random(seed).sample(range(len(items)), n)
    if key is None:
        return [items[index] for index in sorted(drawn)]
    return sorted((items[index] for index in drawn), key=key)
