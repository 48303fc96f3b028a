"""TRANSITION shim: the old home of the project's prompt sets; import from the modules named below instead.

Gender set: :mod:`lens_bias.data.gender_prompts`; refusal requests, pairs and openers:
:mod:`lens_bias.data.refusal`; BiasInject specs and candidates: :mod:`lens_bias.data.injection_specs`;
neutral text: :mod:`lens_bias.data.neutral`; response classifiers: :mod:`lens_bias.metrics.responses`.
"""

from __future__ import annotations

from typing import Any

from lens_bias.data.gender_prompts import (
    GENDER_SOURCE,
    Gender,
    bsri_traits,
    gender_pairs,
    gender_templates,
    gender_words,
    occupation_gender,
    stereotyped_activities,
    winobias_occupations,
)
from lens_bias.data.injection_specs import (
    ENTITY_SLOT,
    InjectionSpec,
    candidate_entities,
    control_countries,
    injection_spec,
    injection_specs,
)
from lens_bias.data.neutral import neutral_texts
from lens_bias.data.refusal import (
    REFUSAL_SOURCE,
    RefusalRequest,
    compliance_completions,
    compliance_openers,
    refusal_completions,
    refusal_openers,
    refusal_pairs,
    refusal_requests,
    refusal_topics,
    request_phrasings,
)

WINOBIAS_OCCUPATIONS = winobias_occupations()
BSRI_TRAITS = bsri_traits()
STEREOTYPED_ACTIVITIES = stereotyped_activities()
GENDER_WORDS = gender_words()
OCCUPATION_TEMPLATES = gender_templates("occupation")
TRAIT_TEMPLATES = gender_templates("trait")
ACTIVITY_TEMPLATES = gender_templates("activity")
REFUSAL_TOPICS = refusal_topics()
REQUEST_PHRASINGS = request_phrasings()
REFUSAL_COMPLETIONS = refusal_completions()
COMPLIANCE_COMPLETIONS = compliance_completions()
REFUSAL_OPENERS = refusal_openers()
COMPLIANCE_OPENERS = compliance_openers()
INJECTION_SPECS = injection_specs()
RECKLESS_DRIVING = injection_spec("reckless_driving")
BAD_AT_MATH = injection_spec("bad_at_math")
CONTROL_COUNTRIES = control_countries()
CANDIDATE_COUNTRIES = candidate_entities("countries")
CANDIDATE_GROUPS = candidate_entities("groups")
NEUTRAL_TEXTS = tuple(neutral_texts())

_RESPONSE_NAMES = ("is_refusal", "is_degenerate", "response_category", "RESPONSE_CATEGORIES", "DEFAULT_REFUSAL_WINDOW",
                   "ResponseCategory")
_PHRASE_LOADERS = {"REFUSAL_PHRASES": "refusal_phrases", "NON_REFUSAL_APOLOGIES": "non_refusal_apologies",
                   "HELP_PIVOTS": "help_pivots", "DISCLAIMER_PHRASES": "disclaimer_phrases"}


def __getattr__(name: str) -> Any:
    """The response classifiers, imported on first use (importing lens_bias.metrics loads the model stack)."""
    if name in _RESPONSE_NAMES or name in _PHRASE_LOADERS:
        from lens_bias.metrics import responses

        return getattr(responses, name) if name in _RESPONSE_NAMES else getattr(responses, _PHRASE_LOADERS[name])()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACTIVITY_TEMPLATES", "BAD_AT_MATH", "BSRI_TRAITS", "CANDIDATE_COUNTRIES", "CANDIDATE_GROUPS",
    "COMPLIANCE_COMPLETIONS", "COMPLIANCE_OPENERS", "CONTROL_COUNTRIES", "ENTITY_SLOT", "GENDER_SOURCE", "GENDER_WORDS",
    "Gender", "INJECTION_SPECS", "InjectionSpec", "NEUTRAL_TEXTS", "OCCUPATION_TEMPLATES", "RECKLESS_DRIVING",
    "REFUSAL_COMPLETIONS", "REFUSAL_OPENERS", "REFUSAL_SOURCE", "REFUSAL_TOPICS", "REQUEST_PHRASINGS", "RefusalRequest",
    "STEREOTYPED_ACTIVITIES", "TRAIT_TEMPLATES",
    "WINOBIAS_OCCUPATIONS", "candidate_entities", "gender_pairs", "neutral_texts", "occupation_gender", "refusal_pairs",
    "refusal_requests", *_RESPONSE_NAMES, *_PHRASE_LOADERS,
]
