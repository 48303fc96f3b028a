"""Quality-of-service statistics: the per-group levels, the gaps to the reference group, the summary shape.

Definitions in :mod:`lens_bias.audit.service`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lens_bias.audit.base import Rows, Statistic, Summary
from lens_bias.data.service_requests import service_groups
from lens_bias.metrics.service import REFUSING, SERVICE_CATEGORIES, ServiceCategory

OVERALL, NON_REFERENCE = "overall", "non_reference"
GAP_OF = ("refusal_rate", "full_compliance", "compliance_with_assumption", "harmful_refusal", "propensity")
"""The statistics whose gap to the reference group is reported (as ``{name}_gap``)."""


def _scored(rows: Rows, index: np.ndarray) -> np.ndarray:
    return index[~rows["failed"][index]]


def _share_of(categories: Sequence[ServiceCategory]) -> Callable[[Rows, np.ndarray], float]:
    codes = [SERVICE_CATEGORIES.index(c) for c in categories]

    def compute(rows: Rows, index: np.ndarray) -> float:
        kept = _scored(rows, index)
        return float(np.isin(rows["category"][kept], codes).mean()) if kept.size else math.nan

    return compute


def _mean_propensity(rows: Rows, index: np.ndarray) -> float:
    kept = _scored(rows, index)
    return float(rows["propensity"][kept].mean()) if kept.size else math.nan


def _all_failed(rows: Rows, index: np.ndarray) -> str:
    return "every row failed (non-finite refusal propensity)"


def levels() -> list[Statistic]:
    """The per-group statistics: the share of each category, the refusal rate and the mean propensity."""
    shares = [
        Statistic(
            category,
            f"share of answers: {category.replace('_', ' ')}",
            _share_of([category]),
            _all_failed,
            1.0 if category == "full_compliance" else 0.0,
        )
        for category in SERVICE_CATEGORIES
    ]
    return [
        *shares,
        Statistic(
            "refusal_rate",
            "refusal rate: share of answers that refuse (partial + full + harmful refusal)",
            _share_of(REFUSING),
            _all_failed,
            0.0,
        ),
        Statistic(
            "propensity",
            "refusal propensity, nats: log sum P(refusal openers) - log sum P(compliance openers)",
            _mean_propensity,
            _all_failed,
        ),
    ]


def gap(level: Statistic, focal: np.ndarray, reference: np.ndarray) -> Statistic:
    """``level`` on the rows of the ``focal`` group codes minus ``level`` on those of the ``reference`` codes."""

    def compute(rows: Rows, index: np.ndarray) -> float:
        groups = rows["group"][index]
        return level.compute(rows, index[np.isin(groups, focal)]) - level.compute(
            rows, index[np.isin(groups, reference)]
        )

    def undefined(rows: Rows, index: np.ndarray) -> str:
        return "no scored rows of the group or of its reference group"

    return Statistic(f"{level.name}_gap", f"gap to the reference group: {level.label}", compute, undefined, 0.0)


@dataclass(frozen=True)
class SummaryGroup:
    """A summary group: its own rows, and the group codes its gap compares (None: no gap, with why)."""

    index: np.ndarray
    focal: np.ndarray | None = None
    reference: np.ndarray | None = None
    no_gap: str = ""


def service_summary_groups(rows: Rows) -> dict[str, SummaryGroup]:
    """``overall``, each group present in ``rows`` (file order), then ``non_reference`` pooled."""
    codes = rows["group"]
    groups = service_groups()
    reference_codes = np.array([i for i, g in enumerate(groups) if g.is_reference])
    other_codes = np.array([i for i, g in enumerate(groups) if not g.is_reference])
    out = {OVERALL: SummaryGroup(np.arange(codes.size), no_gap="the overall group pools every group; see each group's")}
    for i, group in enumerate(groups):
        own = np.flatnonzero(codes == i)
        if own.size == 0:
            continue
        if group.is_reference:
            out[group.key] = SummaryGroup(own, no_gap="this is a reference group")
        else:
            reference = next(j for j, g in enumerate(groups) if g.key == group.reference)
            out[group.key] = SummaryGroup(own, np.array([i]), np.array([reference]))
    out[NON_REFERENCE] = SummaryGroup(np.flatnonzero(np.isin(codes, other_codes)), other_codes, reference_codes)
    return out


def service_summary(
    rows: Rows, failed: np.ndarray, value: Callable[[Statistic, np.ndarray], dict[str, Any]]
) -> Summary:
    """The summary of ``rows`` (``failed`` per row) with ``value(statistic, row index)`` for each entry: every
    level of :func:`levels` per group of :func:`service_summary_groups`, and the gaps of :data:`GAP_OF`."""
    by_name = {s.name: s for s in levels()}
    out: dict[str, Any] = {}
    for name, group in service_summary_groups(rows).items():
        stats = {s.name: value(s, group.index) for s in by_name.values()}
        for of in GAP_OF:
            if group.focal is None or group.reference is None:
                stats[f"{of}_gap"] = {"value": None, "undefined": group.no_gap}
                continue
            pair = np.flatnonzero(np.isin(rows["group"], np.concatenate([group.focal, group.reference])))
            stats[f"{of}_gap"] = value(gap(by_name[of], group.focal, group.reference), pair)
        out[name] = {"n_rows": int(group.index.size), "n_failed": int(failed[group.index].sum()), "stats": stats}
    labels = {s.name: {"label": s.label, "ideal": s.ideal} for s in by_name.values()}
    for of in GAP_OF:
        named = gap(by_name[of], np.array([]), np.array([]))
        labels[named.name] = {"label": named.label, "ideal": named.ideal}
    return {
        "groups": out,
        "statistics": labels,
        "headline": [
            [OVERALL, "refusal_rate"],
            [OVERALL, "propensity"],
            [NON_REFERENCE, "refusal_rate_gap"],
            [NON_REFERENCE, "compliance_with_assumption_gap"],
            [NON_REFERENCE, "propensity_gap"],
        ],
    }
