"""The personas of the persona-conditioned BBQ study, their instruction rewordings and the BBQ targets.

Read from ``personas.yaml`` (its comments give the sources and rules):

* :func:`personas`: who the model is told to be (a :class:`Persona`: name, BBQ category, the noun phrase put
  into the instruction, its in-group targets); :data:`BASELINE` (``"none"``) is the study's no-persona
  condition, which keeps the model's own default system prompt.
* :func:`persona_rewordings`: the persona instruction in several wordings (``{persona}`` slot);
  :func:`persona_instruction` fills one in.
* :func:`normalize_tag` / :func:`answer_targets`: a BBQ answer's group tag as a study target
  (``"race:Black"`` for ``'F-Black'``), or None when the answer is not one of the category's targets.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from lens_bias.data.bbq import BBQItem
from lens_bias.data.resources import load_resource
from lens_bias.errors import InputError

BASELINE = "none"
"""Name of the no-persona condition (no persona instruction: the model's default system prompt)."""
_GENDER_PREFIX = re.compile(r"^[FM]-")


@dataclass(frozen=True)
class Persona:
    """Who the model is told to be: ``phrase`` fills the instructions' ``{persona}`` slot; ``groups`` are the
    targets of ``category`` the persona belongs to (its in-group), as target names (``"race:Black"``)."""

    name: str
    category: str  # a BBQ category of personas.yaml
    phrase: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class TargetCategory:
    """The targets of one BBQ category: ``label`` prefixes the target names, ``aliases`` maps synonymous
    tags to one group, ``targets`` are the kept groups (normalised tags)."""

    category: str
    label: str
    aliases: dict[str, str]
    targets: tuple[str, ...]

    def name(self, group: str) -> str:
        """The target name of a normalised group: ``"{label}:{group}"``."""
        return f"{self.label}:{group}"


def _data() -> dict[str, Any]:
    return load_resource("personas")


@cache
def target_categories() -> dict[str, TargetCategory]:
    """The BBQ categories the study can count on, in file order."""
    return {
        category: TargetCategory(category, entry["label"], dict(entry.get("aliases") or {}), tuple(entry["targets"]))
        for category, entry in _data()["categories"].items()
    }


def target_category(category: str) -> TargetCategory:
    """The targets of ``category``; InputError naming the available categories when it has none."""
    found = target_categories().get(category)
    if found is None:
        raise InputError(
            f"BBQ category {category!r} has no persona-study targets; use one of {', '.join(target_categories())}."
        )
    return found


@cache
def persona_rewordings() -> tuple[str, ...]:
    """The persona instruction in its wordings, each with a ``{persona}`` slot (the first is the main one)."""
    return tuple(_data()["rewordings"])


@cache
def personas() -> tuple[Persona, ...]:
    """Every persona of the file, in file order."""
    out = []
    for row in _data()["personas"]:
        categories = target_category(row["category"])
        out.append(
            Persona(row["name"], row["category"], row["phrase"], tuple(categories.name(g) for g in row["groups"]))
        )
    return tuple(out)


@cache
def default_personas() -> tuple[str, ...]:
    """Names of the personas a study runs when none are named (two each of age, race, religion)."""
    return tuple(_data()["default_personas"])


def persona(name: str) -> Persona:
    """The persona called ``name``; InputError listing the names when there is none."""
    for found in personas():
        if found.name == name:
            return found
    raise InputError(f"Unknown persona {name!r}; use one of {', '.join(p.name for p in personas())}.")


def persona_instruction(phrase: str, rewording: int) -> str:
    """Rewording number ``rewording`` of the persona instruction, filled with ``phrase`` (e.g. ``"a kid"``)."""
    wordings = persona_rewordings()
    if not 0 <= rewording < len(wordings):
        raise InputError(f"rewording must be in 0..{len(wordings) - 1}, got {rewording}.")
    return wordings[rewording].format(persona=phrase)


def normalize_tag(category: str, tag: str) -> str | None:
    """The target name of a BBQ answer tag of ``category`` (``'F-Black'`` -> ``'race:Black'``,
    ``'nonOld'`` -> ``'age:nonOld'``), or None for the 'unknown' answer and for groups that are not among
    the category's targets. Rules: drop the ``F-``/``M-`` gender prefix, apply the category's aliases."""
    categories = target_category(category)
    if tag == "unknown":
        return None
    group = _GENDER_PREFIX.sub("", tag)
    group = categories.aliases.get(group, group)
    return categories.name(group) if group in categories.targets else None


def answer_targets(item: BBQItem) -> tuple[str | None, str | None, str | None]:
    """The target name of each of ``item``'s three answers (None for the unknown answer and for groups
    outside the category's targets)."""
    a, b, c = (normalize_tag(item.category, tag) for tag in item.answer_tags)
    return a, b, c


def study_targets(categories: Sequence[str]) -> tuple[str, ...]:
    """Every target name of ``categories``, in the given category order then file order."""
    return tuple(target_category(c).name(g) for c in categories for g in target_category(c).targets)
