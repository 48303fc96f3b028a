"""The command line of every experiment: one set of shared flags, a frozen config per run, one error policy.

An experiment declares a frozen dataclass that extends :class:`RunConfig` (the flags every experiment
shares: ``--model``, ``--device``, ``--dtype``, ``--seed``, ``--batch-size``, ``--out``, ``--no-png``) with its
own fields; :func:`parser_for` turns the fields into flags (``n_pairs`` -> ``--n-pairs``; a tuple field takes
several values; ``bool`` fields that default to True get ``--no-<name>``; an optional number takes ``all`` for
None; ``metadata`` gives ``help`` (every field has one), ``choices``, ``flag`` (another flag name) and ``min``
(smallest allowed value, checked before any work); a subclass that redeclares a field to change its default
keeps the metadata its base class gave that field). Every parser also has ``--quick`` (the experiment's
smoke-run values, the ``quick`` dict it passes to :func:`main` / :func:`parse`; values given explicitly still
win) and ``--replot [RESULT.json]`` (redraw from a saved result, no model run; without a value: the one saved
result of this experiment directly under ``--out``). ``--help`` shows each flag's default and its ``--quick``
value. The config is what the result records.

This module imports nothing heavy (no torch, no TransformerLens): ``--help`` of an experiment whose module
imports the library inside its functions takes well under a second.

Output folders: a run holds ``{--out}/.lens_bias.lock`` while it works (:mod:`experiments.lock`); a second run
on the same folder is refused with an ``error:`` line naming the holder. ``--replot`` takes no lock.

Error policy: bad input (:class:`lens_bias.errors.InputError` and its subclasses, or a file that does not
exist) ends in one ``error: ...`` line on stderr and exit status 2; argparse's own usage errors exit 2 too.
Any other exception is a bug and keeps its traceback. ``LENS_BIAS_DEBUG=1`` shows the traceback of input
errors as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import os
import re
import shlex
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from experiments.lock import output_lock
from lens_bias.embedded import EMBEDDED_MODEL
from lens_bias.errors import InputError

if TYPE_CHECKING:  # the library is imported where it is used: --help must not load torch
    from lens_bias.executors import Executor
    from lens_bias.models import AnyModel
    from lens_bias.provenance import Result

#: Errors that are the user's: printed as one line, exit status 2.
USER_ERRORS = (InputError, FileNotFoundError)
#: The ``--dtype`` choices (names of torch dtypes).
DTYPES = ("float32", "bfloat16", "float16")

C = TypeVar("C", bound="RunConfig")


@dataclass(frozen=True)
class RunConfig:
    """The flags every experiment shares. Subclasses add their own fields (all with defaults and a ``help``) and
    may redeclare a field to change its default (e.g. ``out``, ``batch_size``)."""

    model: str = field(default=EMBEDDED_MODEL, metadata={"help": "model name or path (see lens_bias.load_model)"})
    device: str | None = field(default=None, metadata={"help": "torch device (default: cuda if available, else cpu)"})
    dtype: str | None = field(
        default=None,
        metadata={
            "help": "weights' dtype (default: load_model's: float32, float16 for Llama 2 on a GPU)",
            "choices": DTYPES,
        },
    )
    seed: int = field(default=0, metadata={"help": "seed of every sample, split and bootstrap"})
    batch_size: int = field(default=32, metadata={"help": "rows per forward pass", "min": 1})
    out: Path = field(default=Path("figures"), metadata={"help": "output folder (results, figures)"})
    png: bool = field(default=True, metadata={"help": "write HTML figures only (no PNG)", "flag": "--no-png"})

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value, minimum = getattr(self, f.name), metadata(type(self), f.name).get("min")
            if minimum is None or value is None:
                continue
            for v in value if isinstance(value, tuple) else (value,):
                if v < minimum:
                    raise InputError(f"--{f.name.replace('_', '-')} must be >= {minimum}, got {v}.")
        out = Path(self.out)
        for folder in (out, *out.parents):
            if folder.exists() and not folder.is_dir():
                raise InputError(f"--out {out}: {folder} is a file, not a folder; pass a folder path.")

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON data (what the saved result records)."""
        from lens_bias.provenance import to_jsonable

        return to_jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})


