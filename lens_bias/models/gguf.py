"""GGUF files as TransformerLens models, through the converted-weights cache.

A GGUF file is de-quantized by ``transformers`` (~30 s for the embedded model) and its TransformerLens state dict
kept as an artefact of :mod:`lens_bias.cache`: the folder ``cache_dir()/converted/<sha16>`` (``weights.safetensors``
in fp32, the HF ``config.json`` and the ``tokenizer/``), keyed by the GGUF file's SHA-256. It is verified on every
load (sizes and SHA-256 of every file: 0.5-1.3 s for the embedded model's 650 MB); a damaged, truncated or
incomplete entry is rebuilt from the GGUF file with a warning. A cache that cannot be written (full disk,
read-only folder) costs a warning: the converted model is used without it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformer_lens import HookedTransformer
from transformer_lens.pretrained.weight_conversions import convert_llama_weights

from lens_bias.cache import reuse, store
from lens_bias.models.hf import hooked_config_from_hf, hooked_from_state_dict
from lens_bias.models.identity import cache_dir
from lens_bias.models.record import ModelLoadError

#: Tag in the key of a converted-weights cache entry (bump when the entry's layout changes).
GGUF_CACHE_FORMAT = "lens_bias.gguf-cache/2"
WEIGHTS = "weights.safetensors"

#: ``(HF config, tokenizer, fp32 TransformerLens state dict)`` of a GGUF file.
Converted = tuple[Any, Any, dict[str, torch.Tensor]]


def hf_from_gguf(path: Path) -> tuple[Any, Any]:
    """``(Hugging Face causal LM in fp32 on CPU, tokenizer)`` de-quantized from a GGUF file by transformers."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        hf_model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    except Exception as error:  # transformers raises many types for unreadable files
        raise ModelLoadError(
            f"{path} could not be read as a GGUF model ({type(error).__name__}: {error}). "
            "Pass a GGUF file of a Llama-architecture model."
        ) from error
    return hf_model, tokenizer


def load_gguf(
    path: Path, sha256: str, *, name: str, dtype: torch.dtype, device: str, processing: dict[str, bool]
) -> HookedTransformer:
    """The GGUF file at ``path`` (whose SHA-256 is ``sha256``) as a ``HookedTransformer``, through the
    converted-weights cache (see the module docstring)."""
    entry = cache_dir() / "converted" / sha256[:16]
    key = {"format": GGUF_CACHE_FORMAT, "gguf_sha256": sha256}
    converted = reuse(entry, key, _read_entry, what=f"converted-weights cache of {path}")
    if converted is None:
        converted = _convert(path, name)
        try:
            store(entry, key, lambda staging: _write_entry(staging, converted))
        except OSError as error:
            warnings.warn(
                f"lens_bias could not write the converted-weights cache {entry} ({error}); the model is used "
                "without it and converted again on the next load.",
                stacklevel=3,
            )
    hf_config, tokenizer, state_dict = converted
    cfg = hooked_config_from_hf(hf_config, dtype=dtype, device=device, model_name=name)
    return hooked_from_state_dict(cfg, state_dict, tokenizer, processing)


def _convert(path: Path, name: str) -> Converted:
    """De-quantize a GGUF file: ``(HF config, tokenizer, fp32 TransformerLens state dict)``."""
    hf_model, tokenizer = hf_from_gguf(path)
    cfg32 = hooked_config_from_hf(hf_model.config, dtype=torch.float32, device="cpu", model_name=name)
    state_dict = {k: v.detach().contiguous().clone() for k, v in convert_llama_weights(hf_model, cfg32).items()}
    hf_model.config.quantization_config = None
    return hf_model.config, tokenizer, state_dict


def _write_entry(folder: Path, converted: Converted) -> None:
    """Write a converted GGUF into ``folder``: the weights, the HF config and the tokenizer."""
    hf_config, tokenizer, state_dict = converted
    folder.mkdir(parents=True)
    save_file(state_dict, str(folder / WEIGHTS))
    hf_config.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder / "tokenizer"))


def _read_entry(folder: Path) -> Converted:
    """What :func:`_write_entry` wrote."""
    from transformers import AutoConfig, AutoTokenizer

    hf_config = AutoConfig.from_pretrained(str(folder))
    tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
    return hf_config, tokenizer, load_file(str(folder / WEIGHTS))
