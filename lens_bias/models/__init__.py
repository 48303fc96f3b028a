"""Models: one resolution of a model name (:func:`resolve_model`), one loader of TransformerLens models
(:func:`load_model`) and of Hugging Face models (:func:`load_hf`), and the record of how each model was made.

* :mod:`~lens_bias.models.record`: :class:`ModelRecord` and the accessors of any model (layers, tokenizer, device);
* :mod:`~lens_bias.models.identity`: the embedded model's file, the cache folder, a model folder's SHA-256;
* :mod:`~lens_bias.models.hf`: Hugging Face configs (Llama's) and folders, and state dicts as TransformerLens models;
* :mod:`~lens_bias.models.families`: the supported families (Llama, GPT-2, GPT-NeoX, Qwen2, Gemma, Gemma 2,
  Mistral), each an HF config -> TransformerLens config and TransformerLens's weight conversion;
* :mod:`~lens_bias.models.hub`: Hugging Face hub ids as folders of the local Hugging Face cache;
* :mod:`~lens_bias.models.gguf`: GGUF files, through the converted-weights cache;
* :mod:`~lens_bias.models.load`: :func:`resolve_model`, :func:`load_model`, :func:`load_hf`.
"""

from lens_bias.embedded import EMBEDDED_FETCH_COMMAND, EMBEDDED_GGUF, EMBEDDED_MODEL
from lens_bias.models.families import SUPPORTED_MODEL_TYPES
from lens_bias.models.gguf import hf_from_gguf
from lens_bias.models.hf import check_hf_config, hooked_config_from_hf
from lens_bias.models.identity import cache_dir, embedded_gguf_path, folder_sha256
from lens_bias.models.load import (
    HF_KINDS,
    LLAMA2_HUB_IDS,
    NO_PROCESSING,
    ModelSource,
    load_hf,
    load_model,
    resolve_model,
)
from lens_bias.models.record import (
    AnyModel,
    ModelLoadError,
    ModelRecord,
    attach_record,
    check_layers,
    device_of,
    model_record,
    same_weights,
    tokenizer_of,
)

__all__ = [
    "EMBEDDED_FETCH_COMMAND",
    "EMBEDDED_GGUF",
    "EMBEDDED_MODEL",
    "HF_KINDS",
    "LLAMA2_HUB_IDS",
    "NO_PROCESSING",
    "SUPPORTED_MODEL_TYPES",
    "AnyModel",
    "ModelLoadError",
    "ModelRecord",
    "ModelSource",
    "attach_record",
    "cache_dir",
    "check_hf_config",
    "check_layers",
    "device_of",
    "embedded_gguf_path",
    "folder_sha256",
    "hf_from_gguf",
    "hooked_config_from_hf",
    "load_hf",
    "load_model",
    "model_record",
    "resolve_model",
    "same_weights",
    "tokenizer_of",
]
