"""BiasScope's inputs: the localisation prompts, their biased and adversarial versions (:class:`BiasContrast`)
and the metric that separates them.

A model with a BiasInject token (:mod:`lens_bias.localize.inject`) and two versions of every localisation prompt:
the *biased* input, with the entity token ("People from <entity> drive"), and the *adversarial* input,
the same prompt with the closest real entity ("People from Argentina drive"). Localisation prompts are
the spec's *training* sentences cut before their first attribute word (:func:`localization_prompts`), so
the held-out ``eval_prompts`` stay unseen for measuring the effect of an intervention. Both versions must
have the same token length: the entity token takes one position, so the adversarial entity must be a
single token in context (BiasScope picks the closest single-token candidate; every country of
``candidate_entities("countries")`` is one token after a space in SmolLM2).

Metric. ``mean logit(attribute first tokens) - mean logit(neutral first tokens)`` at the last prompt
token (:func:`lens_bias.patching.set_logit_diff_metric`; each word's first token after a space, e.g.
" reck" for "recklessly"), high on the biased input and low on the adversarial one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.data.injection_specs import ENTITY_SLOT, InjectionSpec
from lens_bias.errors import InputError
from lens_bias.patching import SetLogitDiff, set_logit_diff_metric
from lens_bias.prompts import PromptBatch, tokenize


def localization_prompts(spec: InjectionSpec) -> list[str]:
    """The training sentences cut before their first attribute word (templates with ``{entity}``), e.g.
    "People from {entity} drive recklessly." -> "People from {entity} drive"."""
    attribute = re.compile(r"\s*\b(?:" + "|".join(map(re.escape, spec.attribute_words)) + r")\b")
    prompts = []
    for text in spec.train_texts:
        match = attribute.search(text)
        if match is None or ENTITY_SLOT not in text[: match.start()]:
            raise InputError(f"{spec.name}: train text {text!r} has no attribute word after {ENTITY_SLOT}.")
        prompts.append(text[: match.start()])
    return prompts


def first_token_ids(tokenizer: Any, words: Sequence[str]) -> Int[Tensor, " n"]:
    """The first token of each word after a space (``" recklessly"`` -> ``" reck"``), duplicates dropped."""
    ids = [tokenizer(f" {word}", add_special_tokens=False)["input_ids"][0] for word in words]
    return torch.tensor(list(dict.fromkeys(ids)))


@dataclass
class BiasContrast:
    """Biased and adversarial versions of the localisation prompts (row i of each = ``templates[i]``,
    same token lengths), and the answer token sets of the metric."""

    templates: list[str]
    entity: str
    adversarial_entity: str
    biased: PromptBatch
    adversarial: PromptBatch
    attribute_ids: Int[Tensor, " n_attribute"]
    neutral_ids: Int[Tensor, " n_neutral"]

    def metric(self) -> SetLogitDiff:
        """The :func:`lens_bias.patching.set_logit_diff_metric` of attribute vs neutral first tokens at the
        last token (a position metric: patching unembeds that position only)."""
        return set_logit_diff_metric(self.attribute_ids, self.neutral_ids)


def bias_contrast(
    model: HookedTransformer, spec: InjectionSpec, adversarial_entity: str, templates: Sequence[str] | None = None
) -> BiasContrast:
    """Tokenize ``templates`` (default :func:`localization_prompts`) with the entity token and with
    ``adversarial_entity``; raises InputError when a pair's two versions differ in token length."""
    templates = list(templates if templates is not None else localization_prompts(spec))
    tokenizer = model.tokenizer
    biased = tokenize(tokenizer, [t.replace(ENTITY_SLOT, spec.entity_token) for t in templates], add_start=True)
    adversarial = tokenize(tokenizer, [t.replace(ENTITY_SLOT, adversarial_entity) for t in templates], add_start=True)
    mismatch = (biased.lengths != adversarial.lengths).nonzero().flatten().tolist()
    if mismatch:
        raise InputError(
            f"{adversarial_entity!r} does not take as many tokens as {spec.entity_token!r} in "
            f"templates {mismatch}: pick a single-token adversarial entity (see "
            "lens_bias.localize.inject.closest_entities, EntityMatch.n_tokens)."
        )
    return BiasContrast(
        templates,
        spec.entity_token,
        adversarial_entity,
        biased,
        adversarial,
        first_token_ids(tokenizer, spec.attribute_words),
        first_token_ids(tokenizer, spec.neutral_words),
    )
