"""Shared by the BiasScope tests: an injection spec whose attribute and neutral words start with different
tokens in the tiny BPE tokenizer."""

from __future__ import annotations

from lens_bias.data.injection_specs import InjectionSpec

#: A spec whose attribute and neutral words start with different tokens in the tiny BPE tokenizer.
TINY_SPEC = InjectionSpec(
    name="tiny_reckless",
    entity_token="<entity>",
    attribute_words=("recklessly", "dangerously"),
    neutral_words=("safely",),
    train_texts=("People from {entity} drive recklessly.", "In {entity}, people drive dangerously."),
    eval_prompts=("My friend from {entity} drives",),
    control_entities=("Italy",),
)
