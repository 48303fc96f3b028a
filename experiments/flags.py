"""A config dataclass as command-line flags: one flag per field (``n_pairs`` -> ``--n-pairs``; a tuple field takes
several values; ``bool`` fields that default to True get ``--no-<name>``; an optional number takes ``all`` for None,
another optional value ``none``),
``--quick`` (the experiment's smoke-run values; values given explicitly still win) and ``--replot [RESULT.json]``;
``--help`` shows each flag's default and its ``--quick`` value. The inverse (a saved config as the command line that
reproduces it) is :mod:`experiments.commands`. Imports nothing heavy."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from experiments.config import C, RunConfig, metadata


def _optional(element: type, word: str) -> Callable[[str], Any]:
    """argparse type of an optional value: ``word`` (``all`` for a number, no limit; ``none`` otherwise) is None,
    anything else an ``element``."""

    def convert(text: str) -> Any:
        return None if text == word else element(text)

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
        number = element in (int, float)
        convert = _optional(element, "all" if number else "none") if optional and not several else element
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
