"""The command line of every experiment: one set of shared flags, a frozen config per run, one error policy.

An experiment declares a frozen dataclass that extends :class:`RunConfig` (the flags every experiment
shares: ``--model``, ``--device``, ``--seed``, ``--batch-size``, ``--out``, ``--no-png``) with its own fields;
:func:`parser_for` turns the fields into flags (``n_pairs`` -> ``--n-pairs``; a tuple field takes several
values; ``bool`` fields that default to True get ``--no-<name>``; an optional number takes ``all`` for None;
``metadata`` gives ``help``, ``choices``, ``flag`` (another flag name) and ``min`` (smallest allowed value,
checked before any work); a subclass that redeclares a field to change its default keeps the metadata
its base class gave that field). Every parser
also has ``--quick`` (the experiment's smoke-run defaults; values given explicitly still win) and
``--replot RESULT.json`` (redraw from a saved result, no model run). The config is what the result records.

Output folders: a run holds ``{--out}/.lens_bias.lock`` (pid, host, start time) while it works; a second run
on the same folder is refused with an ``error:`` line naming the holder (wait for it, or pass another
``--out``); a lock left by a run that died (its pid no longer runs on this host) is taken over with a
warning. ``--replot`` takes no lock.

Error policy: bad input (:class:`lens_bias.errors.InputError` and its subclasses, or a file that does not
exist) ends in one ``error: ...`` line on stderr and exit status 2; argparse's own usage errors exit 2 too.
Any other exception is a bug and keeps its traceback. ``LENS_BIAS_DEBUG=1`` shows the traceback of input
errors as well.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import socket
import sys
import tempfile
import types
import typing
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from lens_bias.errors import InputError
from lens_bias.executors import Executor, ModelSpec, RayExecutor, Serial
from lens_bias.models import EMBEDDED_MODEL
from lens_bias.provenance import Result, to_jsonable

#: Errors that are the user's: printed as one line, exit status 2.
USER_ERRORS = (InputError, FileNotFoundError)

C = TypeVar("C", bound="RunConfig")


@dataclass(frozen=True)
class RunConfig:
    """The flags every experiment shares. Subclasses add their own fields (all with defaults) and may
    redeclare a field to change its default (e.g. ``out``, ``batch_size``)."""

    model: str = field(default=EMBEDDED_MODEL, metadata={"help": "model name or path (see lens_bias.load_model)"})
    device: str | None = field(default=None, metadata={"help": "torch device (default: cuda if available, else cpu)"})
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


@contextmanager
def executor(config: SweepConfig) -> Iterator[Executor]:
    """The executor ``config`` names; the Ray workers load the model the run loads (``--model``,
    ``--device``, ``--dtype`` where the experiment has it)."""
    if config.executor == "serial":
        yield Serial()
        return
    spec = ModelSpec(config.model, device=config.device, dtype=getattr(config, "dtype", None))
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


def parser_for(config: type[RunConfig], description: str | None) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of ``config``, plus ``--quick`` and ``--replot``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    hints = typing.get_type_hints(config)
    for f in dataclasses.fields(config):
        meta = metadata(config, f.name)
        if f.default is dataclasses.MISSING:
            raise TypeError(f"{config.__name__}.{f.name} needs a default (every flag has one).")
        default = f.default
        element, optional, several = flag_type(hints[f.name])
        if element is bool:
            flag = meta.get("flag", f"--no-{f.name.replace('_', '-')}" if default else f"--{f.name.replace('_', '-')}")
            parser.add_argument(
                flag, dest=f.name, action="store_false" if default else "store_true", help=meta.get("help")
            )
            continue
        convert = _optional(element) if optional and not several and element in (int, float) else element
        text = meta.get("help")
        if convert is not element:
            text = f"{text or ''} ('all': no limit)".strip()
        kwargs: dict[str, Any] = {"dest": f.name, "default": default, "type": convert, "help": text}
        if "choices" in meta:
            kwargs["choices"] = meta["choices"]
        if several:
            kwargs["nargs"] = "*" if optional else "+"
        parser.add_argument(meta.get("flag", f"--{f.name.replace('_', '-')}"), **kwargs)
    own = {f.name for f in dataclasses.fields(config)}  # a config may declare --quick/--replot itself (figures)
    if "quick" not in own:
        parser.add_argument("--quick", action="store_true", help="the smoke-run defaults (explicit values still win)")
    if "replot" not in own:
        parser.add_argument("--replot", type=Path, default=None, help="redraw from a saved result, without a model run")
    return parser


def parse(
    config: type[C], argv: list[str] | None, *, description: str | None = None, quick: dict[str, Any] | None = None
) -> tuple[C, Path | None]:
    """Parse ``argv`` into ``(config, replot path or None)``. With ``--quick``, ``quick`` replaces the
    defaults; arguments given explicitly still win. The config validates itself before any work."""
    parser = parser_for(config, description)
    args = parser.parse_args(argv)
    if args.quick and quick:
        parser.set_defaults(**quick)
        args = parser.parse_args(argv)
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return config(**values), None if "replot" in values else args.replot


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
        result = load_result(path, result_name)
        report(result, path, parsed)
    return result


#: The lock file a run holds in its output folder (see the module docstring).
LOCK_NAME = ".lens_bias.lock"


@contextmanager
def output_lock(out: str | Path) -> Iterator[Path]:
    """Hold ``{out}/.lens_bias.lock`` for the block (creating ``out``); refuse a folder another live run holds
    (:class:`InputError`), take over the lock of a run that died on this host (one-line warning). The lock
    file appears complete or not at all (written aside, then hard-linked into place, which fails if it exists)."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_NAME
    mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": _now()})
    for attempt in range(2):
        if _create_lock(lock, mine):
            break
        text, holder = _read_lock(lock)
        if holder is None:
            continue  # released meanwhile: try again
        pid, host, started = holder.get("pid"), holder.get("host"), holder.get("started")
        if attempt == 0 and host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            warnings.warn(
                f"--out {folder}: stale lock of pid {pid} (started {started}), which no longer runs; taking it over.",
                stacklevel=3,
            )
            _remove_lock(lock, text)
            continue
        raise InputError(
            f"--out {folder} is in use by another run (pid {pid} on host {host}, started {started}): wait for it "
            f"to finish, or pass another --out. If no such run exists, delete {lock}."
        )
    else:
        raise InputError(f"--out {folder}: could not take the lock {lock}; try again, or delete it if no run uses it.")
    try:
        yield lock
    finally:
        _remove_lock(lock, mine)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _create_lock(lock: Path, text: str) -> bool:
    """Create ``lock`` holding ``text`` unless it exists; True if created."""
    fd, aside = tempfile.mkstemp(prefix=f"{lock.name}.", suffix=".tmp", dir=lock.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.link(aside, lock)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(aside)


def _read_lock(lock: Path) -> tuple[str, dict[str, Any] | None]:
    """``(text, holder)`` of a lock file; holder None when it vanished; ``{}`` when it is not a lock's JSON."""
    try:
        text = lock.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "", None
    try:
        holder = json.loads(text)
    except ValueError:
        return text, {}
    return text, holder if isinstance(holder, dict) else {}


def _remove_lock(lock: Path, text: str) -> None:
    """Remove ``lock`` if it still holds ``text`` (moved aside first, so another run's new lock is never removed)."""
    aside = lock.with_name(f"{lock.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        os.replace(lock, aside)
    except FileNotFoundError:
        return
    if aside.read_text(encoding="utf-8") != text:  # not the lock we meant: put it back
        with suppress(FileExistsError):
            os.link(aside, lock)
    aside.unlink()


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


def load_result(path: str | Path, name: str) -> Result:
    """A saved result of experiment ``name``; a clear error for a missing file, another format or another
    experiment's result."""
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
