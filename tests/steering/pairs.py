"""Shared inputs of the steering tests: six gender sentence pairs and paired activations from raw tensors."""

from __future__ import annotations

from lens_bias.data.records import ContrastPair
from lens_bias.steering import ContrastActivations

PAIRS = [
    ContrastPair(
        id=str(i),
        bias_type="gender",
        target=t,
        prompt=f"The {t} walked in and",
        positive=" she smiled.",
        negative=" he smiled.",
        source="test",
    )
    for i, t in enumerate(["nurse", "engineer", "secretary", "pilot", "teacher", "driver"])
]


def acts(pos, neg, layers=(0,)) -> ContrastActivations:
    return ContrastActivations(pos, neg, tuple(layers), "resid_post", {"kind": "test"})
