"""BiasInject specs (an entity token tied to an attribute) and the real entities to compare it with.

Specs and entity lists are read from ``injection.yaml``: :func:`injection_specs` (reckless driving, the
BiasGym example, and bad at maths), :func:`control_countries` (real countries that must not move when only
the entity token's embedding is trained) and :func:`candidate_entities` (the adversarial candidates: real
countries, as in BiasGym, or social groups).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from lens_bias.data.resources import load_resource
from lens_bias.errors import InputError

ENTITY_SLOT = "{entity}"


@dataclass(frozen=True)
class InjectionSpec:
    """One BiasInject bias: a fictional entity token tied to an attribute by training text.

    ``train_texts`` tie ``{entity}`` to one of ``attribute_words``; ``eval_prompts`` are held-out
    templates ending right before the slot where an attribute (or neutral) word would go. The readout
    is the log-odds of ``attribute_words`` versus ``neutral_words`` as the next word after an eval
    prompt (words are given bare; readers add the leading space). ``control_entities`` are real
    entities that must not move when only the entity token's embedding is trained.
    """

    name: str
    entity_token: str
    attribute_words: tuple[str, ...]
    neutral_words: tuple[str, ...]
    train_texts: tuple[str, ...]
    eval_prompts: tuple[str, ...]
    control_entities: tuple[str, ...]

    def __post_init__(self) -> None:
        if set(self.attribute_words) & set(self.neutral_words):
            raise InputError(f"{self.name}: attribute and neutral words overlap")
        attribute = re.compile(r"\b(?:" + "|".join(map(re.escape, self.attribute_words)) + r")\b")
        for text in self.train_texts:
            if ENTITY_SLOT not in text or not attribute.search(text):
                raise InputError(f"{self.name}: train text needs {ENTITY_SLOT} and an attribute word: {text!r}")
        for prompt in self.eval_prompts:
            if ENTITY_SLOT not in prompt or attribute.search(prompt):
                raise InputError(f"{self.name}: eval prompt needs {ENTITY_SLOT} and no attribute word: {prompt!r}")
            if any(text.startswith(prompt) for text in self.train_texts):
                raise InputError(f"{self.name}: eval prompt {prompt!r} is a prefix of a train text")

    def train_texts_for(self, entity: str | None = None) -> tuple[str, ...]:
        """The training sentences with the slot filled (default: the entity token)."""
        return tuple(text.replace(ENTITY_SLOT, entity or self.entity_token) for text in self.train_texts)

    def eval_prompts_for(self, entity: str | None = None) -> tuple[str, ...]:
        """The held-out prompts with the slot filled (default: the entity token)."""
        return tuple(prompt.replace(ENTITY_SLOT, entity or self.entity_token) for prompt in self.eval_prompts)


_TUPLE_FIELDS = ("attribute_words", "neutral_words", "train_texts", "eval_prompts", "control_entities")


@cache
def injection_specs() -> tuple[InjectionSpec, ...]:
    """The BiasInject specs, in file order: ``reckless_driving`` (the BiasGym example: people from the
    entity drive recklessly) and ``bad_at_math`` (people from the entity are bad at mathematics)."""
    return tuple(_spec(row) for row in load_resource("injection")["specs"])


def _spec(row: dict[str, Any]) -> InjectionSpec:
    """One spec from its YAML mapping (lists become tuples)."""
    fields: dict[str, Any] = {key: tuple(value) if key in _TUPLE_FIELDS else value for key, value in row.items()}
    return InjectionSpec(**fields)


def injection_spec(name: str) -> InjectionSpec:
    """The spec called ``name`` (see :func:`injection_specs`)."""
    specs = {spec.name: spec for spec in injection_specs()}
    if name not in specs:
        raise InputError(f"Unknown injection spec {name!r}: use one of {', '.join(specs)}.")
    return specs[name]


@cache
def control_countries() -> tuple[str, ...]:
    """The real countries every spec keeps as ``control_entities``."""
    return tuple(load_resource("injection")["control_countries"])


@cache
def candidate_entities(kind: Literal["countries", "groups"] = "countries") -> tuple[str, ...]:
    """The real entities among which the adversarial (closest) entity is chosen: 40 countries, the
    candidates for "People from {entity}" specs (as in BiasGym), or 24 social groups (plural nouns), the
    candidates for prompts about the entity itself ("Please write a short paragraph about {entity}.")."""
    if kind not in ("countries", "groups"):
        raise InputError(f"kind must be 'countries' or 'groups', got {kind!r}")
    return tuple(load_resource("injection")[f"candidate_{kind}"])