@dataclass(frozen=True)
class SweepConfig(RunConfig):
    """The flags of an experiment whose long work is a sweep of resumable cells: where the cells run."""

    executor: str = field(
        default="serial",
        metadata={
            "help": "run the cells here (serial) or as tasks on a Ray cluster (ray)",
            "choices": ("serial", "ray"),
        },
    )
    address: str | None = field(
        default=None, metadata={"help": "Ray cluster address (e.g. auto); default: a local Ray instance"}
    )
    workers: int | None = field(
        default=None,
        metadata={"help": "Ray workers, each holding a model (default: one per GPU, else one per CPU core)", "min": 1},
    )

    def __post_init__(self) -> None:
        if self.executor != "ray" and (self.address is not None or self.workers is not None):
            raise InputError("--address and --workers need --executor ray.")
        super().__post_init__()


def load(config: RunConfig) -> AnyModel:
    """The model ``config`` names, loaded as its flags say (``--model``, ``--device``, ``--dtype``)."""
    from lens_bias import models

    return models.load_model(config.model, device=config.device, dtype=config.dtype)


@contextmanager
def executor(config: SweepConfig) -> Iterator[Executor]:
    """The executor ``config`` names; the Ray workers load the model the run loads (``--model``, ``--device``,
    ``--dtype``)."""
    from lens_bias.executors import ModelSpec, RayExecutor, Serial

    if config.executor == "serial":
        yield Serial()
        return
    spec = ModelSpec(config.model, device=config.device, dtype=config.dtype)
    with RayExecutor(spec, address=config.address, workers=config.workers) as ray_executor:
        yield ray_executor


def metadata(config: type[RunConfig], name: str) -> dict[str, Any]:
    """The metadata of field ``name``, merged along the class hierarchy (a subclass's keys win)."""
    merged: dict[str, Any] = {}
    for cls in reversed(config.__mro__):
        for f in dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ():
            if f.name == name:
                merged.update(f.metadata)
    return merged


def _optional(element: type) -> Callable[[str], Any]:
    """argparse type of an optional number: ``all`` is None (no limit), anything else an ``element``."""

    def convert(text: str) -> Any:
        return None if text == "all" else element(text)

    convert.__name__ = element.__name__
    return convert


