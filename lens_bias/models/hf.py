"""Hugging Face checkpoints as TransformerLens models: a Llama-architecture HF config as a
``HookedTransformerConfig``, an HF model (or a converted state dict) as a ``HookedTransformer``, and the checks
of a local HF folder.

Llama-architecture checkpoints (Llama 1/2/3, SmolLM2, ...) all go through the same code path: the HF model is
loaded with ``transformers``, a :class:`HookedTransformerConfig` is derived from its config
(:func:`hooked_config_from_hf`), and TransformerLens's own Llama weight conversion fills the weights. No weight
processing is applied by default (no LayerNorm folding, no centring), so the residual stream equals the HF
model's hidden states and log-probs match HF to ~1e-5 in fp32.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformer_lens import HookedTransformer, HookedTransformerConfig

from lens_bias.embedded import EMBEDDED_MODEL
from lens_bias.models.record import ModelLoadError

#: Entries of a ``config.json`` that fix the shapes of the weights: GPT-2's names, and those of the other supported
#: families.
REQUIRED_SIZES = {
    "gpt2": ("n_embd", "n_head", "n_layer", "vocab_size"),
    "other": ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "vocab_size"),
}


def hooked_config_from_hf(
    hf_config: Any, *, dtype: torch.dtype, device: str, model_name: str
) -> HookedTransformerConfig:
    """A ``HookedTransformerConfig`` for a Llama-architecture HF config (Llama 1/2/3, SmolLM2, ...).

    Raises ``ModelLoadError`` for other architectures (:func:`lens_bias.models.families.hooked_config_of` takes
    every supported family).
    """
    architectures = getattr(hf_config, "architectures", None) or []
    model_type = getattr(hf_config, "model_type", None)
    if model_type != "llama" and "LlamaForCausalLM" not in architectures:
        raise ModelLoadError(
            f"{model_name}: not a Llama-architecture checkpoint (got model_type={model_type!r}, "
            f"architectures={architectures}); GGUF files and LoRA fine-tuning take Llama-architecture models only."
        )
    n_heads = hf_config.num_attention_heads
    n_kv = getattr(hf_config, "num_key_value_heads", None) or n_heads
    d_head = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // n_heads
    rope = getattr(hf_config, "rope_parameters", None) or {}
    if rope.get("rope_type", "default") not in ("default", None):
        raise ModelLoadError(
            f"{model_name}: rope scaling {rope.get('rope_type')!r} is not supported by this loader; "
            "load the model by its TransformerLens official name instead."
        )
    return HookedTransformerConfig(
        model_name=model_name,
        d_model=hf_config.hidden_size,
        d_head=d_head,
        n_heads=n_heads,
        d_mlp=hf_config.intermediate_size,
        n_layers=hf_config.num_hidden_layers,
        n_ctx=min(hf_config.max_position_embeddings, 8192),
        eps=hf_config.rms_norm_eps,
        d_vocab=hf_config.vocab_size,
        act_fn=hf_config.hidden_act,
        n_key_value_heads=n_kv if n_kv != n_heads else None,
        normalization_type="RMS",
        positional_embedding_type="rotary",
        rotary_adjacent_pairs=False,
        rotary_dim=d_head,
        rotary_base=rope_theta(hf_config),
        final_rms=True,
        gated_mlp=True,
        original_architecture="LlamaForCausalLM",
        tokenizer_prepends_bos=None,
        default_prepend_bos=False,
        dtype=dtype,
        device=device,
        init_weights=False,
    )


def rope_theta(hf_config: Any) -> float:
    """The rotary base of an HF config: ``rope_parameters['rope_theta']`` (transformers 5), else the older
    top-level ``rope_theta``, else 10000."""
    rope = getattr(hf_config, "rope_parameters", None) or {}
    return float(rope.get("rope_theta", getattr(hf_config, "rope_theta", None) or 10000.0))


def load_processed(model: HookedTransformer, state_dict: dict[str, torch.Tensor], processing: dict[str, bool]) -> None:
    """TransformerLens's ``load_and_process_state_dict(state_dict, **processing)`` with the processed weights
    loaded in one ``load_state_dict`` call. TransformerLens loads them one key at a time, and each call walks every
    module (574 keys x ~940 modules for the embedded model: 3.2 s to load it that way, 1.8 s this way). Here its
    per-key calls only collect the processed tensors (an instance attribute shadows the method while it runs); one
    load with the same ``strict=False`` (and ``assign``) then takes them at once. Peak memory is unchanged: the
    whole state dict and the model coexist at the start either way."""
    processed: dict[str, torch.Tensor] = {}
    assigned: set[bool] = set()

    def collect(part: dict[str, torch.Tensor], strict: bool = True, assign: bool = False) -> None:
        processed.update(part)
        assigned.add(assign)

    model.load_state_dict = collect  # type: ignore[method-assign,assignment]
    try:
        model.load_and_process_state_dict(state_dict, **processing)
    finally:
        del model.load_state_dict
    model.load_state_dict(processed, strict=False, assign=True in assigned)


def hooked_from_state_dict(
    cfg: HookedTransformerConfig, state_dict: dict[str, torch.Tensor], tokenizer: Any, processing: dict[str, bool]
) -> HookedTransformer:
    """A ``HookedTransformer`` of ``cfg`` holding ``state_dict`` (cast to ``cfg.dtype``), weights processed by the
    TransformerLens ``processing`` flags, on ``cfg.device``, in eval mode."""
    model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)
    state_dict = {k: v.to(cfg.dtype) for k, v in state_dict.items()}
    load_processed(model, state_dict, processing)
    model.to(cfg.device, print_details=False)  # type: ignore[arg-type]  # cfg.device is set by our configs
    model.eval()
    return model


def hf_from_pretrained(folder: str, *, dtype: torch.dtype) -> tuple[Any, Any]:
    """``(HF causal LM, tokenizer)`` from a local model folder (or hub cache snapshot)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype), AutoTokenizer.from_pretrained(folder)


