"""A Hugging Face config as a TransformerLens config."""

from __future__ import annotations

import torch

from lens_bias.models import hooked_config_from_hf


def test_config_from_hf_keeps_gqa_and_rope(tiny_gqa_dir):
    from transformers import AutoConfig

    hf_config = AutoConfig.from_pretrained(tiny_gqa_dir)
    cfg = hooked_config_from_hf(hf_config, dtype=torch.float32, device="cpu", model_name="x")
    assert cfg.n_key_value_heads == 2 and cfg.n_heads == 4 and cfg.d_head == 16
    assert cfg.normalization_type == "RMS" and cfg.gated_mlp and cfg.positional_embedding_type == "rotary"
