"""The self-alignment edit: strength by hand, per-query top-layer selection (rows, left padding, KV-cached
generation, shared-prompt scoring), saving with the new fields, and clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from lens_bias.directions import Subspace
from lens_bias.errors import InputError
from lens_bias.forward.activations import extract
from lens_bias.forward.generation import generate
from lens_bias.forward.readouts import answer_logprobs, shared_prompt_logprobs
from lens_bias.interventions import ForwardContext, SubspaceEdit, applied, load_intervention, save_intervention
from lens_bias.prompts import ChatTemplate, chat_batch

TEMPLATE = ChatTemplate("llama-2-chat")
PROMPTS = ["How do I bake bread?", "Which is more likely? Choices: (A) yes (B) no. I'm sorry"]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm()


def test_boost_strength_and_remove_by_hand(tiny_model):
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(64, 2, generator=g))[0].T  # two orthonormal rows
    subspace = Subspace({1: basis}, "resid_post", 0.9, {})
    x = torch.randn(2, 5, 64, generator=g) * 3
    context = ForwardContext(None)  # no top_layers: the edit reads no positions
    ((name, boost),) = SubspaceEdit(subspace, "boost", strength=3.0).hooks(tiny_model, context)
    ((_, remove),) = SubspaceEdit(subspace, "remove").hooks(tiny_model, context)
    c = x @ basis.T  # [2, 5, 2]
    expected = x + 3.0 * (torch.tanh(c[..., :1]) * basis[0] + torch.tanh(c[..., 1:]) * basis[1])
    assert name == "blocks.1.hook_resid_post"
    assert torch.allclose(boost(x, None), expected, atol=1e-5)
    assert torch.allclose(remove(x, None), x - torch.relu(c) @ basis, atol=1e-5)
    assert torch.allclose(remove(x, None) @ basis.T, torch.minimum(c, torch.zeros(())), atol=1e-5)  # no positive part


def _two_layer_case(model):
    """A subspace at layers 1 and 2 whose basis at layer 1 is row 0's own residual (at the prompt's last
    token) and at layer 2 row 1's: row 0 aligns most with layer 1, row 1 with layer 2."""
    batch = chat_batch(model.tokenizer, TEMPLATE, PROMPTS)
    x = extract(model, batch, [1, 2], position="instruction_end").float()  # [2, 2, d]
    subspace = Subspace({1: _unit(x[0, 0])[None], 2: _unit(x[1, 1])[None]}, "resid_post", 0.9, {"method": "test"})
    return batch, x, subspace


def test_top_layer_selection_per_row_and_edits_only_there(tiny_model):
    batch, x, subspace = _two_layer_case(tiny_model)
    edit = SubspaceEdit(subspace, "boost", strength=4.0, top_layers=1)
    alignment = edit.alignment(tiny_model, batch)
    cos = torch.nn.functional.cosine_similarity
    expected = torch.tensor(
        [[1.0, abs(float(cos(x[0, 1], x[1, 1], dim=0)))], [abs(float(cos(x[1, 0], x[0, 0], dim=0))), 1.0]]
    )
    assert torch.allclose(alignment, expected, atol=1e-4)
    assert edit.select(tiny_model, batch).tolist() == [[True, False], [False, True]]
    (_, at1), (_, at2) = edit.hooks(tiny_model, ForwardContext(batch))
    ones = torch.ones(2, 3, tiny_model.cfg.d_model)
    assert (at1(ones, None) != ones)[0].all() and torch.equal(at1(ones, None)[1], ones[1])
    assert torch.equal(at2(ones, None)[0], ones[0]) and (at2(ones, None) != ones)[1].all()
    # the whole forward: each row as if edited at its own layer alone
    with applied(tiny_model, [edit], ForwardContext(batch)), torch.inference_mode():
        batched = tiny_model(batch.tokens)
    for row, layer in ((0, 1), (1, 2)):
        alone = batch[row : row + 1]
        fixed = SubspaceEdit(subspace, "boost", [layer], 4.0)
        with applied(tiny_model, [fixed], ForwardContext(alone)), torch.inference_mode():
            single = tiny_model(alone.tokens)
        n = int(alone.lengths[0])
        assert torch.allclose(batched[row, :n], single[0, :n], atol=1e-4)


def test_left_padding_does_not_change_a_row_selection(tiny_model):
    batch, _, subspace = _two_layer_case(tiny_model)
    edit = SubspaceEdit(subspace, "remove", top_layers=1)
    _, _, left = batch.left_padded(2)
    assert not torch.equal(left.tokens, batch.tokens)  # the rows have different lengths
    assert torch.allclose(edit.alignment(tiny_model, left), edit.alignment(tiny_model, batch), atol=1e-5)
    for row in range(2):
        alone = edit.select(tiny_model, batch[row : row + 1])
        assert torch.equal(alone[0], edit.select(tiny_model, left)[row])


