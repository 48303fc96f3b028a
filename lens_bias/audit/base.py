"""The audit's one protocol: a measure scores its items into row arrays; statistics of rows give intervals.

A :class:`Measure` (StereoSet, CrowS-Pairs, BBQ, persona BBQ, quality of service) does three things:

* ``score(model, interventions, cells=..., ...)`` runs the model on the measure's items under the
  interventions and returns :data:`Rows`: arrays aligned on the measure's *rows* (one row per item, or
  per item x persona, ...), always with a boolean ``failed`` array (a row the model could not be scored
  on). Scoring goes through a :class:`lens_bias.cells.CellStore`, chunk by chunk, so an interrupted
  run resumes. :class:`CellMeasure` is its one implementation: a measure says which cells it has
  (``cells``), what one computes (``score_cell``) and how the cells' arrays make its rows (``rows``).
* ``summarize(rows, seed=...)`` returns a :data:`Summary` (below): every statistic of every group with a
  bootstrap interval, n scored and n failed, and the reason when a statistic is undefined.
* ``compare(base, other, seed=...)`` returns the same shape for the paired change ``other - base``
  (the same rows under two conditions, resampled together).

Most measures only declare their groups and :class:`Statistic` s and inherit both from
:class:`RowMeasure`. The figures of a measure are drawn from its saved summaries by
:mod:`lens_bias.figures.audit`. The summary shape, shared by every measure and read by the audit's table::

    {"groups": {group: {"n_rows": int, "n_failed": int,
                        "stats": {stat: Estimate dict | {"value": None, "undefined": reason}}}},
     "statistics": {stat: {"label": str, "ideal": float | None}},
     "headline": [[group, stat], ...],
     "convention": str | None}     # the named scoring convention of the statistics (None: the measure has none)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from lens_bias.cells import CellStore
from lens_bias.data.records import fingerprint
from lens_bias.errors import InputError
from lens_bias.interventions import Intervention
from lens_bias.models import AnyModel
from lens_bias.stats import SMALL_N, Estimate, bootstrap_rows, bootstrap_sums, small_groups, wilson

Rows = dict[str, np.ndarray]
"""Row-aligned arrays of one measure under one condition (each ``[n_rows, ...]``; ``failed``: bool)."""
Summary = dict[str, Any]
"""See the module docstring."""
Arrays = dict[str, np.ndarray]
"""What one cell computes (saved in the cell store)."""

N_RESAMPLES = 1000
"""Bootstrap replicates of every audit interval (percentile intervals at 95%)."""


@dataclass(frozen=True)
class Sums:
    """How a statistic that is a function of column sums of per-row values (a ratio of counts, say) is computed
    from them: ``columns(rows, index)``, each row's values ``[len(index), k]``; ``of(sums)``, the statistic of
    summed columns ``[r, k] -> [r]`` (NaN where undefined). Its bootstrap then takes every replicate in one
    vectorised step (:func:`lens_bias.stats.bootstrap_sums`) with the interval that calling ``compute`` per
    replicate gives."""

    columns: Callable[[Rows, np.ndarray], np.ndarray]
    of: Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Statistic:
    """One number of a measure, computed from rows.

    ``compute(rows, index)`` returns the statistic on the rows ``index`` (integer positions, repeats
    allowed); NaN when undefined, with ``undefined(rows, index)`` saying why. ``label`` names it with its
    unit; ``ideal`` is the value of an unbiased model (None when there is none). ``proportion(rows, index)``,
    for a statistic that is a share of rows: ``(successes, n)``, and the interval is Wilson's
    (:func:`lens_bias.stats.wilson`) instead of the bootstrap's, which collapses at 0 or n successes. ``sums``,
    for a statistic of column sums: the same statistic in that form, for a fast bootstrap (:class:`Sums`)."""

    name: str
    label: str
    compute: Callable[[Rows, np.ndarray], float]
    undefined: Callable[[Rows, np.ndarray], str]
    ideal: float | None = None
    proportion: Callable[[Rows, np.ndarray], tuple[int, int]] | None = None
    sums: Sums | None = None


def _undefined(reason: str) -> dict[str, Any]:
    return {"value": None, "undefined": reason}


def estimate(statistic: Statistic, rows: Rows, index: np.ndarray, clusters: np.ndarray, *, seed: int) -> dict[str, Any]:
    """``statistic`` on ``rows[index]`` with a cluster-bootstrap interval, or why it is undefined."""
    if index.size == 0:
        return _undefined("no rows in this group")
    value = statistic.compute(rows, index)
    if not math.isfinite(value):
        return _undefined(statistic.undefined(rows, index))
    if statistic.proportion is not None:
        return wilson(*statistic.proportion(rows, index)).to_dict()
    if statistic.sums is not None:
        columns = statistic.sums.columns(rows, index)
        return _quiet(partial(bootstrap_sums, columns, statistic.sums.of), clusters[index], seed)
    return _quiet(partial(bootstrap_rows, lambda sub: statistic.compute(rows, index[sub])), clusters[index], seed)


def _quiet(bootstrap: Callable[..., Estimate], clusters: np.ndarray, seed: int) -> dict[str, Any]:
    # Small groups have resamples where a statistic is undefined (e.g. no non-unknown answer): those
    # replicates are left out of the percentile interval (lens_bias.stats), silently here: an audit has
    # hundreds of groups, and a warning per group would bury the output.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return bootstrap(clusters, n_resamples=N_RESAMPLES, seed=seed).to_dict()


def paired_change(
    statistic: Statistic, base: Rows, other: Rows, index: np.ndarray, clusters: np.ndarray, *, seed: int
) -> dict[str, Any]:
    """``statistic(other) - statistic(base)`` on the same rows, resampled together (a paired interval)."""
    if index.size == 0:
        return _undefined("no rows in this group")

    def delta(sub: np.ndarray) -> float:
        return statistic.compute(other, index[sub]) - statistic.compute(base, index[sub])

    value = delta(np.arange(index.size))
    if not math.isfinite(value):
        reasons = {
            statistic.undefined(r, index) for r in (base, other) if not math.isfinite(statistic.compute(r, index))
        }
        return _undefined("; ".join(sorted(reasons)) or "the change is not finite")
    if statistic.sums is None:
        return _quiet(partial(bootstrap_rows, delta), clusters[index], seed)
    sums = statistic.sums
    before, after = sums.columns(base, index), sums.columns(other, index)
    k = before.shape[1]

    def change(totals: np.ndarray) -> np.ndarray:
        return sums.of(totals[:, k:]) - sums.of(totals[:, :k])

    return _quiet(partial(bootstrap_sums, np.concatenate([before, after], 1), change), clusters[index], seed)


@dataclass(frozen=True)
class MeasureOptions:
    """The audit's settings every registered measure is built from (``None`` sizes: all items).

    ``n_stereoset`` items (or ``split_file``, a StereoSet file in the dev.json format); ``n_crows_pairs``
    pairs (or your own contrast pairs, ``pairs_file`` read through the ``columns`` mapping, as sentence pairs:
    :func:`lens_bias.data.tables.pairs_as_sentences`); ``n_bbq`` questions per category (or your own,
    ``bbq_file``: :func:`lens_bias.data.tables.load_bbq_items`; ``bbq_chat``: through the chat template); the named
    scoring conventions ``crows_pairs_convention`` and ``bbq_convention`` (default: the authors'); persona BBQ:
    ``n_persona_bbq`` questions per category and context, ``personas`` (None: the default six) and
    ``n_rewordings``; service: ``n_service_names`` first names per group, the first ``n_service_templates``
    templates, ``n_service_samples`` answers per request of ``max_new_tokens``; ``sizes``: the sizes of a
    user's own measures by name; every draw uses ``seed``."""

    seed: int = 0
    n_stereoset: int | None = None
    split_file: Path | None = None
    n_crows_pairs: int | None = None
    crows_pairs_convention: str = "authors"
    pairs_file: Path | None = None
    columns: tuple[str, ...] = ()
    n_bbq: int | None = None
    bbq_file: Path | None = None
    bbq_chat: bool = False
    bbq_convention: str = "authors"
    n_persona_bbq: int | None = 40
    personas: tuple[str, ...] | None = None
    n_rewordings: int = 3
    n_service_names: int | None = 2
    n_service_templates: int | None = None
    n_service_samples: int = 2
    max_new_tokens: int = 48
    sizes: Mapping[str, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.bbq_convention == "harness" and (self.bbq_chat or self.bbq_file is not None):
            raise InputError(
                "The harness BBQ convention is lm-evaluation-harness's raw-text prompt on the BBQ release: "
                "no chat template (bbq_chat) and no own questions (bbq_file)."
            )

    @classmethod
    def pick(cls, settings: Mapping[str, Any]) -> MeasureOptions:
        """The options named in ``settings`` (e.g. an experiment's config as a dict); others are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in settings.items() if key in names})


class Measure(Protocol):
    """What the audit runs; see the module docstring."""

    name: ClassVar[str]

    @property
    def raw_text(self) -> bool:
        """True when the measure scores raw text (no chat template): interventions that start at the end
        of a chat instruction cannot apply to it."""
        ...

    def describe(self) -> dict[str, Any]:
        """Conventions, sizes and data fingerprint (recorded in the result and in every cell key)."""
        ...

    @property
    def score(self) -> Callable[..., Rows]:
        """``score(model, interventions, *, cells, batch_size, progress) -> Rows`` (see the module docstring;
        :meth:`CellMeasure.score` is the one implementation)."""
        ...

    def summarize(self, rows: Rows, *, seed: int) -> Summary: ...

    def item_info(self) -> list[dict[str, str]] | None:
        """Per row: ``item_id``, ``text`` and ``group`` (the rows of the per-item table); None when the rows are
        not one per item (e.g. item x persona): then a row is named by its number."""
        ...

    def compare(self, base: Rows, other: Rows, *, seed: int) -> Summary: ...

    @classmethod
    def from_options(cls, options: MeasureOptions, model: AnyModel | None) -> Measure:
        """The measure built from the audit's settings (``model`` None: a measure that needs it refuses);
        what :mod:`lens_bias.audit.registry` calls."""
        ...


class CellMeasure:
    """The one ``score`` of every measure: its cells through the store, then its rows from their arrays.

    Subclasses define ``desc`` (the progress label), ``cells(model, batch_size=...)`` (the key and the
    payload of every cell, in row order; :func:`item_chunks` for items in chunks), ``score_cell(model,
    payload, interventions=..., batch_size=...)`` (one cell's arrays) and may override ``rows(model, parts)``
    (default: every array concatenated along its first axis)."""

    name: ClassVar[str]
    desc: ClassVar[str]

    def cells(self, model: AnyModel, *, batch_size: int) -> tuple[list[dict[str, Any]], list[Any]]:
        raise NotImplementedError

    def score_cell(
        self, model: AnyModel, payload: Any, *, interventions: Sequence[Intervention], batch_size: int
    ) -> Arrays:
        raise NotImplementedError

    def item_info(self) -> list[dict[str, str]] | None:
        """See :meth:`Measure.item_info` (this default: rows named by their number)."""
        return None

    def rows(self, model: AnyModel, parts: list[Arrays]) -> Rows:
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def score(
        self,
        model: AnyModel,
        interventions: Sequence[Intervention],
        *,
        cells: CellStore,
        batch_size: int,
        progress: bool,
    ) -> Rows:
        """The measure's rows for ``model`` under ``interventions`` (see the module docstring)."""
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}.")
        keys, payloads = self.cells(model, batch_size=batch_size)
        compute = partial(self.score_cell, interventions=interventions, batch_size=batch_size)
        parts = cells.map(keys, payloads, compute, model=model, desc=self.desc, progress=progress)
        return self.rows(model, parts)


def item_chunks(items: Sequence[Any], chunk: int, key: dict[str, Any]) -> tuple[list[dict[str, Any]], list[Any]]:
    """``items`` in chunks of ``chunk`` as cells: each keyed by ``key`` plus the chunk's item fingerprint."""
    if chunk < 1:
        raise InputError(f"chunk must be >= 1, got {chunk}.")
    parts = [items[start : start + chunk] for start in range(0, len(items), chunk)]
    return [{**key, "items": fingerprint(part)} for part in parts], parts


class RowMeasure(CellMeasure):
    """``summarize`` and ``compare`` from ``groups()``, ``statistics()``, ``clusters()`` and ``HEADLINE``.

    Subclasses define ``groups(rows)`` (name -> row indices; ``"overall"`` first), ``statistics()``,
    ``HEADLINE`` (the (group, statistic) pairs shown in the audit table, or ``headline()`` where they
    depend on the instance), ``convention`` (the benchmark's named scoring convention, recorded in every
    summary; None when it has none) and may override ``clusters(rows)`` (the bootstrap's resampling unit
    per row; default: each row its own)."""

    HEADLINE: ClassVar[tuple[tuple[str, str], ...]] = ()
    convention: str | None = None

    def headline(self) -> tuple[tuple[str, str], ...]:
        """The (group, statistic) pairs shown in the audit table (default ``HEADLINE``)."""
        return self.HEADLINE

    def groups(self, rows: Rows) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def statistics(self) -> Sequence[Statistic]:
        raise NotImplementedError

    def clusters(self, rows: Rows) -> np.ndarray:
        return np.arange(len(rows["failed"]))

    def _header(self) -> dict[str, Any]:
        return {
            "statistics": {s.name: {"label": s.label, "ideal": s.ideal} for s in self.statistics()},
            "headline": [list(pair) for pair in self.headline()],
            "convention": self.convention,
        }

    def summarize(self, rows: Rows, *, seed: int) -> Summary:
        clusters = self.clusters(rows)
        groups = {}
        by_group = self.groups(rows)
        small = small_groups({group: int(index.size) for group, index in by_group.items()})
        if small:
            warnings.warn(
                f"{self.name}: fewer than {SMALL_N} rows in {', '.join(small)}: their intervals rest on too few "
                "items to say much; give more items.",
                stacklevel=2,
            )
        for group, index in by_group.items():
            groups[group] = {
                "n_rows": int(index.size),
                "n_failed": int(rows["failed"][index].sum()),
                "stats": {s.name: estimate(s, rows, index, clusters, seed=seed) for s in self.statistics()},
            }
        return {"groups": groups, **self._header()}

    def compare(self, base: Rows, other: Rows, *, seed: int) -> Summary:
        clusters = self.clusters(base)
        groups = {}
        for group, index in self.groups(base).items():
            groups[group] = {
                "n_rows": int(index.size),
                "n_failed": int((base["failed"][index] | other["failed"][index]).sum()),
                "stats": {s.name: paired_change(s, base, other, index, clusters, seed=seed) for s in self.statistics()},
            }
        return {"groups": groups, **self._header()}


def value_of(entry: dict[str, Any]) -> Estimate | None:
    """An Estimate from a summary's statistic entry, or None when it is undefined."""
    return None if entry.get("value") is None else Estimate.from_dict(entry)
