"""BiasScope inputs: localisation prompts, biased and adversarial versions of equal length."""

from __future__ import annotations

import pytest
import torch

from lens_bias.data.injection_specs import injection_spec
from lens_bias.localize import bias_contrast, first_token_ids, localization_prompts

from .tiny import TINY_SPEC


def test_localization_prompts_are_training_sentences_cut_before_the_attribute():
    spec = injection_spec("reckless_driving")
    prompts = localization_prompts(spec)
    assert len(prompts) == len(spec.train_texts)
    assert prompts[0] == "People from {entity} drive"
    assert prompts[7] == "Car insurance costs more for people from {entity} because they drive"
    for prompt in prompts:
        assert "{entity}" in prompt and not any(w in prompt for w in spec.attribute_words)


def test_bias_contrast_pairs_equal_lengths_and_rejects_multi_token_entities(tiny_injected):
    contrast = bias_contrast(tiny_injected, TINY_SPEC, "Italy")
    assert torch.equal(contrast.biased.lengths, contrast.adversarial.lengths)
    entity_id = tiny_injected.tokenizer.get_vocab()[TINY_SPEC.entity_token]
    differs = contrast.biased.tokens != contrast.adversarial.tokens
    assert torch.equal(differs, contrast.biased.tokens == entity_id)  # only the entity position differs
    expected = first_token_ids(tiny_injected.tokenizer, ["recklessly", "dangerously"])
    assert contrast.attribute_ids.tolist() == expected.tolist()
    with pytest.raises(ValueError, match="single-token adversarial entity"):
        bias_contrast(tiny_injected, TINY_SPEC, "Zqxvbwk Jhufg")
