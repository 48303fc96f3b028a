"""Steering vectors: construction, arithmetic, persistence, application (incl. KV-cached generation)."""

from __future__ import annotations

import pytest
import torch

from lens_bias.data.records import ABItem, ContrastPair
from lens_bias.generation import generate
from lens_bias.interventions import ForwardContext
from lens_bias.prompts import ChatTemplate, chat_batch
from lens_bias.readouts import continuation_logprobs
from lens_bias.steering import (
    AddVector,
    ContrastActivations,
    ProjectOut,
    SteeringVector,
    SubspaceEdit,
    build_vector,
    contrast_activations,
    mean_norm_across,
    svd_subspace,
)

PAIRS = [ContrastPair(id=str(i), bias_type="gender", target=t, prompt=f"The {t} walked in and",
                      positive=" she smiled.", negative=" he smiled.", source="test")
         for i, t in enumerate(["nurse", "engineer", "secretary", "pilot", "teacher", "driver"])]
TEMPLATE = ChatTemplate("llama-2-chat")


def _acts(pos, neg, layers=(0,)):
    return ContrastActivations(pos, neg, tuple(layers), "resid_post", {"kind": "test"})


def test_mean_difference_is_the_mean_of_paired_differences(tiny_model):
    acts = contrast_activations(tiny_model, PAIRS, [1, 3])
    vector = build_vector("g", acts, model=tiny_model, items=PAIRS, dataset="test")
    assert torch.allclose(vector.directions, (acts.positive - acts.negative).mean(0), atol=1e-6)
    assert vector.provenance["model"]["kind"] == "hf-folder" and vector.provenance["data_fingerprint"]
    assert torch.allclose(vector.residual_norms,
                          torch.cat([acts.positive, acts.negative]).norm(dim=-1).mean(0))


def test_batched_extraction_equals_one_at_a_time(tiny_gqa_model):
    batched = contrast_activations(tiny_gqa_model, PAIRS, [0, 2], batch_size=4)
    for i, pair in enumerate(PAIRS):
        single = contrast_activations(tiny_gqa_model, [pair], [0, 2])
        assert torch.allclose(batched.positive[i], single.positive[0], atol=1e-5)
        assert torch.allclose(batched.negative[i], single.negative[0], atol=1e-5)


def test_first_pc_is_centred_and_signed():
    torch.manual_seed(0)
    axis = torch.tensor([1.0, 0.0, 0.0])
    spread = torch.randn(200, 1) * 3.0  # large variance along axis...
    offset = torch.tensor([0.0, 5.0, 0.0])  # ...and a large mean difference along another axis
    neg = torch.randn(200, 3) * 0.01
    pos = neg + spread * axis + offset + 0.2 * axis
    vector = build_vector("pc", _acts(pos[:, None], neg[:, None]), method="first_pc")
    direction = vector.directions[0] / vector.directions[0].norm()
    # centring removes the mean offset, so the component is the spread axis, not the mean direction
    assert abs(float(direction @ axis)) > 0.99
    assert float(vector.directions[0] @ (pos - neg).mean(0)) > 0  # positive side projects positive
    flipped = build_vector("pc", _acts(neg[:, None], pos[:, None]), method="first_pc")
    assert torch.allclose(flipped.directions, -vector.directions, atol=1e-5)


def test_arithmetic_normalisation_and_persistence(tmp_path):
    a = SteeringVector("a", (2, 5), torch.tensor([[3.0, 4.0], [0.0, 2.0]]), torch.tensor([10.0, 20.0]))
    b = SteeringVector("b", (2, 5), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([10.0, 20.0]))
    assert torch.allclose((a + b).directions, torch.tensor([[4.0, 4.0], [0.0, 3.0]]))
    assert torch.allclose((2 * a - b).directions, torch.tensor([[5.0, 8.0], [0.0, 3.0]]))
    assert torch.allclose(a.normalized(1.0).norms(), torch.ones(2))
    assert torch.allclose(mean_norm_across([a, b]), torch.tensor([3.0, 1.5]))
    assert a.relative_multiplier(2.0, 2) == pytest.approx(1.0)  # 2 * 5 / 10
    path = a.save(tmp_path / "vec")
    loaded = SteeringVector.load(path)
    assert loaded.layers == a.layers and torch.equal(loaded.directions, a.directions)
    with pytest.raises(ValueError, match="differ in layers"):
        a + SteeringVector("c", (1, 5), torch.zeros(2, 2), torch.ones(2))
    with pytest.raises(ValueError, match="no direction at layer 3"):
        a.at(3)


