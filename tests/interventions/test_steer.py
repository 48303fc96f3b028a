"""Steering interventions: where AddVector acts (instruction end on, KV-cached generation), hooks restored
after errors, ProjectOut."""

from __future__ import annotations

import pytest
import torch

from lens_bias.directions import SteeringVector, Subspace
from lens_bias.errors import InputError
from lens_bias.forward.generation import generate
from lens_bias.forward.readouts import continuation_logprobs
from lens_bias.interventions import AddVector, ForwardContext, ProjectOut, SubspaceEdit, hooks_added
from lens_bias.prompts import ChatTemplate, chat_batch

TEMPLATE = ChatTemplate("llama-2-chat")


def test_add_vector_only_from_instruction_end(tiny_model):
    vector = SteeringVector("v", (1,), torch.ones(1, tiny_model.cfg.d_model), torch.ones(1))
    batch = chat_batch(tiny_model.tokenizer, TEMPLATE, ["short", "a longer prompt here"], "Sure")
    context = ForwardContext(batch)
    ((name, add),) = AddVector(vector, 2.0, start="instruction_end").hooks(tiny_model, context)
    base = torch.zeros(2, batch.tokens.shape[1], tiny_model.cfg.d_model)
    out = add(base, None)
    for row in range(2):
        first = int(batch.positions["instruction_end"][row])
        assert torch.all(out[row, :first] == 0) and torch.all(out[row, first:] == 2.0)
    context.offset = 100  # a cached generation step: every position is after the instruction
    assert torch.all(add(torch.zeros(2, 1, tiny_model.cfg.d_model), None) == 2.0)
    assert name == "blocks.1.hook_resid_post"


def test_steered_generation_same_with_and_without_kv_cache(tiny_model):
    torch.manual_seed(0)
    vector = SteeringVector("v", (1, 2), torch.randn(2, tiny_model.cfg.d_model) * 3, torch.ones(2))
    prompts = ["How do I bake bread?", "Which is more likely? Choices: (A) yes (B) no"]
    for steer in ([], [AddVector(vector, 1.5)]):
        cached = generate(tiny_model, TEMPLATE, prompts, interventions=steer, max_new_tokens=12, use_cache=True)
        full = generate(tiny_model, TEMPLATE, prompts, interventions=steer, max_new_tokens=12, use_cache=False)
        assert [g.tokens for g in cached] == [g.tokens for g in full]
    one_by_one = [
        generate(tiny_model, TEMPLATE, [p], interventions=[AddVector(vector, 1.5)], max_new_tokens=12)[0]
        for p in prompts
    ]
    batched = generate(tiny_model, TEMPLATE, prompts, interventions=[AddVector(vector, 1.5)], max_new_tokens=12)
    assert [g.tokens for g in one_by_one] == [g.tokens for g in batched]  # padding is masked
    plain = generate(tiny_model, TEMPLATE, prompts, max_new_tokens=12)
    steered = generate(tiny_model, TEMPLATE, prompts, interventions=[AddVector(vector, 1.5)], max_new_tokens=12)
    assert [g.tokens for g in plain] != [g.tokens for g in steered]  # the vector reaches generated tokens


def test_first_generated_token_is_steered(tiny_model):
    """The vector acts at the instruction's last token, so it changes the very first answer token."""
    batch = chat_batch(tiny_model.tokenizer, TEMPLATE, ["How do I bake bread?"])
    with torch.inference_mode():
        base = tiny_model(batch.tokens)[0, -1]
    torch.manual_seed(1)
    vector = SteeringVector("v", (3,), torch.randn(1, tiny_model.cfg.d_model) * 5, torch.ones(1))
    from lens_bias.interventions import applied

    with applied(tiny_model, [AddVector(vector, 1.0)], ForwardContext(batch)), torch.inference_mode():
        steered = tiny_model(batch.tokens)[0, -1]
    assert not torch.allclose(base, steered)


def test_hooks_restored_after_an_error_during_steering(tiny_model):
    vector = SteeringVector("v", (1,), torch.ones(1, tiny_model.cfg.d_model), torch.ones(1))
    before = {n: len(h.fwd_hooks) for n, h in tiny_model.hook_dict.items()}
    with pytest.raises(ValueError, match="Empty continuation"):
        continuation_logprobs(tiny_model, ["a"], [" "], interventions=[AddVector(vector, 1.0, start=None)])
    with pytest.raises(ValueError, match="positions"):  # start position missing from the batch
        continuation_logprobs(tiny_model, ["a"], [" b"], interventions=[AddVector(vector, 1.0)])
    assert before == {n: len(h.fwd_hooks) for n, h in tiny_model.hook_dict.items()}