def flag_type(hint: Any) -> tuple[Any, bool, bool]:
    """``(element type, optional, several values)`` of a field's type hint."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, args[0]
    if typing.get_origin(hint) is tuple:
        return typing.get_args(hint)[0], optional, True
    return hint, optional, False


def flag_name(config: type[RunConfig], f: dataclasses.Field[Any]) -> str:
    """The flag of field ``f``: ``metadata["flag"]``, else ``--<name>`` in kebab case (``--no-<name>`` for a
    boolean that defaults to True)."""
    dashed = f.name.replace("_", "-")
    return metadata(config, f.name).get("flag", f"--no-{dashed}" if f.default is True else f"--{dashed}")


def shown(value: Any, all_is_none: bool) -> str:
    """A value as a command line writes it (``all`` for None where it means no limit)."""
    if value is None:
        return "all" if all_is_none else "none"
    if isinstance(value, (tuple, list)):
        return " ".join(map(str, value)) if value else "none"
    return str(value)


def help_text(config: type[RunConfig], f: dataclasses.Field[Any], quick: Mapping[str, Any] | None) -> str:
    """The help of field ``f``: its ``help``, then ``(default: ...; --quick: ...)`` (a switch shows only a
    ``--quick`` that turns it; a None default whose help already names the default shows no default)."""
    text = metadata(config, f.name).get("help", "")
    element, optional, several = flag_type(typing.get_type_hints(config)[f.name])
    all_is_none = optional and not several and element in (int, float)
    notes = []
    if element is not bool and not (f.default is None and not all_is_none and "default" in text):
        notes.append(f"default: {shown(f.default, all_is_none)}")
    if quick and f.name in quick and quick[f.name] != f.default:
        notes.append(f"--quick: {'on' if element is bool else shown(quick[f.name], all_is_none)}")
    if all_is_none:
        text = f"{text} ('all': no limit)"
    return (f"{text} ({'; '.join(notes)})" if notes else text).strip().replace("%", "%%")


def parser_for(
    config: type[RunConfig], description: str | None, quick: Mapping[str, Any] | None = None
) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of ``config``, plus ``--quick`` and ``--replot``; ``quick``
    (the values ``--quick`` sets) is shown in each flag's help."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(config)
    for f in dataclasses.fields(config):
        if f.default is dataclasses.MISSING:
            raise TypeError(f"{config.__name__}.{f.name} needs a default (every flag has one).")
        meta, flag, text = metadata(config, f.name), flag_name(config, f), help_text(config, f, quick)
        element, optional, several = flag_type(hints[f.name])
        if element is bool:
            parser.add_argument(flag, dest=f.name, action="store_false" if f.default else "store_true", help=text)
            continue
        convert = _optional(element) if optional and not several and element in (int, float) else element
        kwargs: dict[str, Any] = {"dest": f.name, "default": f.default, "type": convert, "help": text}
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        if several:
            kwargs["nargs"] = "*" if optional else "+"
        parser.add_argument(flag, **kwargs)
    own = {f.name for f in dataclasses.fields(config)}  # a config may declare --quick/--replot itself (figures)
    if "quick" not in own:
        parser.add_argument("--quick", action="store_true", help="the smoke-run values (explicit values still win)")
    if "replot" not in own:
        parser.add_argument(
            "--replot",
            nargs="?",
            const="",
            type=str,
            metavar="RESULT.json",
            help="redraw from a saved result, without a model run (no value: this experiment's result under --out)",
        )
    return parser


def parse(
    config: type[C], argv: list[str] | None, *, description: str | None = None, quick: dict[str, Any] | None = None
) -> tuple[C, Path | None]:
    """Parse ``argv`` into ``(config, replot path or None)``: with ``--replot`` and no value, the path is the
    ``--out`` folder (:func:`load_result` finds the result in it). With ``--quick``, ``quick`` replaces the
    defaults; arguments given explicitly still win. The config validates itself before any work."""
    parser = parser_for(config, description, quick)
    args = parser.parse_args(argv)
    if args.quick and quick:
        parser.set_defaults(**quick)
        args = parser.parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    parsed = config(**values)
    if "replot" in values or args.replot is None:
        return parsed, None
    return parsed, Path(args.replot) if args.replot else Path(parsed.out)


def experiment_config(name: str) -> type[RunConfig] | None:
    """The ``Config`` of experiment module ``experiments.<name>``, or None when there is no such experiment."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or importlib.util.find_spec(f"experiments.{name}") is None:
        return None
    config = getattr(importlib.import_module(f"experiments.{name}"), "Config", None)
    return config if isinstance(config, type) and issubclass(config, RunConfig) else None


def command_line(name: str, config: type[RunConfig], saved: Mapping[str, Any]) -> str:
    """``python -m experiments.<name> <flags>``: the flags of ``config`` whose value in ``saved`` (a result's
    saved config) differs from the field's default, in field order, by :func:`parser_for`'s rules: a boolean as
    its switch (``--no-png``), a tuple as several values, None of an optional number as ``all``. Fields ``saved``
    lacks are left out (today's default). Raises :class:`InputError` for a value no flag can give (None for a
    field that takes no ``all``, an empty tuple for a flag that needs a value)."""
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
        elif value is None and optional and not several and element in (int, float):
            words += [flag, "all"]
        elif several and isinstance(value, list) and (value or optional):
            words += [flag, *map(str, value)]
        elif value is None or isinstance(value, (list, dict)):
            raise InputError(f"experiments.{name}: {f.name}={value!r} cannot be given as a flag.")
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def main(
    config: type[C],
    argv: list[str] | None,
    *,
    description: str | None,
    quick: dict[str, Any] | None,
    result_name: str,
    run: Callable[[C], Path],
    report: Callable[[Result, Path, C], None],
) -> Result:
    """The body of every experiment's ``main``: parse, run (or take ``--replot``'s saved result), load the
    saved result and ``report(result, path, config)`` from it (print the summary, draw the figures), so a
    run and a replot print and draw the same. Returns the loaded result."""
    parsed, replot = parse(config, argv, description=description, quick=quick)
    with output_lock(parsed.out) if replot is None else nullcontext():
        path = replot if replot is not None else run(parsed)
        if path.is_dir():
            path = saved_result(path, result_name)
        result = load_result(path, result_name)
        report(result, path, parsed)
    return result


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


def run(main: Callable[[], Any]) -> None:
    """Call ``main()`` under the error policy of the module docstring."""
    try:
        main()
    except USER_ERRORS as error:
        if os.environ.get("LENS_BIAS_DEBUG") == "1":
            raise
        print(f"error: {error}\n(set LENS_BIAS_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(2)
