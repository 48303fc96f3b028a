"""Extraction: batched == one at a time, padding never read, only requested layers kept."""

from __future__ import annotations

import pytest
import torch

from lens_bias.forward.activations import extract
from lens_bias.prompts import ChatTemplate, chat_batch, continuation_batch


def test_extract_batched_equals_single_and_cache(tiny_gqa_model):
    model = tiny_gqa_model
    batch = chat_batch(
        model.tokenizer, ChatTemplate("plain"), ["short", "a much longer question about nurses and engineers"], "Sure"
    )
    acts = extract(model, batch, [0, 2, 3], position="last", batch_size=2)
    assert acts.shape == (2, 3, model.cfg.d_model)
    for row in range(2):
        single = extract(model, batch[row : row + 1], [0, 2, 3], position="last")
        assert torch.allclose(acts[row], single[0], atol=1e-5)
        _, cache = model.run_with_cache(batch.tokens[row : row + 1, : batch.lengths[row]])
        for j, layer in enumerate([0, 2, 3]):
            assert torch.allclose(acts[row, j], cache[f"blocks.{layer}.hook_resid_post"][0, -1], atol=1e-5)


def test_padded_row_reads_last_real_token_not_padding(tiny_model):
    batch = chat_batch(tiny_model.tokenizer, ChatTemplate("plain"), ["a", "a far longer prompt than the first"])
    acts = extract(tiny_model, batch, [1], position="last")
    padded_position = extract(tiny_model, batch, [1], position="instruction_end")
    assert torch.allclose(acts, padded_position)  # no answer prefix: the instruction end is the last token
    _, cache = tiny_model.run_with_cache(batch.tokens[:1])  # row 0 with its padding, read at the pad
    assert not torch.allclose(acts[0, 0], cache["blocks.1.hook_resid_post"][0, -1])


def test_mean_over_continuation(tiny_model):
    batch = continuation_batch(tiny_model.tokenizer, ["The nurse said"], [" she was tired."])
    mean = extract(tiny_model, batch, [2], position="last", mean_from="continuation")
    _, cache = tiny_model.run_with_cache(batch.tokens)
    start = int(batch.positions["continuation"][0])
    assert torch.allclose(mean[0, 0], cache["blocks.2.hook_resid_post"][0, start:].mean(0), atol=1e-5)


def test_resid_pre_and_bad_input(tiny_model):
    batch = chat_batch(tiny_model.tokenizer, ChatTemplate("plain"), ["hello"])
    pre = extract(tiny_model, batch, [1], hook="resid_pre")
    post0 = extract(tiny_model, batch, [0], hook="resid_post")
    assert torch.allclose(pre, post0, atol=1e-6)
    with pytest.raises(ValueError, match="outside the model"):
        extract(tiny_model, batch, [9])
    with pytest.raises(ValueError, match="not in the batch"):
        extract(tiny_model, batch, [0], position="answer")
