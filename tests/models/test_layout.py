"""Weights stored in forward order: same shapes, values and outputs (bit for bit), and no weight copied per forward."""

import copy

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from lens_bias.models import load_model
from lens_bias.models.layout import forward_layout


@pytest.fixture(scope="module")
def gqa_model(tiny_gqa_dir):
    return load_model(str(tiny_gqa_dir), device="cpu")


def _contiguous_copy(model):
    plain = copy.deepcopy(model)
    for parameter in plain.parameters():
        parameter.data = parameter.data.contiguous()
    return plain


def _weight_copies(model, tokens) -> list[list[int]]:
    """The shapes of the tensors of a weight matrix's size that ``aten::copy_`` wrote during one forward."""
    sizes = {p.numel() for p in model.parameters() if p.dim() >= 2}
    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        model(tokens)
    copies = [event.input_shapes[0] for event in prof.events() if event.name == "aten::copy_" and event.input_shapes]
    return [shape for shape in copies if shape and torch.Size(shape).numel() in sizes]


def test_load_model_lays_out_weights_for_the_forward(gqa_model):
    """What the forward reads as ``F.linear``'s ``[out, in]`` matrix is already contiguous."""
    block = gqa_model.blocks[0]
    assert block.mlp.W_in.T.is_contiguous() and block.mlp.W_out.T.is_contiguous()
    assert gqa_model.unembed.W_U.T.is_contiguous()
    assert block.attn.W_Q.permute(0, 2, 1).is_contiguous() and block.attn._W_K.permute(0, 2, 1).is_contiguous()
    assert block.attn.W_O.permute(2, 0, 1).is_contiguous()


def test_forward_layout_keeps_shapes_values_and_outputs(gqa_model):
    plain = _contiguous_copy(gqa_model)
    assert all(p.is_contiguous() for p in plain.parameters())
    for (name, a), (_, b) in zip(gqa_model.state_dict().items(), plain.state_dict().items()):
        assert a.shape == b.shape and torch.equal(a, b), name
    tokens = torch.randint(0, gqa_model.cfg.d_vocab, (3, 9), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(gqa_model(tokens), plain(tokens))
        laid = forward_layout(_contiguous_copy(gqa_model))
        assert torch.equal(laid(tokens), plain(tokens))


def test_no_weight_is_copied_per_forward(gqa_model):
    """TransformerLens copies every weight matrix (``W.T.contiguous()``) per forward unless laid out."""
    tokens = torch.randint(0, gqa_model.cfg.d_vocab, (2, 5), generator=torch.Generator().manual_seed(1))
    assert _weight_copies(gqa_model, tokens) == []
    assert len(_weight_copies(_contiguous_copy(gqa_model), tokens)) >= 3 * gqa_model.cfg.n_layers
