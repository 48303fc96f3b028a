"""A saved config as the command line that reproduces it (the figures index shows one per result): the flags that
differ from the experiment's defaults, in the scheme of :mod:`experiments.flags`. Imports nothing heavy."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import re
import shlex
import typing
from collections.abc import Mapping
from typing import Any

from experiments.config import RunConfig
from experiments.flags import flag_name, flag_type
from lens_bias.errors import InputError

if typing.TYPE_CHECKING:  # imported where used: --help must not load torch
    from lens_bias.figures.index import Experiment


def experiment_config(name: str) -> type[RunConfig] | None:
    """The ``Config`` of experiment module ``experiments.<name>``, or None when there is no such experiment."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or importlib.util.find_spec(f"experiments.{name}") is None:
        return None
    config = getattr(importlib.import_module(f"experiments.{name}"), "Config", None)
    return config if isinstance(config, type) and issubclass(config, RunConfig) else None


def experiment(name: str) -> Experiment | None:
    """What the figures index shows of ``experiments.<name>``'s results (its command line from a saved config, its
    ``summarize``), or None when there is no such experiment (the result is an artefact)."""
    from lens_bias.figures.index import Experiment

    config = experiment_config(name)
    if config is None:
        return None
    summarize = getattr(importlib.import_module(f"experiments.{name}"), "summarize", None)
    return Experiment(lambda saved: command_line(name, config, saved), summarize if callable(summarize) else None)


def command_line(name: str, config: type[RunConfig], saved: Mapping[str, Any]) -> str:
    """``python -m experiments.<name> <flags>``: the flags of ``config`` whose value in ``saved`` (a result's
    saved config) differs from the field's default, in field order, by :func:`parser_for`'s rules: a boolean as
    its switch (``--no-png``), a tuple as several values, None of an optional number as ``all``, of another
    optional value as ``none``. Fields ``saved`` lacks are left out (today's default). Raises :class:`InputError`
    for a value no flag can give (None for a field that is not optional, an empty tuple for a flag that needs a
    value)."""
    from lens_bias.provenance import to_jsonable

    hints = typing.get_type_hints(config)
    words = ["python", "-m", f"experiments.{name}"]
    for f in dataclasses.fields(config):
        if f.name not in saved or saved[f.name] == to_jsonable(f.default):
            continue
        value, flag = saved[f.name], flag_name(config, f)
        element, optional, several = flag_type(hints[f.name])
        if element is bool:
            words.append(flag)
        elif value is None and optional and not several:
            words += [flag, "all" if element in (int, float) else "none"]
        elif several and isinstance(value, list) and (value or optional):
            words += [flag, *map(str, value)]
        elif value is None or isinstance(value, (list, dict)):
            raise InputError(f"experiments.{name}: {f.name}={value!r} cannot be given as a flag.")
        else:
            words += [flag, str(value)]
    return shlex.join(words)
