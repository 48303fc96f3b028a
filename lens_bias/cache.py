"""The one artefact cache: key it, compute it once, reuse it only when it provably belongs to the key.

Every artefact the toolkit keeps between runs (sweep cells, fitted debiasing methods, fine-tuned model folders,
self-generated preference data, converted weights) goes through :func:`cached`. An artefact is a file or a
folder at ``path``; beside it, ``{path}.cache.json`` records what it was computed from (the key, as canonical
JSON) and the size and SHA-256 of every file it holds. It is reused only when that record exists, its key equals
the caller's key, and every file still has its recorded size and (unless ``verify=False``) SHA-256; then
``load(path)`` must succeed too. Anything else (another key, a damaged, truncated or missing file, a record that
cannot be read, a load that fails) costs a one-line warning that says why, and the artefact is computed again:
never a silent reuse.

Writes are atomic: ``compute`` writes into a staging path beside ``path`` (``.{name}.{host}.{pid}.tmp``), which
replaces the old artefact only once complete; the record is written last, so an interrupted write leaves an
artefact without a record, which the next call recomputes. A staging path left by a process that died (a SIGKILL
mid-write) is removed by the next call for the same artefact on the same host. Every file of an artefact gets the
permissions ``open()`` gives (``0o666`` less the umask), whatever its writer did.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from lens_bias.files import file_sha256, remove, remove_stale_staging, staging_path, umask, write_text_atomic
from lens_bias.provenance import to_jsonable

T = TypeVar("T")

#: Tag of a cache record (bump when the record's layout changes).
CACHE_FORMAT = "lens_bias.cache/1"
RECORD_SUFFIX = ".cache.json"


def canonical(key: Mapping[str, Any]) -> Any:
    """``key`` as it reads back from canonical JSON (tuples become lists, tensors nested lists, keys strings)."""
    return json.loads(canonical_json(key))


def canonical_json(key: Mapping[str, Any]) -> str:
    """``key`` as canonical JSON text: sorted keys, no spaces, tensors and arrays as nested lists."""
    return json.dumps(to_jsonable(dict(key)), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def key_sha256(key: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``key`` as canonical JSON: a file name for an artefact keyed by ``key``."""
    return hashlib.sha256(canonical_json(key).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Cached(Generic[T]):
    """What :func:`cached` returns: the artefact's loaded ``value``, where it lives, and whether it was reused."""

    value: T
    path: Path
    reused: bool


def record_path(path: str | Path) -> Path:
    """Where the record of the artefact at ``path`` lives: ``{path}.cache.json``."""
    path = Path(path)
    return path.with_name(path.name + RECORD_SUFFIX)


def cached(
    path: str | Path,
    key: Mapping[str, Any],
    compute: Callable[[Path], None],
    load: Callable[[Path], T],
    *,
    what: str = "cached artefact",
    verify: bool = True,
) -> Cached[T]:
    """The artefact at ``path`` for ``key``: :func:`reuse` it when it provably belongs to ``key`` (see the module
    docstring), else :func:`store` what ``compute(staging)`` writes (a file or a folder at the path it is given).
    Returns ``load(path)``.

    ``what`` names the artefact in warnings ("sweep cell", "converted weights", ...). ``verify=False`` checks
    each file's size but not its SHA-256 (for artefacts of many GB, where hashing on every load costs minutes).
    An exception in ``compute`` leaves the previous artefact (if any) in place and no staging path behind."""
    found = reuse(path, key, load, what=what, verify=verify)
    if found is not None:
        return Cached(found, Path(path), reused=True)
    store(path, key, compute)
    return Cached(load(Path(path)), Path(path), reused=False)


def reuse(
    path: str | Path, key: Mapping[str, Any], load: Callable[[Path], T], *, what: str, verify: bool = True
) -> T | None:
    """``load(path)`` when the artefact at ``path`` provably belongs to ``key``; None when there is none, or (with
    a one-line warning saying why) when it belongs to another key, is damaged or does not load."""
    path = Path(path)
    problem = _problem(path, canonical_json(key), verify)
    if problem is None:
        try:
            return load(path)
        except Exception as error:  # loaders raise many types for files they cannot read
            problem = f"unreadable ({type(error).__name__}: {error})"
    if problem != "absent":
        warnings.warn(f"The {what} {path} is {' '.join(problem.split())}; computing it again.", stacklevel=3)
    return None


def store(path: str | Path, key: Mapping[str, Any], write: Callable[[Path], None]) -> Path:
    """Write the artefact for ``key`` at ``path`` atomically: ``write(staging)`` creates a file or a folder at the
    staging path, which then replaces whatever was at ``path``; the record (key, sizes, SHA-256) is written last.
    Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(path)
    staging = staging_path(path)
    record = record_path(path)
    remove(staging)
    try:
        write(staging)
        if not staging.exists():
            raise RuntimeError(f"The writer of {path} wrote nothing at the staging path {staging}.")
        mode = 0o666 & ~umask()  # writers that stage through private temporary files (safetensors, transformers)
        for file in [staging] if staging.is_file() else [f for f in staging.rglob("*") if f.is_file()]:
            file.chmod(mode)
        files = _inventory(staging)
        record.unlink(missing_ok=True)  # the artefact is invalid until its new record is written
        remove(path)
        os.replace(staging, path)
    finally:
        remove(staging)
    entry = {"format": CACHE_FORMAT, "key": canonical(key), "files": files}
    write_text_atomic(record, json.dumps(entry, indent=1, ensure_ascii=False) + "\n")
    return path


def _problem(path: Path, key_json: str, verify: bool) -> str | None:
    """Why the artefact at ``path`` may not be reused for ``key_json`` ("absent" when there is none yet), or
    None when its record matches the key and every file it lists is intact."""
    record = record_path(path)
    if not record.exists():
        if path.exists():
            return "incomplete (no record: an interrupted write, or written by an older lens_bias)"
        return "absent"
    try:
        entry = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"damaged (its record {record.name} is unreadable: {type(error).__name__})"
    if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT or not isinstance(entry.get("files"), dict):
        return f"of another format (its record {record.name} is not a {CACHE_FORMAT} record)"
    saved_key = json.dumps(entry.get("key"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    if saved_key != key_json:
        return f"computed for another configuration (it differs in {_differences(entry.get('key'), key_json)})"
    for relative, (size, digest) in entry["files"].items():
        file = path / relative if relative else path
        try:
            actual = file.stat().st_size
        except OSError as error:
            return f"damaged ({relative or path.name}: {error.strerror or error})"
        if actual != size:
            return f"damaged ({relative or path.name} has {actual} bytes, {size} were written)"
        if verify and file_sha256(file) != digest:
            return f"damaged ({relative or path.name} differs from what was written: SHA-256 mismatch)"
    return None


def _differences(saved: Any, key_json: str) -> str:
    """The top-level key entries in which ``saved`` and the key differ, for a warning."""
    wanted = json.loads(key_json)
    if not isinstance(saved, dict):
        return "its whole key"
    names = sorted(k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k))
    return ", ".join(names) if names else "its key"


def _inventory(path: Path) -> dict[str, list[Any]]:
    """``{relative path: [size, sha256]}`` of every file of the artefact (``""`` for a single file)."""
    if path.is_file():
        return {"": [path.stat().st_size, file_sha256(path)]}
    return {
        file.relative_to(path).as_posix(): [file.stat().st_size, file_sha256(file)]
        for file in sorted(path.rglob("*"))
        if file.is_file()
    }
