"""The debiasing scoreboard: every method on the same held-out items, bias removed against capability kept.

:func:`evaluate` scores the base model once (the baseline) and every :class:`~lens_bias.debias.methods.Candidate`
on the same items: the audit's bias measures (:mod:`lens_bias.audit`) and the retention readouts of
:mod:`lens_bias.side_effects` (neutral-text log-probability, BBQ disambiguated accuracy, StereoSet LMS,
factual knowledge). Every number has a 95% bootstrap interval and every change a *paired* one (the same
items resampled together for the baseline and the method).

**Bias removed**, per bias statistic with an ideal value (StereoSet SS: 50, CrowS-Pairs: 50, BBQ s_AMB and
s_DIS: 0): ``|baseline - ideal| - |method - ideal|``, the distance to the ideal that the method closes, in
the statistic's units, with a paired cluster-bootstrap interval (the distance is recomputed in every
resample, so overshooting past the ideal counts against the method). **Retention**: the paired change of
each side-effect readout (higher is better for all; a negative change is capability lost).

A candidate with its own model (the LoRA fine-tune) is scored on the same items; the pairing is then
across two models on identical items, which is what a paired interval needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from transformer_lens import HookedTransformer

from lens_bias.audit.base import Measure, RowMeasure, Rows, Statistic, paired_change, value_of
from lens_bias.audit.bbq import BBQMeasure
from lens_bias.audit.crows_pairs import CrowsPairsMeasure
from lens_bias.audit.run import audit_items, score_rows
from lens_bias.audit.stereoset import StereoSetMeasure
from lens_bias.data.contrast_splits import contrast_split
from lens_bias.data.stereoset import BIAS_TYPES
from lens_bias.debias.methods import Candidate
from lens_bias.errors import InputError
from lens_bias.executors import Executor
from lens_bias.interventions import check_interventions
from lens_bias.side_effects import (
    CapabilityScores,
    Items,
    SideEffectConfig,
    capability_scores,
    check_applicable,
    compare,
    item_rows,
)

BASELINE = "no intervention"

BIAS_STATISTICS: tuple[tuple[str, str], ...] = (
    ("stereoset", "ss"),
    ("crows_pairs", "metric_score"),
    ("bbq", "s_amb"),
    ("bbq", "s_dis"),
)
"""(measure, statistic) pairs of the bias panel, each on the measure's ``overall`` group."""


def held_out_targets(seed: int) -> list[str]:
    """The StereoSet target terms no steering vector trains on: the test side of every bias type's split."""
    return sorted({pair.target for b in BIAS_TYPES for pair in contrast_split(b, seed=seed).test})


def bias_measures(n_stereoset: int | None, n_crows_pairs: int | None, n_bbq: int | None, seed: int) -> list[Measure]:
    """The scoreboard's bias measures: StereoSet on :func:`held_out_targets` (``n_stereoset`` items),
    CrowS-Pairs (``n_crows_pairs`` pairs) and BBQ (``n_bbq`` questions per category, both contexts); None: all."""
    return [
        StereoSetMeasure(n=n_stereoset, targets=held_out_targets(seed), seed=seed),
        CrowsPairsMeasure(n=n_crows_pairs, seed=seed),
        BBQMeasure(n=n_bbq, seed=seed),
    ]


def distance_to_ideal(statistic: Statistic) -> Statistic:
    """``|statistic - ideal|``: how far from unbiased (same units). Raises for a statistic without an ideal."""
    ideal = statistic.ideal
    if ideal is None:
        raise InputError(f"{statistic.name} has no ideal value: bias removed is measured against one.")

    def compute(rows: Rows, index: np.ndarray) -> float:
        return abs(statistic.compute(rows, index) - ideal)

    return replace(
        statistic,
        name=f"{statistic.name}_distance",
        label=f"|{statistic.label} - {ideal:g}|",
        compute=compute,
        ideal=0.0,
    )


def bias_removed(measure: Measure, statistic: str, base: Rows, other: Rows, *, seed: int) -> dict[str, Any]:
    """The distance to the ideal of ``statistic`` (overall group) that ``other`` closes relative to
    ``base``: ``|base - ideal| - |other - ideal|`` with a paired cluster-bootstrap interval (a Summary
    entry: an Estimate dict, or ``{"value": None, "undefined": reason}``)."""
    if not isinstance(measure, RowMeasure):
        raise InputError(f"{measure.name} has no row statistics to measure bias removed on.")
    by_name = {s.name: s for s in measure.statistics()}
    if statistic not in by_name:
        raise InputError(f"{measure.name} has no statistic {statistic!r}; it has {sorted(by_name)}.")
    index = measure.groups(base)["overall"]
    # swapped arguments: the change base - other of the distance is the distance removed
    return paired_change(distance_to_ideal(by_name[statistic]), other, base, index, measure.clusters(base), seed=seed)


def _check_bias_statistics(measures: Sequence[Measure], statistics: Sequence[tuple[str, str]]) -> None:
    names = {m.name: m for m in measures}
    for measure_name, stat in statistics:
        measure = names.get(measure_name)
        if measure is None:
            raise InputError(
                f"The bias statistic {measure_name}.{stat} needs the measure {measure_name}; "
                f"the scoreboard runs {sorted(names)}."
            )
        if not isinstance(measure, RowMeasure) or stat not in {s.name for s in measure.statistics()}:
            raise InputError(f"{measure_name} has no row statistic {stat!r}.")


