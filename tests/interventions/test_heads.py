"""HeadScaling: scales exactly the chosen query heads (0 = ablation), validates its input, round-trips."""

from __future__ import annotations

import pytest
import torch

from lens_bias.errors import InputError
from lens_bias.interventions import (
    ForwardContext,
    HeadScaling,
    applied,
    hooks_added,
    load_intervention,
    save_intervention,
)
from lens_bias.prompts import tokenize


def _capture(model, batch, interventions, names):
    seen = {}

    def store(activation, hook):
        seen[hook.name] = activation.detach().clone()

    with applied(model, interventions, ForwardContext(batch)), hooks_added(model, [(n, store) for n in names]):
        logits = model(batch.tokens)
    return logits, seen


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_gqa_model"])
def test_head_scaling_scales_exactly_the_chosen_query_heads(fixture, request):
    model = request.getfixturevalue(fixture)
    batch = tokenize(model.tokenizer, ["People from Italy drive"], add_start=True)
    names = ["blocks.1.attn.hook_z", "blocks.2.attn.hook_z", "blocks.2.hook_attn_out"]
    plain_logits, plain = _capture(model, batch, [], names)
    same_logits, _ = _capture(model, batch, [HeadScaling(((1, 0), (2, 3)), scale=1.0)], names)
    assert torch.equal(same_logits, plain_logits)

    _, half = _capture(model, batch, [HeadScaling(((1, 0), (2, 3)), scale=0.5)], names[:1])
    assert torch.allclose(half["blocks.1.attn.hook_z"][:, :, 0], 0.5 * plain["blocks.1.attn.hook_z"][:, :, 0])
    assert torch.equal(half["blocks.1.attn.hook_z"][:, :, 1:], plain["blocks.1.attn.hook_z"][:, :, 1:])

    everything = HeadScaling(tuple((2, h) for h in range(model.cfg.n_heads)), scale=0.0)
    _, ablated = _capture(model, batch, [everything], names)
    b_O = model.blocks[2].attn.b_O.detach()
    assert torch.allclose(ablated["blocks.2.hook_attn_out"], b_O.expand_as(ablated["blocks.2.hook_attn_out"]))
    assert torch.equal(ablated["blocks.1.attn.hook_z"], plain["blocks.1.attn.hook_z"])  # earlier layer untouched


def test_head_scaling_validates_and_round_trips(tiny_model, tmp_path):
    for heads in ((), ((0, 1), (0, 1))):
        with pytest.raises(ValueError):
            HeadScaling(heads)
    with pytest.raises(ValueError, match="finite"):
        HeadScaling(((0, 1),), scale=float("nan"))
    for outside in (((9, 0),), ((0, 4),), ((-1, 0),), ((0, 1), (3, 7))):
        with pytest.raises(InputError, match=r"outside the model \(4 layers x 4 query heads\)"):
            HeadScaling(outside).check(tiny_model)
        with pytest.raises(InputError, match="outside the model"), applied(tiny_model, [HeadScaling(outside)], None):
            raise AssertionError("applied() must refuse the heads before the block runs")
    scaling = HeadScaling(((3, 1), (0, 2)), scale=0.25)
    assert HeadScaling.from_description(scaling.describe()) == scaling
    assert load_intervention(save_intervention(scaling, tmp_path / "heads", provenance={})) == scaling
