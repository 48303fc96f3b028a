"""Atomic file writes: a file is either absent or complete, never half written.

Every file the toolkit saves (results, figures, interventions, sweep cells, the converted-weights cache)
goes through :func:`atomic_path`: the content is written to a temporary file in the same folder and
renamed over the destination only once it is complete (``os.replace`` is atomic on POSIX and Windows
within one file system). An interrupt or crash while writing leaves the old file (or none) and no
temporary file behind.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lens_bias.errors import InputError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it replaces ``path`` atomically.

    Write the whole content to the yielded path (any writer that takes a path: ``save_file``,
    ``fig.write_html``...). If the block raises (or is interrupted), the temporary file is removed and
    ``path`` is left as it was. The parent folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(0o666 & ~_umask())  # mkstemp makes the file private; give it the permissions open() would
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 16 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)
    return digest.hexdigest()


def writable_folder(folder: str | Path, what: str) -> Path:
    """Create ``folder`` if needed and check that files can be written in it, before the work that writes them;
    :class:`lens_bias.errors.InputError` (what to do) when it is a file or cannot be written."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise InputError(f"Cannot keep {what} in {folder}: {error.filename} is a file. Pass another --out.") from error
    except OSError as error:
        raise InputError(f"Cannot create {folder} for {what} ({error.strerror}). Pass another --out.") from error
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"Cannot write {what} in {folder} (no write permission). Pass another --out.")
    return folder