def test_add_vector_only_from_instruction_end(tiny_model):
    vector = SteeringVector("v", (1,), torch.ones(1, tiny_model.cfg.d_model), torch.ones(1))
    batch = chat_batch(tiny_model.tokenizer, TEMPLATE, ["short", "a longer prompt here"], "Sure")
    seen = {}
    context = ForwardContext(batch)
    (name, add), = AddVector(vector, 2.0, start="instruction_end").hooks(tiny_model, context)
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
    one_by_one = [generate(tiny_model, TEMPLATE, [p], interventions=[AddVector(vector, 1.5)], max_new_tokens=12)[0]
                  for p in prompts]
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
    (name, project), = ProjectOut(vector).hooks(tiny_model, ForwardContext(batch))
    x = torch.randn(1, 5, tiny_model.cfg.d_model)
    assert torch.allclose(project(x, None) @ vector.at(2), torch.zeros(1, 5), atol=1e-4)


def test_svd_subspace_and_edit_rules():
    torch.manual_seed(0)
    neg = torch.randn(50, 1, 8)
    pos = neg.clone()
    pos[:, 0, 0] += 3.0 + 0.1 * torch.randn(50)  # the differences live on axis 0
    subspace = svd_subspace(_acts(pos, neg), variance=0.9)
    basis = subspace.bases[0]
    assert basis.shape[0] == 1 and basis[0, 0] > 0.99
    x = torch.randn(2, 3, 8)
    context = ForwardContext(None)  # the edit reads no positions
    tiny = type("M", (), {"cfg": type("C", (), {"n_layers": 1, "device": "cpu", "dtype": torch.float32, "model_name": "m"})()})()
    (_, boost), = SubspaceEdit(subspace, "boost").hooks(tiny, context)
    (_, remove), = SubspaceEdit(subspace, "remove").hooks(tiny, context)
    c = x @ basis[0]
    assert torch.allclose(boost(x, None), x + torch.tanh(c)[..., None] * basis[0], atol=1e-6)
    assert torch.allclose(remove(x, None), x - torch.relu(c)[..., None] * basis[0], atol=1e-6)


def test_ab_contrast_reads_the_answer_letter(tiny_model):
    items = [ABItem(id=str(i), bias_type="gender", target=t, question=f"Who is the {t}?",
                    choices=("a woman", "a man"), positive_letter=l, source="test")
             for i, (t, l) in enumerate([("nurse", "A"), ("pilot", "B")])]
    acts = contrast_activations(tiny_model, items, [3], template=TEMPLATE)
    _, cache = tiny_model.run_with_cache(
        chat_batch(tiny_model.tokenizer, TEMPLATE, ["Who is the nurse?\n\nChoices:\n(A) a woman\n(B) a man"], "(A").tokens)
    assert torch.allclose(acts.positive[0, 0], cache["blocks.3.hook_resid_post"][0, -1], atol=1e-5)
    with pytest.raises(ValueError, match="chat template"):
        contrast_activations(tiny_model, items, [3])


def test_vector_matches_plain_hf_forward_hooks(tiny_llama_dir, tiny_model):
    """An independent computation: HF model, PyTorch forward hooks on the decoder layers."""
    from transformers import AutoModelForCausalLM

    from hf_reference import hf_last_token_mean_difference

    hf = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    layer = 2
    vector = build_vector("g", contrast_activations(tiny_model, PAIRS, [layer]))
    reference = hf_last_token_mean_difference(hf, tiny_model.tokenizer, PAIRS, layer)
    assert torch.nn.functional.cosine_similarity(reference, vector.at(layer), dim=0) >= 0.9999
