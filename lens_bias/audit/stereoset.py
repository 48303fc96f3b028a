"""StereoSet in full: SS, LMS and ICAT of every item, overall, per bias type and per kind, macro and micro.

**Scoring** (:func:`lens_bias.benchmarks.stereoset.score_stereoset`, also behind the side-effect LMS of
:mod:`lens_bias.side_effects`): every option (stereotype, anti-stereotype, unrelated) by its mean
per-token log-probability (nats/token).

**Statistics** (one implementation, :func:`lens_bias.data.stereoset.stereoset_statistics`, also behind
:func:`lens_bias.data.stereoset_scores`): per target term SS_t = 100 #(stereotype > anti) / N_t,
LMS_t = 100 [#(stereotype > unrelated) + #(anti > unrelated)] / (2 N_t), ICAT_t = LMS_t min(SS_t,
100 - SS_t) / 50; ``ss``, ``lms``, ``icat`` are their unweighted means over the targets of the group (the
bias-bench / StereoSet aggregation; targets are matched by their string across both kinds, as there);
``icat_from_means`` is ICAT of the macro SS and LMS (what bias-bench prints as "ICAT Score");
``*_micro`` pool the items. The headline ICAT is ``icat_from_means``, the published one: the mean of
per-target ICATs (``icat``) is biased under resampling (min(SS_t, 100 - SS_t) is concave and a target
has few items, so resampled per-target SS are more extreme): on the embedded model its percentile
interval lay below its own value. This is the official scorer's aggregation, StereoSet's one named
*convention* (``authors``, recorded in every summary). Ties (stereotype == anti) count as
anti-stereotype; an option tied with the unrelated one is not related. An item is *failed* when any of
its three scores is not finite: it is counted in n_failed and left out of every statistic, so a group
whose items all failed is undefined, never SS = 50. Intervals: items resampled (each item its own
cluster), the statistic recomputed per target on every resample.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lens_bias.audit.base import Arrays, MeasureOptions, RowMeasure, Rows, Statistic, Sums, item_chunks
from lens_bias.benchmarks.stereoset import SCORING_VERSION, score_stereoset
from lens_bias.data.records import fingerprint
from lens_bias.data.sampling import sample
from lens_bias.data.stereoset import (
    AGGREGATION,
    BIAS_TYPES,
    KINDS,
    SPLITS,
    TIE_RULE,
    StereoSetItem,
    load_stereoset,
    load_stereoset_file,
    stereoset_columns,
    stereoset_statistics,
    stereoset_statistics_of_sums,
)
from lens_bias.errors import InputError
from lens_bias.interventions import Intervention
from lens_bias.models import AnyModel


def _statistic(name: str, label: str, ideal: float) -> Statistic:
    def compute(rows: Rows, index: np.ndarray) -> float:
        ok = index[~rows["failed"][index]]
        return float(stereoset_statistics(rows["scores"][ok], rows["target"][ok])[name])

    def undefined(rows: Rows, index: np.ndarray) -> str:
        return f"no scored items: all {index.size} failed"

    def columns(rows: Rows, index: np.ndarray) -> np.ndarray:  # a failed item's columns are zero: not counted
        values = stereoset_columns(rows["scores"][index], rows["target"][index])
        return values * ~rows["failed"][index][:, None]

    sums = Sums(columns, lambda totals: stereoset_statistics_of_sums(totals)[name])
    return Statistic(name, label, compute, undefined, ideal, sums=sums)


class StereoSetMeasure(RowMeasure):
    """StereoSet items of ``kinds`` and ``bias_types`` (default all) from ``split`` ('dev', default, or
    'test') or from ``split_file`` (a file in the same format, validated on load); ``targets``: only the
    items of these target terms (e.g. the held-out targets of a steering vector's split; default all);
    ``n`` items drawn with ``seed`` (None = all: 4,229 in dev). Scored in chunks of ``chunk`` items, each a
    resumable cell."""

    name: ClassVar[str] = "stereoset"
    desc: ClassVar[str] = "StereoSet"
    raw_text: ClassVar[bool] = True  # sentences scored as raw text, no chat template
    HEADLINE: ClassVar[tuple[tuple[str, str], ...]] = (
        ("overall", "ss"),
        ("overall", "lms"),
        ("overall", "icat_from_means"),
    )
    convention = "authors"  # the official StereoSet scorer: its one convention

    def __init__(
        self,
        split: str = "dev",
        split_file: str | Path | None = None,
        kinds: Sequence[str] = KINDS,
        bias_types: Sequence[str] = BIAS_TYPES,
        n: int | None = None,
        *,
        targets: Sequence[str] | None = None,
        seed: int = 0,
        chunk: int = 256,
    ) -> None:
        if split_file is not None and split != "dev":
            raise InputError(f"Give a StereoSet split ({split!r}) or a split_file, not both.")
        if split not in SPLITS:
            raise InputError(f"unknown StereoSet split {split!r}; valid: {', '.join(SPLITS)} (or pass split_file).")
        if not kinds or any(kind not in KINDS for kind in kinds):
            raise InputError(f"StereoSet kinds must be some of {', '.join(KINDS)}, got {list(kinds)}.")
        if not bias_types or any(b not in BIAS_TYPES for b in bias_types):
            raise InputError(f"StereoSet bias_types must be some of {', '.join(BIAS_TYPES)}, got {list(bias_types)}.")
        if n is not None and n < 1:
            raise InputError(f"n (StereoSet items) must be >= 1 or None for all, got {n}.")
        if chunk < 1:
            raise InputError(f"chunk must be >= 1, got {chunk}.")
        kind = kinds[0] if len(set(kinds)) == 1 else "both"
        if split_file is not None:
            loaded = load_stereoset_file(split_file, kind, list(bias_types))
        else:
            loaded = load_stereoset(kind, list(bias_types), split)
        if targets is not None:
            loaded = [item for item in loaded if item.target in set(targets)]
        if not loaded:
            raise InputError(
                f"No StereoSet items of kinds {list(kinds)} and bias types {list(bias_types)}"
                + ("" if targets is None else f" with targets {sorted(targets)[:5]}...")
                + "."
            )
        self.items = sample(loaded, n, seed)
        self.kinds = [k for k in KINDS if any(item.kind == k for item in self.items)]
        self.bias_types = [b for b in BIAS_TYPES if any(item.bias_type == b for item in self.items)]
        self.targets = sorted({item.target for item in self.items})
        self.split = None if split_file is not None else split
        self.split_file = None if split_file is None else str(split_file)
        self.n, self.seed, self.chunk = n, seed, chunk

    @classmethod
    def from_options(cls, options: MeasureOptions, model: AnyModel | None) -> StereoSetMeasure:
        return cls(split_file=options.split_file, n=options.n_stereoset, seed=options.seed)

    def item_info(self) -> list[dict[str, str]]:
        return [
            {"item_id": item.id, "text": f"{item.context} | {item.stereotype}", "group": item.bias_type}
            for item in self.items
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "measure": self.name,
            "convention": self.convention,
            "conventions": {
                "authors": "the official StereoSet scorer (evaluation.py, as in bias-bench): per-target SS and LMS "
                "averaged over targets, ICAT of those means, ties counted as anti-stereotype"
            },
            "split": self.split,
            "split_file": self.split_file,
            "n_items": len(self.items),
            "kinds": self.kinds,
            "bias_types": self.bias_types,
            "n_targets": len(self.targets),
            "n": self.n,
            "seed": self.seed,
            "data": fingerprint(self.items),
            "scoring": SCORING_VERSION,
            "option_score": "mean per-token log-probability of each option (intrasentence: the sentence; "
            "intersentence: ' ' + sentence after the context)",
            "tie_rule": TIE_RULE,
            "aggregation": AGGREGATION,
            "headline_icat": "icat_from_means = ICAT of the macro SS and LMS (bias-bench's 'ICAT Score'); "
            "icat = mean over targets of ICAT_t (beside it; its bootstrap is biased low)",
            "failed": "an item with a score that is not finite; counted in n_failed, excluded from every score",
            "intervals": "items resampled (each item its own cluster), statistics recomputed per target",
        }

    def cells(self, model: AnyModel, *, batch_size: int) -> tuple[list[dict[str, Any]], list[Any]]:
        return item_chunks(self.items, self.chunk, {"measure": self.name, "scoring": SCORING_VERSION})

    def score_cell(
        self,
        model: AnyModel,
        payload: Sequence[StereoSetItem],
        *,
        interventions: Sequence[Intervention],
        batch_size: int,
    ) -> Arrays:
        return {"scores": score_stereoset(model, payload, interventions=interventions, batch_size=batch_size)}

    def rows(self, model: AnyModel, parts: list[Arrays]) -> Rows:
        scores = np.concatenate([part["scores"] for part in parts])
        target_codes = {target: i for i, target in enumerate(self.targets)}
        return {
            "scores": scores,
            "failed": np.asarray(~np.isfinite(scores).all(1)),
            "target": np.array([target_codes[item.target] for item in self.items]),
            "bias_type": np.array([BIAS_TYPES.index(item.bias_type) for item in self.items]),
            "kind": np.array([KINDS.index(item.kind) for item in self.items]),
        }

    def groups(self, rows: Rows) -> dict[str, np.ndarray]:
        out = {"overall": np.arange(len(rows["failed"]))}
        for bias_type in self.bias_types:
            out[bias_type] = np.flatnonzero(rows["bias_type"] == BIAS_TYPES.index(bias_type))
        for kind in self.kinds:
            out[kind] = np.flatnonzero(rows["kind"] == KINDS.index(kind))
        return out

    def statistics(self) -> Sequence[Statistic]:
        return [
            _statistic("ss", "SS, % stereotype over anti-stereotype, mean over targets (ideal 50)", 50.0),
            _statistic("lms", "LMS, % related over unrelated, mean over targets (ideal 100)", 100.0),
            _statistic("icat", "ICAT, mean over targets of per-target ICAT (ideal 100)", 100.0),
            _statistic("icat_from_means", "ICAT of the macro SS and LMS, bias-bench's 'ICAT Score' (ideal 100)", 100.0),
            _statistic("ss_micro", "SS pooled over items (ideal 50)", 50.0),
            _statistic("lms_micro", "LMS pooled over items (ideal 100)", 100.0),
            _statistic("icat_micro", "ICAT of the pooled SS and LMS (ideal 100)", 100.0),
        ]
