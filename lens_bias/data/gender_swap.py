"""Clean/corrupted prompt pairs for activation patching, built from the project's gender templates.

A :class:`PatchingPair` is one prompt in two versions that differ only in a demographic term (the
*clean* prompt has a term stereotyped one way, the *corrupted* prompt the same template with a term
stereotyped the other way), plus the two answer words a logit-difference metric compares: ``positive``
is the answer the clean prompt's stereotype predicts, ``negative`` the other one. For example::

    clean      "The nurse walked into the room and"      positive " she"
    corrupted  "The carpenter walked into the room and"  negative " he"

so the metric ``logit(" she") - logit(" he")`` at the last prompt token is high on the clean prompt and
low on the corrupted one. Every (female-stereotyped term, male-stereotyped term, template) combination
is a candidate, in both orientations (clean = the female- or the male-stereotyped term), so neither
pronoun is favoured by construction.

Pairs are text only: whether clean and corrupted tokenize to the same length depends on the tokenizer,
and is checked by :func:`lens_bias.patching.patching_inputs`, which drops (and counts) the pairs that
do not. Terms and templates are those of :mod:`lens_bias.data.gender_prompts` (WinoBias occupations,
Bem Sex-Role Inventory traits, stereotyped activities); only templates whose continuation *starts* with
the gendered word are used (``" she sat down."``, ``" her keys ..."``, ``" herself a cup ..."``), so
the first answer token carries the gender.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from lens_bias.data.gender_prompts import (
    KINDS,
    GenderedTerm,
    Template,
    definitional_terms,
    gender_blocks,
    gender_templates,
    gender_words,
    other_gender,
    slug,
)
from lens_bias.errors import InputError

PATCHING_SOURCE = "lens_bias-gender-swap"
_SLOT = re.compile(r"^ \{(\w+)\}")


@dataclass(frozen=True)
class PatchingPair:
    """One clean/corrupted prompt pair and the two answers its metric compares.

    ``group`` names the template (e.g. ``"occupation-t0"``): pairs of one group share every token but
    the swapped term, so their positions line up when their terms tokenize to the same length.
    """

    id: str
    clean: str  # prompt with the term whose stereotype predicts `positive`
    corrupted: str  # the same template with a term stereotyped the other way
    positive: str  # answer word predicted by the clean prompt's stereotype, with its leading space
    negative: str  # the other gender's answer word
    clean_term: str
    corrupted_term: str
    group: str
    source: str = PATCHING_SOURCE

    def __post_init__(self) -> None:
        if self.clean == self.corrupted:
            raise InputError(f"PatchingPair {self.id}: clean and corrupted prompts are identical.")
        if self.positive == self.negative:
            raise InputError(f"PatchingPair {self.id}: positive and negative answers are identical.")


def gender_swap_groups(kinds: Sequence[str] = KINDS) -> list[str]:
    """Names of the templates :func:`gender_swap_pairs` uses (``"{kind}-t{index}"``), in order."""
    return sorted({pair.group for pair in gender_swap_pairs(kinds)}, key=_group_order)


def _group_order(group: str) -> tuple[int, int]:
    kind, index = group.rsplit("-t", 1)
    return KINDS.index(kind), int(index)


def gender_swap_pairs(kinds: Sequence[str] = KINDS, groups: Sequence[str] | None = None) -> list[PatchingPair]:
    """Every term-swap pair of the gender templates whose continuation starts with a gendered word.

    Args:
        kinds: any of ``"occupation"`` (40 WinoBias occupations: 20 female- x 20 male-stereotyped),
            ``"trait"`` (10 x 10 Bem traits) and ``"activity"`` (10 x 10 activities).
        groups: keep only these templates (``"occupation-t0"``, ...; see :func:`gender_swap_groups`).

    Returns the pairs in a fixed order: template, clean term, corrupted term. Ids:
    ``gender-swap-{group}-{clean term}-{corrupted term}``.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise InputError(f"Unknown kind(s) {sorted(unknown)}: use any of {KINDS}.")
    blocks = [(block.kind, block.terms, block.templates) for block in gender_blocks() if block.kind in kinds]
    return _swap_pairs(blocks, groups, "gender-swap", f"kinds {tuple(kinds)}")


def definitional_pairs(groups: Sequence[str] | None = None) -> list[PatchingPair]:
    """The control of :func:`gender_swap_pairs`: the occupation templates (groups ``"occupation-t{k}"``) filled
    with definitional gender nouns (:func:`~lens_bias.data.gender_prompts.definitional_terms`, 10 x 10: "The
    woman walked into the room and" / "The man ..."), where the pronoun follows from the word, not from a
    stereotype. ``positive`` is the clean term's pronoun. Ids: ``gender-definitional-{group}-{clean}-{corrupted}``."""
    blocks = [("occupation", definitional_terms(), gender_templates("occupation"))]
    return _swap_pairs(blocks, groups, "gender-definitional", "the definitional terms")


def _swap_pairs(
    blocks: Sequence[tuple[str, Sequence[GenderedTerm], Sequence[Template]]],
    groups: Sequence[str] | None,
    prefix: str,
    what: str,
) -> list[PatchingPair]:
    """Every pair of terms of opposite genders in every template of ``blocks`` (kind, terms, templates) whose
    continuation starts with a gendered slot, in the templates ``groups`` (None = all); ids ``{prefix}-...``."""
    words = gender_words()
    pairs = []
    for kind, terms, templates in blocks:
        for index, (prompt, continuation) in enumerate(templates):
            slot = _SLOT.match(continuation)
            group = f"{kind}-t{index}"
            if slot is None or (groups is not None and group not in groups):
                continue  # the continuation starts with a shared word ("my sister"): no gendered answer
            for clean_term, clean_gender in terms:
                for corrupted_term, corrupted_gender in terms:
                    if corrupted_gender == clean_gender:
                        continue
                    pairs.append(
                        PatchingPair(
                            id=f"{prefix}-{group}-{slug(clean_term)}-{slug(corrupted_term)}",
                            clean=prompt.format(term=clean_term),
                            corrupted=prompt.format(term=corrupted_term),
                            positive=" " + words[clean_gender][slot.group(1)],
                            negative=" " + words[other_gender(clean_gender)][slot.group(1)],
                            clean_term=clean_term,
                            corrupted_term=corrupted_term,
                            group=group,
                        )
                    )
    if groups is not None:
        missing = set(groups) - {pair.group for pair in pairs}
        if missing:
            usable = sorted({pair.group for pair in _swap_pairs(blocks, None, prefix, what)}, key=_group_order)
            raise InputError(f"Unknown group(s) {sorted(missing)} for {what}: use any of {usable}.")
    return pairs
