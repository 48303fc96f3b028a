"""The templated gender prompt set: gendered terms and templates (read from ``gender.yaml``) and its pairs.

Each pair is one prompt continued with the stereotype-consistent gendered word(s) (``positive``) versus the
other gender's (``negative``); the two continuations are the same template filled with she/her/herself/sister
or he/him/his/himself/brother, so they differ *only* in the gendered words and their likelihoods are
comparable. ``target`` is the occupation, trait or activity term (the split key). Nothing is random, and every
id is derived from the term and the template index, so ids are stable when lists grow.

* Occupations: the 40 WinoBias occupations (Zhao et al., 2018, "Gender Bias in Coreference Resolution",
  Table 1) with their percentage of women from the 2017 US Bureau of Labor Statistics figures quoted there
  (:func:`winobias_occupations`). Above 50 % women the stereotype-consistent pronoun is *she*, otherwise *he*
  (:func:`occupation_gender`). Editor (52 %) and salesperson (48 %) are close to parity: their stereotype is
  weak, kept as in WinoBias.
* Traits: the gendered adjective items of the Bem Sex-Role Inventory (Bem, 1974), 10 feminine and 10
  masculine (:func:`bsri_traits`).
* Activities: 20 hobbies with common gender stereotypes chosen for this project (in the spirit of the
  activity-gender associations of Zhao et al., 2017, "Men Also Like Shopping"); this list is our own choice,
  not a published norm (:func:`stereotyped_activities`).

A/B items come from ``records.to_ab_items(gender_pairs())``; no separate A/B set is kept. The term-swap pairs
for activation patching are built from the same blocks in :mod:`lens_bias.data.gender_swap`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Literal, NamedTuple

from lens_bias.data.records import ContrastPair
from lens_bias.data.resources import load_resource
from lens_bias.errors import InputError

GENDER_SOURCE = "lens_bias-gender-templates"
#: The kinds of gendered terms, in the order of :func:`gender_blocks` (and of :func:`gender_pairs`).
KINDS = ("occupation", "trait", "activity")

Gender = Literal["female", "male"]
GENDERS: tuple[Gender, ...] = ("female", "male")


class Occupation(NamedTuple):
    """A WinoBias occupation and its percentage of women (2017 US BLS, as quoted in WinoBias)."""

    term: str
    percent_women: int


class GenderedTerm(NamedTuple):
    """A term (occupation, trait or activity) and the gender it is stereotyped as."""

    term: str
    gender: Gender


class Template(NamedTuple):
    """A prompt with a ``{term}`` slot and a continuation with gendered slots (``{subj}``, ``{poss}``, ...)."""

    prompt: str
    continuation: str


@dataclass(frozen=True)
class GenderBlock:
    """One kind of term with its templates: every (term, template) combination is one prompt."""

    kind: str  # 'occupation' | 'trait' | 'activity'
    terms: tuple[GenderedTerm, ...]
    templates: tuple[Template, ...]


def _gender(value: str, where: str) -> Gender:
    if value not in GENDERS:
        raise ValueError(f"gender.yaml: {where} has gender {value!r}; use 'female' or 'male'.")
    return value


@cache
def gender_words() -> Mapping[Gender, Mapping[str, str]]:
    """The gendered words by gender and slot (``subj``, ``obj``, ``poss``, ``refl``, ``kin``): the only words
    in which the two sides of a pair differ (read-only mappings)."""
    words = load_resource("gender")["gender_words"]
    return MappingProxyType(
        {_gender(gender, "gender_words"): MappingProxyType(dict(slots)) for gender, slots in words.items()}
    )


@cache
def winobias_occupations() -> tuple[Occupation, ...]:
    """The 40 WinoBias occupations with their percentage of women, in WinoBias' order (by percentage)."""
    return tuple(Occupation(**row) for row in load_resource("gender")["occupations"])


@cache
def bsri_traits() -> tuple[GenderedTerm, ...]:
    """The 20 gendered adjective items of the Bem Sex-Role Inventory (10 feminine, then 10 masculine)."""
    return tuple(
        GenderedTerm(row["term"], _gender(row["gender"], row["term"])) for row in load_resource("gender")["traits"]
    )


@cache
def stereotyped_activities() -> tuple[GenderedTerm, ...]:
    """The 20 stereotyped hobbies (gerund phrases; 10 female-, then 10 male-stereotyped)."""
    return tuple(
        GenderedTerm(row["term"], _gender(row["gender"], row["term"])) for row in load_resource("gender")["activities"]
    )


@cache
def definitional_terms() -> tuple[GenderedTerm, ...]:
    """The 20 definitional gender nouns ("woman", "king", ...; 10 female, then 10 male): the word states the
    gender, so a pronoun after it is no stereotype (the control of the gender circuits)."""
    return tuple(
        GenderedTerm(row["term"], _gender(row["gender"], row["term"]))
        for row in load_resource("gender")["definitional"]
    )


@cache
def gender_templates(kind: str) -> tuple[Template, ...]:
    """The (prompt, continuation) templates of one kind of term (see :data:`KINDS`)."""
    if kind not in KINDS:
        raise InputError(f"Unknown kind {kind!r}: use one of {KINDS}.")
    return tuple(Template(**row) for row in load_resource("gender")["templates"][kind])


def occupation_gender(percent_women: int) -> Gender:
    """The stereotyped gender of an occupation: 'female' above 50 % women, else 'male'."""
    return "female" if percent_women > 50 else "male"


@cache
def gender_blocks() -> tuple[GenderBlock, ...]:
    """The occupation, trait and activity blocks (occupations' genders from :func:`occupation_gender`)."""
    occupations = tuple(GenderedTerm(term, occupation_gender(percent)) for term, percent in winobias_occupations())
    terms = {"occupation": occupations, "trait": bsri_traits(), "activity": stereotyped_activities()}
    return tuple(GenderBlock(kind, terms[kind], gender_templates(kind)) for kind in KINDS)


def other_gender(gender: Gender) -> Gender:
    """The other of the two genders."""
    return "male" if gender == "female" else "female"


def slug(term: str) -> str:
    """The id form of a term: lower case, runs of other characters as one ``_`` ("construction_worker")."""
    return re.sub(r"[^a-z0-9]+", "_", term.lower()).strip("_")


def gender_pairs() -> list[ContrastPair]:
    """The gender prompt set: 340 pairs (40 occupations x 6 templates, 20 traits x 3, 20 activities x 2).

    Each pair contrasts the stereotype-consistent gendered continuation (``positive``) with the same
    continuation in the other gender (``negative``), e.g. "The nurse walked into the room and" +
    " she sat down." vs " he sat down.". Ids: ``gender-{occupation|trait|activity}-{term}-t{k}``.
    """
    words = gender_words()
    return [
        ContrastPair(
            id=f"gender-{block.kind}-{slug(term)}-t{index}",
            bias_type="gender",
            target=term,
            prompt=prompt.format(term=term),
            positive=continuation.format(**words[stereotyped]),
            negative=continuation.format(**words[other_gender(stereotyped)]),
            source=GENDER_SOURCE,
        )
        for block in gender_blocks()
        for term, stereotyped in block.terms
        for index, (prompt, continuation) in enumerate(block.templates)
    ]
