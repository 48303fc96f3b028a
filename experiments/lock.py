"""The run lock of an output folder: one run at a time writes into a ``--out`` folder.

A run holds ``{--out}/.lens_bias.lock`` while it works: an OS file lock (:mod:`filelock`, ``flock`` on POSIX),
which the operating system releases when the process ends however it ends, so the lock of a killed run is free
at once (no stale-pid check). After taking the lock the run writes who holds it into the file (pid, host, start
time, as JSON); a second run on the same folder is refused with an :class:`InputError` naming that holder. A
clean exit empties the file before releasing the lock; a file that still names a holder when the lock is free was
left by a run that died, and taking it over warns once, naming that run. The file itself stays (other runs may be
waiting on it).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from lens_bias.errors import InputError
from lens_bias.files import writable_folder

#: The lock file a run holds in its output folder.
LOCK_NAME = ".lens_bias.lock"


@contextmanager
def output_lock(out: str | Path) -> Iterator[Path]:
    """Hold ``{out}/.lens_bias.lock`` for the block (creating ``out``); yields the lock file's path. Raises
    :class:`InputError` when another run holds it, when ``out`` cannot be created or written, or when the lock file
    cannot be written (another user's); warns when taking over the lock of a run that died."""
    folder = writable_folder(out, "the run's output")
    path = folder / LOCK_NAME
    lock = FileLock(path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise InputError(
            f"--out {folder} is in use by another run ({_describe(read_holder(path))}): wait for it to finish, "
            "or pass another --out."
        ) from None
    except OSError as error:
        raise _unwritable(path, error) from None
    try:
        previous = read_holder(path)
        if previous is not None:
            warnings.warn(
                f"--out {folder}: stale lock of {_describe(previous)}: that run ended without releasing it; "
                "taking it over.",
                stacklevel=3,
            )
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        try:
            path.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}))
        except OSError as error:
            raise _unwritable(path, error) from None
        try:
            yield path
        finally:
            path.write_text("")
    finally:
        lock.release()


def _unwritable(path: Path, error: OSError) -> InputError:
    return InputError(
        f"--out {path.parent}: cannot take the run lock {path} ({error.strerror or error}): it belongs to another "
        "user or cannot be written; pass another --out."
    )


def read_holder(path: Path) -> dict[str, Any] | None:
    """Who the lock file names as its holder (``pid``, ``host``, ``started``); None when it names none."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return holder if isinstance(holder, dict) and holder else None


def _describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "its pid is not recorded yet"
    return f"pid {holder.get('pid')} on host {holder.get('host')}, started {holder.get('started')}"
