"""What a loaded model is: its :class:`ModelRecord` (how it was made, saved with every result) and the checks and
accessors that analysis code needs of any model (layers, tokenizer, device)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeAlias

from transformer_lens import HookedTransformer
from transformer_lens.model_bridge import TransformerBridge
from transformers import PreTrainedTokenizerBase

from lens_bias.errors import InputError

#: A model that extraction, readouts, steering interventions and generation accept: a HookedTransformer (what
#: :func:`lens_bias.models.load_model` returns) or a TransformerBridge. Patching and token injection need a
#: HookedTransformer. (TransformerBridge costs nothing to import: ``import transformer_lens`` loads it already.)
AnyModel: TypeAlias = HookedTransformer | TransformerBridge


class ModelLoadError(InputError):
    """A model name or path that cannot be loaded; the message says what to do."""


@dataclass(frozen=True)
class ModelRecord:
    """How a model was made: attached to the model (``model.lens_bias_record``) and saved with results.

    ``source`` is a hub id, a local folder, a GGUF path or a TransformerLens name; ``sha256`` hashes the GGUF file
    or the weight files of a folder or hub snapshot (:func:`lens_bias.models.identity.folder_sha256`), None for
    TransformerLens names; ``revision`` is the hub commit loaded (hub ids).
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


def attach_record(model: HookedTransformer, record: ModelRecord) -> None:
    """Attach ``record`` as ``model.lens_bias_record``, where :func:`model_record` finds it (``setattr``:
    ``nn.Module`` types its attributes as tensors or modules)."""
    setattr(model, "lens_bias_record", record)  # noqa: B010


def model_record(model: AnyModel) -> ModelRecord:
    """The :class:`ModelRecord` of a model made by :func:`lens_bias.models.load_model`; for other models (e.g. a
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


def same_weights(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two saved :class:`ModelRecord` dicts provably describe the same weights, processed alike: the same
    SHA-256 (a file or folder known by its hash), else the same source and revision (a TransformerLens name or a
    hub id); never for an ``unrecorded`` model (nothing proves what it is)."""
    if "unrecorded" in (a.get("kind"), b.get("kind")) or a.get("processing") != b.get("processing"):
        return False
    if a.get("sha256") is not None or b.get("sha256") is not None:
        return a.get("sha256") == b.get("sha256")
    return (a.get("source"), a.get("revision")) == (b.get("source"), b.get("revision"))
