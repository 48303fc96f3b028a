"""TRANSITION shim: the gender term-swap patching pairs moved to :mod:`lens_bias.data.gender_swap`."""

from lens_bias.data.gender_swap import (
    KINDS,
    PATCHING_SOURCE,
    PatchingPair,
    gender_swap_groups,
    gender_swap_pairs,
)

__all__ = ["KINDS", "PATCHING_SOURCE", "PatchingPair", "gender_swap_groups", "gender_swap_pairs"]