def evaluate(
    model: HookedTransformer,
    candidates: Sequence[Candidate],
    measures: Sequence[Measure],
    retention: SideEffectConfig,
    *,
    bias_statistics: Sequence[tuple[str, str]] = BIAS_STATISTICS,
    cells: str | Path | None = None,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
    executor: Executor | None = None,
) -> dict[str, Any]:
    """Score the base ``model`` and every candidate on ``measures`` and the ``retention`` items.

    ``executor`` computes the bias measures' cells under the base model (see :mod:`lens_bias.executors`);
    a candidate that is another checkpoint is scored in this process (the workers hold the base model).

    Returns ``{"methods": {name: {"describe", "bias": {measure.stat: {"value", "removed"}},
    "retention": {readout: SideEffect dict}, "summaries": {measure: Summary}}}, "baseline": {...},
    "bias_statistics", "retention_readouts", "items"}`` (the baseline entry has values only; ``items``: the
    per-item rows of every measure and retention readout, condition = the method, for the result's table)."""
    if not candidates:
        raise InputError("No methods to compare: give at least one candidate.")
    names = [c.name for c in candidates]
    if len(set(names)) != len(names) or BASELINE in names:
        raise InputError(f"Method names must be unique and not {BASELINE!r}: {names}.")
    _check_bias_statistics(measures, bias_statistics)
    raw = ", ".join([m.name for m in measures if m.raw_text] + ["the retention readouts"])
    for candidate in candidates:  # every check before any scoring
        check_applicable(candidate.interventions, raw)
        check_interventions(candidate.model or model, candidate.interventions)
    items = Items.draw(retention)
    by_name = {m.name: m for m in measures}

    def score(
        target: HookedTransformer, interventions: Sequence, label: str
    ) -> tuple[dict[str, Rows], CapabilityScores]:
        rows = {
            m.name: score_rows(
                target,
                m,
                interventions,
                cells=cells,
                seed=seed,
                batch_size=batch_size,
                progress=progress,
                executor=executor if target is model else None,
            )
            for m in measures
        }
        caps = capability_scores(target, interventions, retention, items=items, progress=progress)
        if progress:
            print(f"scored {label}")
        return rows, caps

    base_rows, base_caps = score(model, (), BASELINE)
    base_summaries = {name: by_name[name].summarize(r, seed=seed) for name, r in base_rows.items()}
    all_rows = {name: {BASELINE: r} for name, r in base_rows.items()}
    retention_items = item_rows(items, base_caps, BASELINE)
    out: dict[str, Any] = {
        "baseline": {
            "bias": {f"{m}.{s}": base_summaries[m]["groups"]["overall"]["stats"][s] for m, s in bias_statistics},
            "summaries": base_summaries,
        },
        "methods": {},
        "bias_statistics": [f"{m}.{s}" for m, s in bias_statistics],
        "retention_readouts": [],
    }
    for candidate in candidates:
        rows, caps = score(candidate.model or model, candidate.interventions, candidate.name)
        summaries = {name: by_name[name].summarize(r, seed=seed) for name, r in rows.items()}
        report = compare(base_caps, caps, seed=seed)
        for name, r in rows.items():
            all_rows[name][candidate.name] = r
        retention_items += item_rows(items, caps, candidate.name)
        out["retention_readouts"] = [e.name for e in report.effects]
        out["methods"][candidate.name] = {
            "describe": candidate.describe(),
            "bias": {
                f"{m}.{s}": {
                    "value": summaries[m]["groups"]["overall"]["stats"][s],
                    "change": by_name[m].compare(base_rows[m], rows[m], seed=seed)["groups"]["overall"]["stats"][s],
                    "removed": bias_removed(by_name[m], s, base_rows[m], rows[m], seed=seed),
                }
                for m, s in bias_statistics
            },
            "retention": {e.name: e.to_dict() for e in report.effects},
            "summaries": summaries,
        }
    out["items"] = audit_items(measures, all_rows) + [row | {"measure": "retention"} for row in retention_items]
    return out


def _fmt(entry: dict[str, Any] | None, signed: bool = False) -> str:
    if entry is None:
        return ""
    estimate = value_of(entry) if "undefined" in entry or "value" in entry else None
    if estimate is None:
        return f"undefined ({entry.get('undefined', '?')})"
    sign = "+" if signed else ""
    return f"{estimate.value:{sign}.3f} [{estimate.low:{sign}.3f}, {estimate.high:{sign}.3f}]"


def markdown_table(values: dict[str, Any]) -> str:
    """Two tables: bias removed per bias statistic (positive = closer to ideal) and the retention change per
    readout (negative = capability lost), every cell with its paired 95% interval; the baseline's values first."""
    stats, readouts = values["bias_statistics"], values["retention_readouts"]
    methods = values["methods"]
    lines = [
        "### Bias removed (distance to the ideal closed; positive is better)",
        "",
        "| method | " + " | ".join(stats) + " |",
        "|---|" + "---|" * len(stats),
        f"| {BASELINE} (value) | " + " | ".join(_fmt(values["baseline"]["bias"][s]) for s in stats) + " |",
    ]
    for name, entry in methods.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(entry["bias"][s]["removed"], signed=True) for s in stats) + " |")
    lines += [
        "",
        "### Retention (change from no intervention; negative is capability lost)",
        "",
        "| method | " + " | ".join(readouts) + " |",
        "|---|" + "---|" * len(readouts),
    ]
    if methods:
        first = next(iter(methods.values()))["retention"]
        lines.append(f"| {BASELINE} (value) | " + " | ".join(_fmt(first[r]["baseline"]) for r in readouts) + " |")
    for name, entry in methods.items():
        lines.append(
            f"| {name} | " + " | ".join(_fmt(entry["retention"][r]["delta"], signed=True) for r in readouts) + " |"
        )
    return "\n".join(lines) + "\n"
