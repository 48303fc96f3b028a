"""Saved results for ``--replot``: the one result of an experiment in a folder, and a result loaded with a clear
error for a missing file, another format or another experiment's result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from lens_bias.errors import InputError

if TYPE_CHECKING:  # the library is imported where it is used: --help must not load torch
    from lens_bias.provenance import Result


def saved_result(folder: Path, name: str) -> Path:
    """The one saved result of experiment ``name`` directly in ``folder``; :class:`InputError` if none or several."""
    from lens_bias.provenance import RESULT_FORMAT

    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(document, dict) and document.get("format") == RESULT_FORMAT and document.get("name") == name:
            found.append(path)
    if len(found) != 1:
        what = f"{len(found)} saved {name!r} results ({', '.join(map(str, found))})" if found else f"no {name!r} result"
        raise InputError(f"--replot: {folder} holds {what}: pass the one to redraw, --replot RESULT.json.")
    return found[0]


def load_result(path: str | Path, name: str) -> Result:
    """A saved result of experiment ``name``; a clear error for a missing file, another format or another
    experiment's result."""
    from lens_bias.provenance import Result

    path = Path(path)
    if not path.is_file() and not path.with_suffix(".json").is_file():
        raise InputError(f"No saved result at {path}: give the .json file an earlier run wrote.")
    try:
        result = Result.load(path)
    except (ValueError, KeyError) as error:
        raise InputError(f"{path} is not a saved lens_bias result ({error}).") from error
    if result.name != name:
        raise InputError(
            f"{path} holds a {result.name!r} result, not {name!r}: replot it with "
            f"`python -m experiments.{result.name} --replot {path}`."
        )
    return result