def check_hf_config(folder: Path) -> dict[str, Any]:
    """The config of ``folder/config.json``; a :class:`ModelLoadError` naming the file and what is wrong with it:
    missing, unreadable, not JSON, not an object, or without ``model_type`` (the sizes: :func:`check_hf_sizes`)."""
    file = folder / "config.json"
    fix = "restore the config.json that `save_pretrained` wrote with these weights"
    if not file.is_file():
        raise ModelLoadError(
            f"{folder} is a folder but not a Hugging Face model folder (no config.json). Pass a folder "
            f"written by `save_pretrained`, a .gguf file, or a model name such as {EMBEDDED_MODEL!r}."
        )
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ModelLoadError(f"{file} is not UTF-8 text ({error.reason}): {fix}.") from error
    except OSError as error:
        raise ModelLoadError(f"{file} cannot be read ({error.strerror or error}).") from error
    except json.JSONDecodeError as error:
        raise ModelLoadError(
            f"{file} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}): {fix}."
        ) from error
    if not isinstance(config, dict):
        raise ModelLoadError(f"{file} must hold a JSON object (the model's config), got a {type(config).__name__}.")
    if "model_type" not in config:
        raise ModelLoadError(f"{file} lacks 'model_type': {fix}.")
    return config


def check_hf_sizes(config: dict[str, Any], folder: Path) -> None:
    """A :class:`ModelLoadError` naming ``folder/config.json`` for a ``config`` (of a supported family) without a
    size (:data:`REQUIRED_SIZES`) or with a size that is no positive integer."""
    file = folder / "config.json"
    fix = "restore the config.json that `save_pretrained` wrote with these weights"
    sizes = REQUIRED_SIZES["gpt2" if config["model_type"] == "gpt2" else "other"]
    missing = [key for key in sizes if key not in config]
    if missing:
        raise ModelLoadError(f"{file} lacks {', '.join(map(repr, missing))}: {fix}.")
    for key in sizes:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelLoadError(f"{file}: {key} must be a positive integer, got {value!r}; {fix}.")
