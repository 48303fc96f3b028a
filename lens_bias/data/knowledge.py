"""Factual cloze questions for the knowledge-retention readout, read and validated from ``knowledge.yaml``.

Each :class:`KnowledgeItem` is a sentence stem (``"The capital of France is"``), its one right answer
(``"Paris"``) and three wrong answers of the same type (``"Madrid"``, ``"Rome"``, ``"Berlin"``): 208 items,
26 in each of 8 domains (:func:`knowledge_domains`). The file's comments give the sources and the rules the
items were written and checked by. The readout that scores them is in :mod:`lens_bias.side_effects`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from lens_bias.data.resources import load_resource
from lens_bias.errors import InputError

#: The keys of every item of ``knowledge.yaml``.
FIELDS = ("id", "domain", "prompt", "answer", "distractors")
N_DISTRACTORS = 3


@dataclass(frozen=True)
class KnowledgeItem:
    """One cloze question: ``prompt`` ends right before the answer (no trailing space); ``answer`` and the
    3 ``distractors`` carry no leading space."""

    id: str
    domain: str
    prompt: str
    answer: str
    distractors: tuple[str, str, str]

    @property
    def options(self) -> tuple[str, ...]:
        """The right answer first, then the distractors."""
        return (self.answer, *self.distractors)

    @property
    def continuations(self) -> tuple[str, ...]:
        """:attr:`options` as scored after the prompt: each preceded by one space, the word boundary."""
        return tuple(f" {option}" for option in self.options)


def _text(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InputError(f"{where}: {key!r} must be a non-empty string without surrounding spaces, got {value!r}.")
    return value


def _item(entry: Any, index: int, domains: tuple[str, ...]) -> KnowledgeItem:
    where = f"knowledge item {index}"
    if not isinstance(entry, Mapping):
        raise InputError(f"{where} must be a mapping with keys {', '.join(FIELDS)}, got {entry!r}.")
    where = f"knowledge item {index} ({entry.get('id')!r})"
    if set(entry) != set(FIELDS):
        raise InputError(f"{where} must have exactly the keys {', '.join(FIELDS)}, got {', '.join(map(str, entry))}.")
    item_id, domain, prompt, answer = (_text(entry[key], key, where) for key in FIELDS[:4])
    if domain not in domains:
        raise InputError(f"{where}: domain {domain!r} is not one of the declared domains {', '.join(domains)}.")
    distractors = entry["distractors"]
    if not isinstance(distractors, list) or len(distractors) != N_DISTRACTORS:
        raise InputError(f"{where}: 'distractors' must be a list of exactly {N_DISTRACTORS}, got {distractors!r}.")
    wrong = tuple(_text(d, "distractors", where) for d in distractors)
    if len({option.casefold() for option in (answer, *wrong)}) != 1 + N_DISTRACTORS:
        raise InputError(f"{where}: the answer {answer!r} and distractors {list(wrong)} must be 4 distinct options.")
    return KnowledgeItem(item_id, domain, prompt, answer, (wrong[0], wrong[1], wrong[2]))


def parse_knowledge(data: Mapping[str, Any]) -> tuple[KnowledgeItem, ...]:
    """The items of a parsed ``knowledge.yaml`` (``{"domains": [...], "items": [...]}``), validated: every
    key present and non-empty, a declared domain, exactly 3 distractors, 4 distinct options (case-
    insensitive), unique ids and unique prompts. Raises InputError naming the bad entry."""
    domains, entries = data.get("domains"), data.get("items")
    if not isinstance(domains, list) or not domains or not isinstance(entries, list) or not entries:
        raise InputError("knowledge.yaml must have a non-empty 'domains' list and a non-empty 'items' list.")
    items = tuple(_item(entry, index, tuple(domains)) for index, entry in enumerate(entries))
    for key in ("id", "prompt"):
        seen: set[str] = set()
        for item in items:
            value = getattr(item, key)
            if value in seen:
                raise InputError(
                    f"knowledge item {item.id!r}: its {key} {value!r} is a duplicate; {key}s must be unique."
                )
            seen.add(value)
    return items


@cache
def _knowledge() -> tuple[KnowledgeItem, ...]:
    return parse_knowledge(load_resource("knowledge"))


@cache
def knowledge_domains() -> tuple[str, ...]:
    """The 8 domains, in file order: geography, science, history, everyday, language, animals, units, arts."""
    return tuple(load_resource("knowledge")["domains"])


def knowledge_items() -> list[KnowledgeItem]:
    """All 208 cloze questions, in file order (grouped by domain; ids ``{domain short name}-{nn}``)."""
    return list(_knowledge())
