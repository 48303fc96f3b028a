"""A model where an edge score is exact: no norms, so the logits are linear in the final residual stream and
in an attention-only model a last-layer head's output too is linear in its value input (its attention
pattern reads only q and k)."""

from __future__ import annotations

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig


def norm_free_gqa_model(attn_only: bool = False) -> HookedTransformer:
    """3 layers, 4 query heads over 2 kv heads, MLPs unless ``attn_only``, no normalisation, random weights
    (seed 0, queries and keys scaled up 8x), float64."""
    torch.manual_seed(0)
    config = HookedTransformerConfig(
        n_layers=3,
        d_model=32,
        n_heads=4,
        d_head=8,
        n_key_value_heads=2,
        d_mlp=64,
        d_vocab=200,
        n_ctx=16,
        act_fn="gelu",
        normalization_type=None,
        attn_only=attn_only,
        dtype=torch.float64,
        device="cpu",
    )
    model = HookedTransformer(config)
    with torch.no_grad():  # sharper attention than the default init: q and k edges clearly nonlinear
        for block in model.blocks:
            block.attn.W_Q.mul_(8)
            block.attn.W_K.mul_(8)
    return model
