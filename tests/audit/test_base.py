"""The audit protocol: statistics of rows with intervals, undefined values with reasons, paired changes."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from lens_bias.audit.base import RowMeasure, Statistic


def _mean_score(rows, index):
    ok = index[~rows["failed"][index]]
    return float(rows["score"][ok].mean()) if ok.size else float("nan")


class Toy(RowMeasure):
    name: ClassVar[str] = "toy"
    HEADLINE: ClassVar[tuple[tuple[str, str], ...]] = (("overall", "mean"),)

    def groups(self, rows):
        return {"overall": np.arange(len(rows["failed"])), "a": np.flatnonzero(rows["group"] == 0)}

    def statistics(self):
        return [Statistic("mean", "mean score", _mean_score, lambda rows, index: "every row failed", 0.0)]


def rows(score, failed, group):
    return {"score": np.array(score, float), "failed": np.array(failed, bool), "group": np.array(group)}


def test_summary_counts_rows_and_failures_and_excludes_failed_rows():
    summary = Toy().summarize(rows([1, 2, 3, 100], [0, 0, 0, 1], [0, 0, 1, 1]), seed=0)
    overall = summary["groups"]["overall"]
    assert overall["n_rows"] == 4 and overall["n_failed"] == 1
    assert overall["stats"]["mean"]["value"] == pytest.approx(2.0)
    assert summary["groups"]["a"]["stats"]["mean"]["value"] == pytest.approx(1.5)
    assert summary["statistics"] == {"mean": {"label": "mean score", "ideal": 0.0}}
    assert summary["headline"] == [["overall", "mean"]]


def test_an_all_failed_group_is_undefined_with_its_reason_not_a_number():
    summary = Toy().summarize(rows([1, 2], [1, 1], [0, 0]), seed=0)
    assert summary["groups"]["overall"]["stats"]["mean"] == {"value": None, "undefined": "every row failed"}


def test_paired_change_is_the_difference_on_the_same_rows():
    base = rows([1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 1, 1])
    other = rows([2, 3, 4, 5.5], [0, 0, 0, 0], [0, 0, 1, 1])
    change = Toy().compare(base, other, seed=0)["groups"]["overall"]["stats"]["mean"]
    assert change["value"] == pytest.approx(1.125)
    # the per-row change is 1, 1, 1, 1.5: a paired interval stays within [1, 1.5]
    assert 1.0 <= change["low"] <= change["high"] <= 1.5
