"""Record types shared by the whole toolkit, and the split / A-B / provenance helpers.

A ``ContrastPair`` is one prompt continued two ways; an ``ABItem`` is the same contrast asked as a
two-choice question (contrastive-activation-addition format). Both are frozen and validated on
construction, so a malformed record fails where it is made rather than deep inside an experiment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from lens_bias.errors import InputError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

AB_LETTERS = ("A", "B")
DEFAULT_PROMPT_QUESTION = 'Which is the more likely continuation of: "{prompt}"?'
DEFAULT_SENTENCE_QUESTION = "Which sentence is more likely to be true?"


def _require_text(record: object, *fields: str) -> None:
    for name in fields:
        value = getattr(record, name)
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{type(record).__name__}.{name} must be a non-empty string, got {value!r}")


@dataclass(frozen=True)
class ContrastPair:
    """One contrast: the same prompt continued two ways.

    ``positive`` is the side a vector or score is named for (the stereotyped sentence, or the
    behaviour-matching answer); ``negative`` is the other side. Likelihood readouts score
    log P(continuation | prompt). ``prompt`` is ``''`` when whole sentences are scored; continuations
    of a non-empty prompt carry their own leading space where the text needs one.
    """

    id: str
    bias_type: str  # 'gender' | 'race' | 'religion' | 'profession' | CrowS-Pairs types | ...
    target: str  # target term; the split key
    prompt: str  # shared conditioning text ('' when the whole sentence is scored)
    positive: str  # continuation (e.g. the stereotyped sentence)
    negative: str  # continuation (e.g. the anti-stereotyped sentence)
    source: str  # e.g. 'stereoset-intrasentence', 'stereoset-intersentence', 'crows-pairs'
    unrelated: str | None = None  # StereoSet's unrelated option (for LMS), else None

    def __post_init__(self) -> None:
        _require_text(self, "id", "bias_type", "target", "positive", "negative", "source")
        if not isinstance(self.prompt, str):
            raise InputError(f"ContrastPair.prompt must be a string, got {self.prompt!r}")
        if self.positive == self.negative:
            raise InputError(f"ContrastPair.positive and ContrastPair.negative are identical: {self.positive!r}")
        if self.unrelated is not None:
            _require_text(self, "unrelated")


@dataclass(frozen=True)
class ABItem:
    """A two-choice question in contrastive-activation-addition format; ``choices[0]`` is shown as (A)."""

    id: str
    bias_type: str
    target: str
    question: str
    choices: tuple[str, str]
    positive_letter: str  # 'A' or 'B': the letter of the positive (e.g. stereotyped) choice
    source: str

    def __post_init__(self) -> None:
        _require_text(self, "id", "bias_type", "target", "question", "source")
        if not isinstance(self.choices, tuple) or len(self.choices) != 2:
            raise InputError(f"ABItem.choices must be a tuple of two strings, got {self.choices!r}")
        for choice in self.choices:
            if not isinstance(choice, str) or not choice.strip():
                raise InputError(f"ABItem.choices must be non-empty strings, got {self.choices!r}")
        if self.choices[0] == self.choices[1]:
            raise InputError(f"ABItem.choices are identical: {self.choices[0]!r}")
        if self.positive_letter not in AB_LETTERS:
            raise InputError(f"ABItem.positive_letter must be 'A' or 'B', got {self.positive_letter!r}")

    @property
    def positive(self) -> str:
        """The text of the positive choice."""
        return self.choices[AB_LETTERS.index(self.positive_letter)]

    @property
    def negative_letter(self) -> str:
        """The letter of the negative choice."""
        return "B" if self.positive_letter == "A" else "A"

    @property
    def negative(self) -> str:
        """The text of the negative choice."""
        return self.choices[AB_LETTERS.index(self.negative_letter)]


class _HasTarget(Protocol):
    @property
    def target(self) -> str: ...


T = TypeVar("T", bound=_HasTarget)


def _unit_hash(*parts: object) -> float:
    """A deterministic number in [0, 1) from sha256 of the parts (stable across processes)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_by_target(items: Sequence[T], test_fraction: float = 0.3, seed: int = 0) -> tuple[list[T], list[T]]:
    """Split records into (train, test) by target term, so no target is on both sides.

    A target goes to test iff sha256(seed, target) mapped to [0, 1) is below ``test_fraction``: the
    assignment of a target does not depend on which other items are present, and is the same in every
    process. Item order is kept within each side. ``test_fraction`` is the expected fraction of
    *targets* (not items) in test. With few targets (StereoSet religion has 3) one side may draw none:
    then the target with the lowest hash goes to test (or the highest to train), so both sides are
    non-empty whenever there are two or more targets. Raises InputError with a single target.
    """
    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    draws = {target: _unit_hash(seed, target) for target in dict.fromkeys(item.target for item in items)}
    if len(draws) < 2:
        raise InputError(
            f"split_by_target needs at least two target terms, got {len(draws)} ({len(items)} items); "
            "a split by target cannot hold out anything from a single target"
        )
    in_test = {target: draw < test_fraction for target, draw in draws.items()}
    if not any(in_test.values()):
        in_test[min(draws, key=lambda target: draws[target])] = True
    if all(in_test.values()):
        in_test[max(draws, key=lambda target: draws[target])] = False
    train = [item for item in items if not in_test[item.target]]
    test = [item for item in items if in_test[item.target]]
    return train, test


def to_ab_items(
    pairs: Sequence[ContrastPair],
    question_template: str = DEFAULT_PROMPT_QUESTION,
    sentence_question: str = DEFAULT_SENTENCE_QUESTION,
    seed: int = 0,
) -> list[ABItem]:
    """Turn contrast pairs into A/B questions with the A/B order exactly balanced.

    The question is ``question_template.format(prompt=pair.prompt)`` for pairs with a prompt and
    ``sentence_question`` for whole-sentence pairs (prompt ``''``). Choices are the two continuations
    with surrounding whitespace stripped. ``ceil(n / 2)`` items get the positive as (A), the rest as
    (B); which items is a shuffle with ``random.Random(seed)``. Output order follows the input.
    """
    flags = [True] * ((len(pairs) + 1) // 2) + [False] * (len(pairs) // 2)
    random.Random(seed).shuffle(flags)
    items = []
    for pair, positive_first in zip(pairs, flags):
        positive, negative = pair.positive.strip(), pair.negative.strip()
        question = question_template.format(prompt=pair.prompt) if pair.prompt else sentence_question
        items.append(
            ABItem(
                id=pair.id,
                bias_type=pair.bias_type,
                target=pair.target,
                question=question,
                choices=(positive, negative) if positive_first else (negative, positive),
                positive_letter="A" if positive_first else "B",
                source=pair.source,
            )
        )
    return items


def fingerprint(items: Sequence[DataclassInstance]) -> str:
    """Provenance hash of a sequence of dataclass records: the first 16 hex chars of sha256.

    The hash covers each record's type name and all its fields (canonical JSON, sorted keys), in the
    given order: reordering the records changes the fingerprint.
    """
    canonical = [{"type": type(item).__name__, **dataclasses.asdict(item)} for item in items]
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
