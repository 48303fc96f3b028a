"""The model families a Hugging Face checkpoint may belong to, each as a ``HookedTransformerConfig`` derived from
its ``config.json`` and TransformerLens's own weight conversion for that architecture.

TransformerLens 3.9 derives the configs of GPT-2, GPT-NeoX and Qwen2 from an HF config, but picks the architecture
of a local folder partly by its *name* (a folder or hub cache path with ``llama`` or ``gemma`` in it is taken for
that family) and knows Gemma only by the official names' sizes; so the config of each family is derived here from
the checkpoint's ``config.json`` alone (the same fields as TransformerLens's branches), and the weights are
converted by TransformerLens (``transformer_lens.pretrained.weight_conversions``). Every family loads without
weight processing by default, so the residual stream is the HF model's hidden state; each family's tiny
random-weight checkpoint matches its HF model's log-probs to 1e-4 (``tests/models/test_families.py``).

Families (``model_type`` of the HF config): ``llama`` (Llama 1/2/3, SmolLM2, ...:
:func:`lens_bias.models.hf.hooked_config_from_hf`), ``gpt2``, ``gpt_neox`` (Pythia), ``qwen2`` (Qwen1.5/2/2.5),
``gemma`` (Gemma 1), ``gemma2`` (Gemma 2) and ``mistral``. Sliding-window attention (Mistral, Gemma 2's local
layers) is TransformerLens's local attention; rope scaling (``rope_parameters['rope_type']`` other than default) is
refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.pretrained.weight_conversions import (
    convert_gemma_weights,
    convert_gpt2_weights,
    convert_llama_weights,
    convert_mistral_weights,
    convert_neox_weights,
    convert_qwen2_weights,
)

from lens_bias.models.hf import hooked_config_from_hf, hooked_from_state_dict, rope_theta
from lens_bias.models.record import ModelLoadError


@dataclass(frozen=True)
class Family:
    """One architecture: ``architecture`` (the HF class, TransformerLens's ``original_architecture``), ``fields``
    (the HF config as ``HookedTransformerConfig`` fields, shapes and the block's layout) and ``convert`` (HF model
    and config -> TransformerLens state dict)."""

    architecture: str
    fields: Callable[[Any], dict[str, Any]]
    convert: Callable[[Any, HookedTransformerConfig], dict[str, torch.Tensor]]


def _gpt2_fields(hf: Any) -> dict[str, Any]:
    return {
        "d_model": hf.n_embd,
        "d_head": hf.n_embd // hf.n_head,
        "n_heads": hf.n_head,
        "d_mlp": hf.n_inner or 4 * hf.n_embd,
        "n_layers": hf.n_layer,
        "n_ctx": hf.n_positions,
        "eps": hf.layer_norm_epsilon,
        "d_vocab": hf.vocab_size,
        "act_fn": hf.activation_function,
        "use_attn_scale": hf.scale_attn_weights,
        "scale_attn_by_inverse_layer_idx": hf.scale_attn_by_inverse_layer_idx,
        "normalization_type": "LN",
    }


def _neox_fields(hf: Any) -> dict[str, Any]:
    from transformer_lens.utilities.hf_utils import get_rotary_pct_from_config

    d_head = hf.hidden_size // hf.num_attention_heads
    return {
        "d_model": hf.hidden_size,
        "d_head": d_head,
        "n_heads": hf.num_attention_heads,
        "d_mlp": hf.intermediate_size,
        "n_layers": hf.num_hidden_layers,
        "n_ctx": hf.max_position_embeddings,
        "eps": hf.layer_norm_eps,
        "d_vocab": hf.vocab_size,
        "act_fn": hf.hidden_act,
        "parallel_attn_mlp": hf.use_parallel_residual,
        "normalization_type": "LN",
        "positional_embedding_type": "rotary",
        "rotary_adjacent_pairs": False,
        "rotary_dim": round(get_rotary_pct_from_config(hf) * d_head),
        "rotary_base": rope_theta(hf),
    }


def _qwen2_fields(hf: Any) -> dict[str, Any]:
    d_head = getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads
    n_kv = hf.num_key_value_heads
    return {
        "d_model": hf.hidden_size,
        "d_head": d_head,
        "n_heads": hf.num_attention_heads,
        "n_key_value_heads": n_kv if n_kv != hf.num_attention_heads else None,
        "d_mlp": hf.intermediate_size,
        "n_layers": hf.num_hidden_layers,
        "n_ctx": hf.max_position_embeddings,
        "eps": hf.rms_norm_eps,
        "d_vocab": hf.vocab_size,
        "act_fn": hf.hidden_act,
        "normalization_type": "RMS",
        "positional_embedding_type": "rotary",
        "rotary_base": rope_theta(hf),
        "rotary_adjacent_pairs": False,
        "rotary_dim": d_head,
        "final_rms": True,
        "gated_mlp": True,
    }


def _gemma_fields(hf: Any) -> dict[str, Any]:
    n_kv = hf.num_key_value_heads
    return {
        "d_model": hf.hidden_size,
        "d_head": hf.head_dim,
        "n_heads": hf.num_attention_heads,
        "n_key_value_heads": n_kv,
        "d_mlp": hf.intermediate_size,
        "n_layers": hf.num_hidden_layers,
        "n_ctx": hf.max_position_embeddings,
        "eps": hf.rms_norm_eps,
        "d_vocab": hf.vocab_size,
        # the activation the HF MLP reads: Gemma 1's hidden_act, Gemma 2's hidden_activation
        "act_fn": hf.hidden_act if hf.model_type == "gemma" else hf.hidden_activation,
        "normalization_type": "RMS",
        "positional_embedding_type": "rotary",
        "rotary_base": rope_theta(hf),
        "rotary_dim": hf.head_dim,
        "rotary_adjacent_pairs": False,
        "final_rms": True,
        "gated_mlp": True,
    }


def _mistral_fields(hf: Any) -> dict[str, Any]:
    fields = _qwen2_fields(hf)
    if hf.sliding_window:  # every layer attends to the last ``sliding_window`` positions only
        fields.update(use_local_attn=True, window_size=hf.sliding_window, attn_types=["local"] * hf.num_hidden_layers)
    return fields


def _gemma2_fields(hf: Any) -> dict[str, Any]:
    layer_types = getattr(hf, "layer_types", None) or ["sliding_attention", "full_attention"] * hf.num_hidden_layers
    local = ["local" if kind == "sliding_attention" else "global" for kind in layer_types][: hf.num_hidden_layers]
    return {
        **_gemma_fields(hf),
        "attn_scale": hf.query_pre_attn_scalar**0.5,
        "use_local_attn": True,
        "window_size": hf.sliding_window,
        "attn_types": local,
        "attn_scores_soft_cap": hf.attn_logit_softcapping or -1.0,
        "output_logits_soft_cap": hf.final_logit_softcapping or -1.0,
        "use_normalization_before_and_after": True,
    }


#: The families that load, by the HF config's ``model_type``.
FAMILIES: dict[str, Family] = {
    "gpt2": Family("GPT2LMHeadModel", _gpt2_fields, convert_gpt2_weights),
    "gpt_neox": Family("GPTNeoXForCausalLM", _neox_fields, convert_neox_weights),
    "qwen2": Family("Qwen2ForCausalLM", _qwen2_fields, convert_qwen2_weights),
    "gemma": Family("GemmaForCausalLM", _gemma_fields, convert_gemma_weights),
    "gemma2": Family("Gemma2ForCausalLM", _gemma2_fields, convert_gemma_weights),
    "mistral": Family("MistralForCausalLM", _mistral_fields, convert_mistral_weights),
}

#: Every ``model_type`` that loads: Llama's and :data:`FAMILIES`.
SUPPORTED_MODEL_TYPES = ("llama", *FAMILIES)


def check_family(config: Mapping[str, Any], *, model_name: str) -> str:
    """The ``model_type`` of an HF config (the ``config.json`` as a dict) if this loader takes it; else a
    :class:`ModelLoadError` saying what is not supported: another ``model_type`` (naming the supported ones), rope
    scaling (``rope_parameters`` / ``rope_scaling`` of a type other than default), or Qwen2's sliding windows."""
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ModelLoadError(
            f"{model_name}: model_type {model_type!r} (architectures {config.get('architectures') or []}) is not "
            f"supported: lens_bias loads {', '.join(SUPPORTED_MODEL_TYPES)} checkpoints (README 'Which models'). For "
            "another architecture, load a TransformerLens official name (transformer_lens.supported_models)."
        )
    for rope in (config.get("rope_parameters") or {}, config.get("rope_scaling") or {}):  # transformers 5, older
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type not in ("default", None):
            raise ModelLoadError(f"{model_name}: rope scaling {rope_type!r} is not supported by this loader.")
    if model_type == "qwen2" and config.get("use_sliding_window"):
        raise ModelLoadError(
            f"{model_name}: Qwen2 with use_sliding_window=true (sliding attention from max_window_layers on) is not "
            "supported."
        )
    return str(model_type)


def hooked_config_of(hf_config: Any, *, dtype: torch.dtype, device: str, model_name: str) -> HookedTransformerConfig:
    """The ``HookedTransformerConfig`` of an HF config of any supported family (:data:`SUPPORTED_MODEL_TYPES`)."""
    model_type = check_family(hf_config.to_dict(), model_name=model_name)
    if model_type == "llama":
        return hooked_config_from_hf(hf_config, dtype=dtype, device=device, model_name=model_name)
    family = FAMILIES[model_type]
    fields = family.fields(hf_config)
    fields["n_ctx"] = min(fields["n_ctx"], 8192)
    return HookedTransformerConfig(
        **fields,
        model_name=model_name,
        original_architecture=family.architecture,
        tokenizer_prepends_bos=None,
        default_prepend_bos=False,
        dtype=dtype,
        device=device,
        init_weights=False,
    )


def convert_weights(hf_model: Any, cfg: HookedTransformerConfig) -> dict[str, torch.Tensor]:
    """TransformerLens's state dict of an HF model of ``cfg``'s family (``cfg`` from :func:`hooked_config_of`)."""
    if cfg.original_architecture == "LlamaForCausalLM":
        return convert_llama_weights(hf_model, cfg)
    (family,) = [family for family in FAMILIES.values() if family.architecture == cfg.original_architecture]
    return family.convert(hf_model, cfg)


def hooked_from_hf(
    hf_model: Any, tokenizer: Any, *, name: str, dtype: torch.dtype, device: str, processing: dict[str, bool]
) -> HookedTransformer:
    """A ``HookedTransformer`` with the weights of an HF model of a supported family (TransformerLens's
    conversion), weights processed by the TransformerLens ``processing`` flags."""
    cfg = hooked_config_of(hf_model.config, dtype=dtype, device=device, model_name=name)
    return hooked_from_state_dict(cfg, convert_weights(hf_model, cfg), tokenizer, processing)