def test_project_out_removes_the_direction(tiny_model):
    vector = SteeringVector("v", (2,), torch.randn(1, tiny_model.cfg.d_model), torch.ones(1))
    batch = chat_batch(tiny_model.tokenizer, TEMPLATE, ["hello"])
    ((_name, project),) = ProjectOut(vector).hooks(tiny_model, ForwardContext(batch))
    x = torch.randn(1, 5, tiny_model.cfg.d_model)
    assert torch.allclose(project(x, None) @ vector.at(2), torch.zeros(1, 5), atol=1e-4)


def _foreign(width: int, layers: tuple[int, ...] = (1,)) -> SteeringVector:
    """A vector of another model: ``width`` numbers per layer (the embedded model's d_model is 576)."""
    return SteeringVector("foreign", layers, torch.ones(len(layers), width), torch.ones(len(layers)))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: AddVector(_foreign(576), 1.0, start=None), r"'foreign' has width 576, but .* has d_model 64"),
        (lambda: ProjectOut(_foreign(576)), r"'foreign' has width 576, but .* has d_model 64"),
        (lambda: AddVector(_foreign(64, (7,)), 1.0, start=None), r"Layer 7 is outside the model"),
        (lambda: ProjectOut(_foreign(64, (1, 2)), [3]), r"'foreign' has no direction at layer 3"),
        (lambda: SubspaceEdit(Subspace({1: torch.eye(32)[:2]}, "resid_post", 0.9, {}), "boost"), r"width 32.*64"),
        (lambda: SubspaceEdit(Subspace({9: torch.eye(64)[:2]}, "resid_post", 0.9, {}), "remove"), r"Layer 9 is out"),
        (lambda: SubspaceEdit(Subspace({1: torch.eye(64)[:2]}, "resid_post", 0.9, {}), "boost", [2]), "no basis at"),
    ],
)
def test_an_intervention_that_does_not_fit_the_model_is_refused_before_any_forward(tiny_model, make, message):
    intervention = make()
    with pytest.raises(InputError, match=message):
        intervention.check(tiny_model)
    calls = []
    with pytest.raises(InputError, match=message):
        continuation_logprobs(tiny_model, ["a"], [" b"], interventions=[intervention], batch_size=1)
    with (
        hooks_added(tiny_model, [("blocks.0.hook_resid_pre", lambda act, hook: calls.append(1))]),
        pytest.raises(InputError, match=message),
    ):
        continuation_logprobs(tiny_model, ["a"], [" b"], interventions=[intervention], batch_size=1)
    assert calls == []  # no forward pass ran


def test_applied_and_fwd_hooks_are_transformer_lens_idioms(tiny_model):
    """``with intervention.applied(model):`` and ``model.run_with_hooks(fwd_hooks=intervention.fwd_hooks(model))``
    give the readouts' steered logits; afterwards the model runs unsteered, and hooks attached before stay."""
    torch.manual_seed(0)
    vector = SteeringVector("v", (1,), torch.randn(1, tiny_model.cfg.d_model) * 3, torch.ones(1))
    steer = AddVector(vector, 2.0, start=None)
    tokens = tiny_model.to_tokens(["The nurse said that"])
    with torch.inference_mode():
        plain = tiny_model(tokens)
        with steer.applied(tiny_model):
            inside = tiny_model(tokens)
        hooked = tiny_model.run_with_hooks(tokens, fwd_hooks=steer.fwd_hooks(tiny_model))
        after = tiny_model(tokens)
        seen = []
        with hooks_added(tiny_model, [("blocks.0.hook_resid_pre", lambda x, hook: seen.append(1))]):
            with steer.applied(tiny_model):
                tiny_model(tokens)
            tiny_model(tokens)
    assert not torch.allclose(plain, inside) and torch.equal(inside, hooked)
    assert torch.equal(plain, after) and seen == [1, 1]  # the user's own hook survived the block
    with pytest.raises(InputError, match="instruction_end"), torch.inference_mode():
        tiny_model.run_with_hooks(tokens, fwd_hooks=AddVector(vector, 2.0).fwd_hooks(tiny_model))
