"""Contrast activations: batched equals one at a time, A/B answer letters, an independent HF computation."""

from __future__ import annotations

import pytest
import torch

from lens_bias.data.records import ABItem
from lens_bias.prompts import ChatTemplate, chat_batch
from lens_bias.steering import build_vector, contrast_activations

from .pairs import PAIRS

TEMPLATE = ChatTemplate("llama-2-chat")


def test_batched_extraction_equals_one_at_a_time(tiny_gqa_model):
    batched = contrast_activations(tiny_gqa_model, PAIRS, [0, 2], batch_size=4)
    for i, pair in enumerate(PAIRS):
        single = contrast_activations(tiny_gqa_model, [pair], [0, 2])
        assert torch.allclose(batched.positive[i], single.positive[0], atol=1e-5)
        assert torch.allclose(batched.negative[i], single.negative[0], atol=1e-5)


def test_ab_contrast_reads_the_answer_letter(tiny_model):
    items = [
        ABItem(
            id=str(i),
            bias_type="gender",
            target=t,
            question=f"Who is the {t}?",
            choices=("a woman", "a man"),
            positive_letter=l,
            source="test",
        )
        for i, (t, l) in enumerate([("nurse", "A"), ("pilot", "B")])
    ]
    acts = contrast_activations(tiny_model, items, [3], template=TEMPLATE)
    _, cache = tiny_model.run_with_cache(
        chat_batch(
            tiny_model.tokenizer, TEMPLATE, ["Who is the nurse?\n\nChoices:\n(A) a woman\n(B) a man"], "(A"
        ).tokens
    )
    assert torch.allclose(acts.positive[0, 0], cache["blocks.3.hook_resid_post"][0, -1], atol=1e-5)
    with pytest.raises(ValueError, match="chat template"):
        contrast_activations(tiny_model, items, [3])


def test_vector_matches_plain_hf_forward_hooks(tiny_llama_dir, tiny_model):
    """An independent computation: HF model, PyTorch forward hooks on the decoder layers."""
    from transformers import AutoModelForCausalLM

    from .hf_reference import hf_last_token_mean_difference

    hf = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    layer = 2
    vector = build_vector("g", contrast_activations(tiny_model, PAIRS, [layer]))
    reference = hf_last_token_mean_difference(hf, tiny_model.tokenizer, PAIRS, layer)
    assert torch.nn.functional.cosine_similarity(reference, vector.at(layer), dim=0) >= 0.9999
