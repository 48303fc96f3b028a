"""The audit's one protocol: a measure scores its items into row arrays; statistics of rows give intervals.

A :class:`Measure` (StereoSet, CrowS-Pairs, BBQ, persona BBQ, quality of service) does three things:

* ``score(model, interventions, cells=..., ...)`` runs the model on the measure's items under the
  interventions and returns :data:`Rows`: arrays aligned on the measure's *rows* (one row per item, or
  per item x persona, ...), always with a boolean ``failed`` array (a row the model could not be scored
  on). Scoring goes through a :class:`lens_bias.cells.CellStore`, chunk by chunk, so an interrupted
  run resumes.
* ``summarize(rows, seed=...)`` returns a :data:`Summary` (below): every statistic of every group with a
  bootstrap interval, n scored and n failed, and the reason when a statistic is undefined.
* ``compare(base, other, seed=...)`` returns the same shape for the paired change ``other - base``
  (the same rows under two conditions, resampled together).

Most measures only declare their groups and :class:`Statistic` s and inherit both from
:class:`RowMeasure`. The summary shape, shared by every measure and read by the audit's table::

    {"groups": {group: {"n_rows": int, "n_failed": int,
                        "stats": {stat: Estimate dict | {"value": None, "undefined": reason}}}},
     "statistics": {stat: {"label": str, "ideal": float | None}},
     "headline": [[group, stat], ...]}
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import plotly.graph_objects as go

from lens_bias.cells import CellStore
from lens_bias.interventions import Intervention
from lens_bias.models import AnyModel
from lens_bias.stats import Estimate, bootstrap_rows

Rows = dict[str, np.ndarray]
"""Row-aligned arrays of one measure under one condition (each ``[n_rows, ...]``; ``failed``: bool)."""
Summary = dict[str, Any]
"""See the module docstring."""

N_RESAMPLES = 1000
"""Bootstrap replicates of every audit interval (percentile intervals at 95%)."""


@dataclass(frozen=True)
class Statistic:
    """One number of a measure, computed from rows.

    ``compute(rows, index)`` returns the statistic on the rows ``index`` (integer positions, repeats
    allowed); NaN when undefined, with ``undefined(rows, index)`` saying why. ``label`` names it with its
    unit; ``ideal`` is the value of an unbiased model (None when there is none)."""

    name: str
    label: str
    compute: Callable[[Rows, np.ndarray], float]
    undefined: Callable[[Rows, np.ndarray], str]
    ideal: float | None = None


def _undefined(reason: str) -> dict[str, Any]:
    return {"value": None, "undefined": reason}


def estimate(statistic: Statistic, rows: Rows, index: np.ndarray, clusters: np.ndarray, *, seed: int) -> dict[str, Any]:
    """``statistic`` on ``rows[index]`` with a cluster-bootstrap interval, or why it is undefined."""
    if index.size == 0:
        return _undefined("no rows in this group")
    value = statistic.compute(rows, index)
    if not math.isfinite(value):
        return _undefined(statistic.undefined(rows, index))
    return _bootstrap(lambda sub: statistic.compute(rows, index[sub]), clusters[index], seed)


def _bootstrap(statistic: Callable[[np.ndarray], float], clusters: np.ndarray, seed: int) -> dict[str, Any]:
    # Small groups have resamples where a statistic is undefined (e.g. no non-unknown answer): those
    # replicates are left out of the percentile interval (bootstrap_rows), silently here: an audit has
    # hundreds of groups, and a warning per group would bury the output.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return bootstrap_rows(statistic, clusters, n_resamples=N_RESAMPLES, seed=seed).to_dict()


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
    return _bootstrap(delta, clusters[index], seed)


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

    def score(
        self,
        model: AnyModel,
        interventions: Sequence[Intervention],
        *,
        cells: CellStore,
        batch_size: int,
        progress: bool,
    ) -> Rows: ...

    def summarize(self, rows: Rows, *, seed: int) -> Summary: ...

    def compare(self, base: Rows, other: Rows, *, seed: int) -> Summary: ...

    @staticmethod
    def figures(summaries: dict[str, Summary]) -> dict[str, go.Figure]:
        """Figures of this measure from its summaries alone (one per condition, ``"baseline"`` first), so
        that a saved audit is redrawn without rebuilding the measure."""
        ...


class RowMeasure:
    """``summarize`` and ``compare`` from ``groups()``, ``statistics()``, ``clusters()`` and ``HEADLINE``.

    Subclasses define ``groups(rows)`` (name -> row indices; ``"overall"`` first), ``statistics()``,
    ``HEADLINE`` (the (group, statistic) pairs shown in the audit table) and may override
    ``clusters(rows)`` (the bootstrap's resampling unit per row; default: each row its own)."""

    HEADLINE: ClassVar[tuple[tuple[str, str], ...]] = ()

    def groups(self, rows: Rows) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def statistics(self) -> Sequence[Statistic]:
        raise NotImplementedError

    def clusters(self, rows: Rows) -> np.ndarray:
        return np.arange(len(rows["failed"]))

    def _header(self) -> dict[str, Any]:
        return {
            "statistics": {s.name: {"label": s.label, "ideal": s.ideal} for s in self.statistics()},
            "headline": [list(pair) for pair in self.HEADLINE],
        }

    def summarize(self, rows: Rows, *, seed: int) -> Summary:
        clusters = self.clusters(rows)
        groups = {}
        for group, index in self.groups(rows).items():
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


def condition_series(summaries: dict[str, Summary], groups: Sequence[str], stat: str) -> dict[str, list[Estimate]]:
    """``{condition: [estimate of stat in each group]}`` from summaries, an undefined one as a NaN
    estimate (drawn as a missing bar by :func:`lens_bias.figures.primitives.bars_with_ci`)."""
    nan = float("nan")
    series = {}
    for condition, summary in summaries.items():
        estimates = [value_of(summary["groups"][group]["stats"][stat]) for group in groups]
        series[condition] = [e if e is not None else Estimate(nan, nan, nan, 0) for e in estimates]
    return series


def value_of(entry: dict[str, Any]) -> Estimate | None:
    """An Estimate from a summary's statistic entry, or None when it is undefined."""
    return None if entry.get("value") is None else Estimate.from_dict(entry)
