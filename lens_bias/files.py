"""Atomic file writes: a file is either absent or complete, never half written.

Every file the toolkit saves (results, figures, interventions, sweep cells, the converted-weights cache)
goes through :func:`atomic_path` (or :func:`lens_bias.cache.store`, for files and folders alike): the content is
written to a staging path in the same folder, ``.{name}.{host}.{pid}.tmp`` (:func:`staging_path`), and renamed
over the destination only once it is complete (``os.replace`` is atomic on POSIX and Windows within one file
system). An interrupt or exception while writing leaves the old file (or none) and no staging path behind; a
staging path that a process killed mid-write (SIGKILL, a lost machine) left is removed by the next write of the
same destination on the same host (:func:`remove_stale_staging`: its pid no longer runs). Files get the
permissions ``open()`` gives (``0o666`` less the umask), not a temporary file's private ``0o600``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
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
    remove_stale_staging(path)
    tmp = staging_path(path)
    remove(tmp)
    try:
        yield tmp
        if tmp.is_file():
            tmp.chmod(0o666 & ~umask())  # some writers create private files; give the permissions open() would
        os.replace(tmp, path)
    finally:
        remove(tmp)


def umask() -> int:
    """The process's file-mode creation mask."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def staging_path(path: str | Path) -> Path:
    """Where this process writes ``path`` before renaming it into place: ``.{name}.{host}.{pid}.tmp`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")


def remove(path: Path) -> None:
    """Remove a file or folder at ``path`` if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def remove_stale_staging(path: str | Path) -> list[Path]:
    """Remove the staging paths of ``path`` left by processes of this host that no longer run (a write killed
    mid-way); returns what was removed. Staging paths of live processes and of other hosts are left alone."""
    path = Path(path)
    host = socket.gethostname()
    removed = []
    for staging in path.parent.glob(f".{path.name}.*.tmp"):
        owner, _, pid = staging.name[len(path.name) + 2 : -len(".tmp")].rpartition(".")
        if owner == host and pid.isdigit() and not _alive(int(pid)):
            remove(staging)
            removed.append(staging)
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (unknown, e.g. on Windows: assumed alive)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, under another user
        return True
    return True


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