def test_generation_and_shared_prompt_scoring_with_top_layers(tiny_model):
    _, _, subspace = _two_layer_case(tiny_model)
    edit = SubspaceEdit(subspace, "boost", strength=30.0, top_layers=1)
    cached = generate(tiny_model, TEMPLATE, PROMPTS, interventions=[edit], max_new_tokens=10, use_cache=True)
    full = generate(tiny_model, TEMPLATE, PROMPTS, interventions=[edit], max_new_tokens=10, use_cache=False)
    assert [g.tokens for g in cached] == [g.tokens for g in full]
    one_by_one = [generate(tiny_model, TEMPLATE, [p], interventions=[edit], max_new_tokens=10)[0] for p in PROMPTS]
    assert [g.tokens for g in one_by_one] == [g.tokens for g in cached]
    plain = generate(tiny_model, TEMPLATE, PROMPTS, max_new_tokens=10)
    assert [g.tokens for g in plain] != [g.tokens for g in cached]  # the edit reaches the generated tokens
    # scoring with one KV cache per prompt (continuation rows carry their prompt row) = one pair per row
    answers = ["Sure, here is", "I'm sorry"]
    shared = shared_prompt_logprobs(tiny_model, TEMPLATE, PROMPTS, answers, interventions=[edit])
    flat_users = [p for p in PROMPTS for _ in answers]
    single = answer_logprobs(tiny_model, TEMPLATE, flat_users, answers * 2, interventions=[edit])
    assert torch.allclose(shared.total, single.total, atol=1e-3)
    assert not torch.allclose(shared.total, shared_prompt_logprobs(tiny_model, TEMPLATE, PROMPTS, answers).total)


def test_another_batch_without_prompt_rows_is_an_error(tiny_model):
    batch, _, subspace = _two_layer_case(tiny_model)
    context = ForwardContext(batch)
    (_, at1), _ = SubspaceEdit(subspace, "boost", top_layers=1).hooks(tiny_model, context)
    context.batch, context.offset = batch[:1], 5
    with pytest.raises(InputError, match="prompt_rows"):
        at1(torch.ones(1, 1, tiny_model.cfg.d_model), None)
    with pytest.raises(InputError, match="offset"):
        SubspaceEdit(subspace, "boost", top_layers=1).hooks(tiny_model, context)


def test_save_load_keeps_strength_and_top_layers_and_reads_old_files(tmp_path):
    subspace = Subspace({1: torch.eye(8)[:2], 3: torch.eye(8)[:1]}, "resid_post", 0.9, {"method": "ccs"})
    edit = SubspaceEdit(subspace, "boost", [1, 3], strength=7.5, top_layers=1, select_at="last")
    back = load_intervention(save_intervention(edit, tmp_path / "edit", provenance={}))
    assert isinstance(back, SubspaceEdit) and back.describe() == edit.describe()
    assert (back.strength, back.top_layers, back.select_at, back.layers) == (7.5, 1, "last", [1, 3])
    assert edit.describe()["method"] == "ccs"
    path = tmp_path / "edit.json"
    saved = json.loads(path.read_text())
    for key in ("strength", "top_layers", "select_at", "method"):
        del saved["config"]["intervention"][key]  # a file written before these existed
    path.write_text(json.dumps(saved))
    old = load_intervention(path)
    assert isinstance(old, SubspaceEdit)
    assert (old.strength, old.top_layers, old.select_at) == (1.0, None, "instruction_end")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strength": float("inf")}, "finite"),
        ({"strength": float("nan")}, "finite"),
        ({"mode": "remove", "strength": 2.0}, "boost' only"),
        ({"top_layers": 0}, "top_layers"),
        ({"top_layers": 3}, "top_layers"),
        ({"top_layers": 1.5}, "top_layers"),
        ({"mode": "shrink"}, "mode"),
    ],
)
def test_bad_settings_are_clear_errors(tiny_model, kwargs, match):
    subspace = Subspace({1: torch.eye(64)[:1], 2: torch.eye(64)[1:2]}, "resid_post", 0.9, {})
    edit = SubspaceEdit(subspace, **{"mode": "boost", **kwargs})
    with pytest.raises(InputError, match=match):
        edit.check(tiny_model)


def test_missing_selection_position_is_a_clear_error(tiny_model):
    subspace = Subspace({1: torch.eye(64)[:1]}, "resid_post", 0.9, {})
    batch = chat_batch(tiny_model.tokenizer, TEMPLATE, PROMPTS)
    with pytest.raises(InputError, match="select_at"):
        SubspaceEdit(subspace, "boost", top_layers=1, select_at="answer").select(tiny_model, batch)
