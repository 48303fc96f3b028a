from __future__ import annotations

import pytest
import torch

from lens_bias.errors import InputError
from lens_bias.forward.activations import extract
from lens_bias.forward.readouts import continuation_logprobs
from lens_bias.models import load_model, model_record
from lens_bias.models.precision import MIXED, to_mixed_precision
from lens_bias.prompts import continuation_batch

TEXTS = ["The nurse said that", "A doctor walked in and"]


def test_mixed_keeps_residual_and_logits_fp32_with_bf16_matrices(tiny_gqa_dir):
    fp32 = load_model(str(tiny_gqa_dir), device="cpu")
    mixed = load_model(str(tiny_gqa_dir), device="cpu", dtype=MIXED)
    assert model_record(mixed).dtype == MIXED and mixed.cfg.dtype == torch.float32
    assert mixed.blocks[0].attn._W_K.dtype == torch.bfloat16 and mixed.blocks[0].mlp.W_in.dtype == torch.bfloat16
    assert mixed.embed.W_E.dtype == mixed.unembed.W_U.dtype == mixed.blocks[0].ln1.w.dtype == torch.float32
    tokens = fp32.to_tokens(TEXTS[0])
    with torch.inference_mode():
        logits, cache = mixed.run_with_cache(tokens)
        reference = fp32(tokens)
    assert logits.dtype == torch.float32 and cache["blocks.1.hook_resid_post"].dtype == torch.float32
    assert cache["blocks.1.hook_mlp_out"].dtype == torch.bfloat16  # the block's products ran in bf16
    # bf16 products: close to fp32, not equal
    assert 0 < (logits - reference).abs().max() < 0.05 * reference.abs().max()
    # the readouts run unchanged: log-probabilities and residual reads in fp32, near fp32's
    ours = continuation_logprobs(mixed, ["", ""], TEXTS)
    theirs = continuation_logprobs(fp32, ["", ""], TEXTS)
    assert ours.total.dtype == torch.float32
    torch.testing.assert_close(ours.mean, theirs.mean, atol=0.05, rtol=0.01)
    batch = continuation_batch(fp32.tokenizer, ["", ""], TEXTS)
    residual = extract(mixed, batch, [1])
    assert residual.dtype == torch.float32
    torch.testing.assert_close(residual, extract(fp32, batch, [1]), atol=0.05, rtol=0.05)


def test_mixed_refuses_a_model_not_in_fp32(tiny_gqa_dir):
    with pytest.raises(InputError, match=MIXED):
        to_mixed_precision(load_model(str(tiny_gqa_dir), device="cpu", dtype="bfloat16"))
