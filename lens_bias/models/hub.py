"""Hugging Face hub ids as local folders: the snapshot of a model in the local Hugging Face cache
(``$HF_HOME/hub/models--org--name/snapshots/<commit>``), downloaded first only where the hub may be reached.

The cache is read first, so a model once downloaded loads without the network; the hub is asked only for a model
(or revision) that is not cached, and never when ``HF_HUB_OFFLINE`` is set. The snapshot is then loaded exactly as
a local folder (:func:`lens_bias.models.load_model`), and its folder name is the commit that was loaded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lens_bias.models.identity import weight_files
from lens_bias.models.record import ModelLoadError

#: A hub id: ``name`` or ``org/name`` of letters, digits, ``-``, ``_`` and ``.``.
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")

#: What a download fetches: configs, tokenizer files and safetensors weights (``*.bin`` only for a model without
#: safetensors).
HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` forbids the hub (read at each call, as huggingface_hub's own truthy values)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_snapshot(repo_id: str, *, revision: str | None = None) -> Path:
    """The local folder of ``repo_id`` at ``revision`` (default ``main``): its cached snapshot, else (hub
    reachable, ``HF_HUB_OFFLINE`` unset) a download of :data:`HUB_FILES`. A :class:`ModelLoadError` says what
    to do when neither works: download it where the hub can be reached, set ``HF_HOME`` to that cache, or pass
    the model's folder; gated models (Llama 2, Gemma) need an accepted licence and ``HF_TOKEN``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    token = os.environ.get("HF_TOKEN") or None
    cache = hub_cache()
    try:
        return Path(snapshot_download(repo_id, revision=revision, cache_dir=cache, local_files_only=True))
    except HFValidationError as error:
        raise ModelLoadError(f"{repo_id!r} is not a Hugging Face hub id ({error}).") from error
    except OSError as error:
        cached_error: OSError = error
    where = f"{repo_id}" + (f" at revision {revision}" if revision else "")
    fix = (
        f"Download it where the hub can be reached (`hf download {repo_id}`"
        + (f" --revision {revision}" if revision else "")
        + ") and set HF_HOME to that Hugging Face cache, or pass the model's local folder "
        "(`save_pretrained` output) instead. Gated models (Llama 2, Gemma) also need their licence accepted on "
        "huggingface.co and HF_TOKEN set."
    )
    if hub_offline():
        raise ModelLoadError(
            f"{where} is not in the local Hugging Face cache ({cache}) and HF_HUB_OFFLINE is set. {fix}"
        ) from cached_error
    try:
        folder = Path(
            snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES, cache_dir=cache, token=token)
        )
        if not weight_files(folder):
            folder = Path(
                snapshot_download(repo_id, revision=revision, allow_patterns=["*.bin"], cache_dir=cache, token=token)
            )
    except Exception as error:  # huggingface_hub raises HTTP, network, gating and not-found errors of many types
        cause = " ".join(f"{type(error).__name__}: {error}".split())
        raise ModelLoadError(
            f"{where} is not in the local Hugging Face cache ({cache}) and could not be downloaded ({cause}). {fix}"
        ) from error
    return folder


def hub_cache() -> Path:
    """The Hugging Face hub cache, read from the environment at each call (huggingface_hub reads it once, at
    import): ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "huggingface"
    return Path(home) / "hub"
