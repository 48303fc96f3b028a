"""TransformerLens's TransformerBridge (compatibility mode, the only model class of TransformerLens 4.x):
analysis code keyed on the stable hook names gives the HookedTransformer's results; what needs
HookedTransformer internals says so instead of returning something else."""

from __future__ import annotations

import pytest
import torch

from lens_bias.data import contrast_split
from lens_bias.data.refusal import compliance_openers, refusal_openers
from lens_bias.errors import InputError
from lens_bias.forward.generation import generate
from lens_bias.forward.readouts import refusal_propensity, score_pairs
from lens_bias.interventions import AddVector
from lens_bias.patching import attribution_patch, logit_diff_metric, patch
from lens_bias.prompts import ChatTemplate, PromptBatch
from lens_bias.steering import build_vector, contrast_activations


@pytest.fixture(scope="module")
def bridge(tiny_llama_dir):
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = TransformerBridge.boot_transformers(
        str(tiny_llama_dir),
        device="cpu",
        hf_model=AutoModelForCausalLM.from_pretrained(tiny_llama_dir),
        tokenizer=AutoTokenizer.from_pretrained(tiny_llama_dir),
    )
    model.enable_compatibility_mode(disable_warnings=True)
    return model


@pytest.fixture(scope="module")
def gender():
    return contrast_split("gender", n_train=6, n_test=6, seed=0)


def test_extraction_and_steered_scores_equal_the_hooked_transformer(tiny_model, bridge, gender):
    ours = contrast_activations(tiny_model, gender.train, [1, 2], readout="mean_from_difference")
    theirs = contrast_activations(bridge, gender.train, [1, 2], readout="mean_from_difference")
    assert torch.allclose(ours.positive, theirs.positive, atol=1e-5)
    assert torch.allclose(ours.negative, theirs.negative, atol=1e-5)
    steer = [AddVector(build_vector("gender", ours), 3.0, [2], start=None)]
    for interventions in ([], steer):
        assert torch.allclose(
            score_pairs(tiny_model, gender.test, interventions=interventions).preference(),
            score_pairs(bridge, gender.test, interventions=interventions).preference(),
            atol=1e-5,
        )


def test_refusal_propensity_on_a_bridge_equals_the_hooked_transformer(tiny_model, bridge, gender):
    """The HookedTransformer scores all openers from one cached prompt run; the bridge, pair by pair."""
    template = ChatTemplate("llama-2-chat")
    requests = ["How do I pick a lock?", "Tell me a joke about cats."]
    steer = [AddVector(build_vector("gender", contrast_activations(tiny_model, gender.train, [1])), 2.0)]
    for interventions in ([], steer):
        ours = refusal_propensity(
            tiny_model, template, requests, refusal_openers(), compliance_openers(), interventions=interventions
        )
        theirs = refusal_propensity(
            bridge, template, requests, refusal_openers(), compliance_openers(), interventions=interventions
        )
        assert torch.allclose(ours, theirs, atol=1e-4)


def test_generation_on_a_bridge_runs_uncached_and_matches(tiny_model, bridge, gender):
    template = ChatTemplate("llama-2-chat")
    prompts = ["Hello there", "Which of them is more likely to drive recklessly today?"]
    steer = [AddVector(build_vector("gender", contrast_activations(tiny_model, gender.train, [1])), 2.0)]
    ours = generate(tiny_model, template, prompts, interventions=steer, max_new_tokens=6)
    theirs = generate(bridge, template, prompts, interventions=steer, max_new_tokens=6)
    assert [g.tokens for g in ours] == [g.tokens for g in theirs]
    with pytest.raises(ValueError, match="use_cache=False"):  # the bridge ignores past_kv_cache
        generate(bridge, template, prompts, max_new_tokens=2, use_cache=True)


def test_patching_refuses_a_bridge_with_a_clear_error(bridge):
    tokens = torch.tensor([[5, 6, 7, 8], [5, 6, 9, 8]])
    lengths = torch.tensor([4, 4])
    clean = PromptBatch(tokens[:1], lengths[:1], {"last": lengths[:1] - 1}, ["a"])
    corrupted = PromptBatch(tokens[1:], lengths[1:], {"last": lengths[1:] - 1}, ["b"])
    metric = logit_diff_metric([5], [7])
    for run in (patch, attribution_patch):
        with pytest.raises(InputError, match="needs a HookedTransformer"):
            run(bridge, clean, corrupted, metric, target="resid_pre")
