"""The AlignEZ prompt set: bias questions, the self-generation prompts and the fallback template answers.

Read from ``alignez_questions.yaml`` (its comments say what the entries are and why):

* :func:`alignez_questions`: 49 bias-relevant questions (:class:`AlignEZQuestion`), 7 per bias type
  (:data:`BIAS_TYPES`); ``target`` is the group key (the split key of :func:`lens_bias.data.records.split_by_target`).
* :func:`alignez_prompts`: the two steps of the recipe (:class:`AlignEZPrompts`): describe the traits of a
  helpful / harmful answer, then answer following a description.
* :func:`alignez_templates` / :func:`template_pair`: per bias type, the template helpful and harmful answers a
  question falls back to when the model's own pair is not usable.

:func:`parse_questions` is the validation the loader runs; it raises :class:`InputError` on a malformed entry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import cache
from typing import Any

from lens_bias.data.resources import load_resource
from lens_bias.errors import InputError

RESOURCE = "alignez_questions"
BIAS_TYPES = ("gender", "race", "religion", "age", "profession", "disability", "nationality")
_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([a-z])")


def _require_text(owner: str, name: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{owner}.{name} must be a non-empty string, got {value!r}.")


@dataclass(frozen=True)
class AlignEZQuestion:
    """A bias-relevant question: ``group`` is the group it is about as a plural noun phrase (filled into the
    prompts and templates), ``target`` the group key (split key), ``bias_type`` one of :data:`BIAS_TYPES`."""

    id: str
    bias_type: str
    target: str
    group: str
    text: str

    def __post_init__(self) -> None:
        for item in fields(self):
            _require_text("AlignEZQuestion", item.name, getattr(self, item.name))
        if self.bias_type not in BIAS_TYPES:
            raise InputError(
                f"AlignEZQuestion {self.id!r}: bias_type {self.bias_type!r} is not one of {', '.join(BIAS_TYPES)}."
            )
        if not self.text.rstrip().endswith("?"):
            raise InputError(f"AlignEZQuestion {self.id!r}: text must be a question ending in '?', got {self.text!r}.")


@dataclass(frozen=True)
class AlignEZPrompts:
    """The user messages of the two steps. ``describe_*`` take ``{question}`` and ``{group}``; ``answer_*`` take
    ``{description}`` and ``{question}``. ``default_*_description`` (``{group}`` slot) stand in for a description
    the model left empty, as the reference code does ("Your answer should be helpful")."""

    describe_helpful: str
    describe_harmful: str
    answer_helpful: str
    answer_harmful: str
    default_helpful_description: str
    default_harmful_description: str

    def __post_init__(self) -> None:
        slots = {
            "describe_helpful": ("{question}", "{group}"),
            "describe_harmful": ("{question}", "{group}"),
            "answer_helpful": ("{description}", "{question}"),
            "answer_harmful": ("{description}", "{question}"),
            "default_helpful_description": (),
            "default_harmful_description": (),
        }
        for name, needed in slots.items():
            value = getattr(self, name)
            _require_text("AlignEZPrompts", name, value)
            missing = [slot for slot in needed if slot not in value]
            if missing:
                raise InputError(f"AlignEZPrompts.{name} lacks the slot(s) {', '.join(missing)}: {value!r}.")


@dataclass(frozen=True)
class FallbackTemplates:
    """Template answers of one bias type (``{group}`` slot); ``helpful[k]`` pairs with ``harmful[k]``."""

    helpful: tuple[str, ...]
    harmful: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.helpful or len(self.helpful) != len(self.harmful):
            raise InputError(
                f"FallbackTemplates need as many helpful as harmful answers (at least one), got "
                f"{len(self.helpful)} and {len(self.harmful)}."
            )
        for text in (*self.helpful, *self.harmful):
            _require_text("FallbackTemplates", "answer", text)
            if "{group}" not in text:
                raise InputError(f"A fallback template lacks the {{group}} slot: {text!r}.")


def parse_questions(rows: Sequence[Mapping[str, Any]]) -> tuple[AlignEZQuestion, ...]:
    """Questions from YAML rows (mappings with exactly the :class:`AlignEZQuestion` fields), with unique ids.
    InputError names the row and the problem (missing or unknown keys, a duplicate id, a bad field)."""
    names = {item.name for item in fields(AlignEZQuestion)}
    questions: list[AlignEZQuestion] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise InputError(f"Question {index} must be a mapping of {sorted(names)}, got {row!r}.")
        missing, unknown = names - set(row), set(row) - names
        if missing or unknown:
            raise InputError(
                f"Question {index} ({row.get('id')!r}): missing keys {sorted(missing)}, unknown keys {sorted(unknown)}."
            )
        questions.append(AlignEZQuestion(**row))
    ids = [question.id for question in questions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(f"Duplicate question ids: {', '.join(duplicates)}.")
    if not questions:
        raise InputError("No questions: the question list is empty.")
    return tuple(questions)


@cache
def alignez_questions() -> tuple[AlignEZQuestion, ...]:
    """The 49 questions of ``alignez_questions.yaml``, in file order (7 per bias type)."""
    return parse_questions(load_resource(RESOURCE)["questions"])


@cache
def alignez_prompts() -> AlignEZPrompts:
    """The prompts of the two self-generation steps."""
    return AlignEZPrompts(**load_resource(RESOURCE)["prompts"])


@cache
def alignez_templates() -> dict[str, FallbackTemplates]:
    """Fallback template answers per bias type; every type of :data:`BIAS_TYPES` has some."""
    raw = load_resource(RESOURCE)["templates"]
    missing = [bias_type for bias_type in BIAS_TYPES if bias_type not in raw]
    if missing:
        raise InputError(f"alignez_questions.yaml has no fallback templates for {', '.join(missing)}.")
    return {
        bias_type: FallbackTemplates(tuple(entry["helpful"]), tuple(entry["harmful"]))
        for bias_type, entry in raw.items()
    }


def fill_group(text: str, group: str) -> str:
    """``text`` with ``{group}`` filled in and every sentence start capitalised ("{group} are ..." with
    ``"older people"`` -> "Older people are ...")."""
    filled = text.replace("{group}", group)
    return _SENTENCE_START.sub(lambda match: match.group(1) + match.group(2).upper(), filled)


def template_pair(question: AlignEZQuestion) -> tuple[str, str]:
    """The fallback ``(helpful, harmful)`` answers of a question: the templates of its bias type, variant
    ``sha256(id) mod n`` (fixed per question, whatever else is in the set), ``{group}`` filled in."""
    templates = alignez_templates()[question.bias_type]
    variant = int(hashlib.sha256(question.id.encode("utf-8")).hexdigest()[:8], 16) % len(templates.helpful)
    return fill_group(templates.helpful[variant], question.group), fill_group(
        templates.harmful[variant], question.group
    )
