"""Neutral text for the fluency side-effect readout: handwritten bias-free sentences read from ``neutral.yaml``."""

from __future__ import annotations

from functools import cache

from lens_bias.data.resources import load_resource


@cache
def _neutral_texts() -> tuple[str, ...]:
    return tuple(load_resource("neutral")["texts"])


def neutral_texts() -> list[str]:
    """Neutral, factual, bias-free sentences for the fluency side-effect readout (mean log-probability
    of held-out neutral text); 110 sentences on nature, science, astronomy, geography, cooking,
    weather, everyday objects, music and numbers, with no people, groups or gendered words."""
    return list(_neutral_texts())
