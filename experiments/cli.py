"""The command line of every experiment: one set of shared flags, a frozen config per run, one error policy.

An experiment declares a frozen dataclass that extends :class:`RunConfig` (the flags every experiment
shares: ``--model``, ``--device``, ``--dtype``, ``--seed``, ``--batch-size``, ``--out``, ``--no-png``) with its
own fields; :func:`experiments.flags.parser_for`
turns the fields into flags (``n_pairs`` -> ``--n-pairs``; a tuple field takes
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

Error policy (one ``error:`` line and exit status 2 for bad input): :mod:`experiments.policy`; saved results
found and loaded for ``--replot``: :mod:`experiments.results`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

from experiments.config import C, PairsConfig, RunConfig, SweepConfig
from experiments.flags import parse
from experiments.lock import output_lock
from experiments.policy import run
from experiments.results import load_result, saved_result
from lens_bias.errors import InputError

if TYPE_CHECKING:  # the library is imported where it is used: --help must not load torch
    from lens_bias.executors import Executor
    from lens_bias.models import AnyModel
    from lens_bias.provenance import Result

__all__ = [
    "PairsConfig",
    "RunConfig",
    "SweepConfig",
    "executor",
    "load",
    "load_result",
    "main",
    "parse",
    "run",
    "saved_result",
]


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
        if replot is None and isinstance(parsed, SweepConfig) and parsed.address is not None:
            from lens_bias.addresses import check_ray_address

            check_ray_address(parsed.address)  # before the model loads: nothing listening is one error line
        path = replot if replot is not None else run(parsed)
        if path.is_dir():
            path = saved_result(path, result_name)
        result = load_result(path, result_name)
        if replot is None:
            report(result, path, parsed)
            return result
        try:
            report(result, path, parsed)
        except InputError:
            raise
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            raise InputError(
                f"--replot {path}: this saved {result_name!r} result lacks what its report reads "
                f"({type(error).__name__}: {error}): damaged, edited or written by another version; run the "
                "experiment again."
            ) from error
    return result
