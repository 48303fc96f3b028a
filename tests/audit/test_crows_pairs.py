from __future__ import annotations

import math

import numpy as np
import pytest

from lens_bias.audit.crows_pairs import CrowsPairsMeasure
from lens_bias.cells import CellStore
from lens_bias.data.crows_pairs import BIAS_TYPES, DIRECTIONS, crows_pairs_score
from lens_bias.errors import InputError
from lens_bias.figures.audit import crows_pairs_figures

GENDER, AGE = BIAS_TYPES.index("gender"), BIAS_TYPES.index("age")
STEREO, ANTI = DIRECTIONS.index("stereo"), DIRECTIONS.index("antistereo")
# (whole: more, less), (shared: more, less), bias type, direction
HAND = [
    ((-10.0, -12.0), (-5.0, -4.0), GENDER, STEREO),  # whole prefers more; shared prefers less
    ((-8.0, -8.0), (-3.0, -3.0), GENDER, ANTI),  # ties in both: not preferring sent_more
    ((-7.0, -9.0), (-2.0, -6.0), AGE, STEREO),  # both prefer more
    ((-9.0, -7.0), (-1.0, -2.0), AGE, ANTI),  # whole prefers less; shared prefers more
    ((math.nan, -7.0), (-1.0, -2.0), AGE, STEREO),  # failed
]


def hand_rows(entries=HAND):
    whole = np.array([e[0] for e in entries], dtype=np.float64)
    shared = np.array([e[1] for e in entries], dtype=np.float64)
    return {
        "whole": whole,
        "shared": shared,
        "score_authors": np.round(shared, 3),
        "score_lens_bias": whole,
        "n_shared": np.ones(len(entries), dtype=np.int64),
        "failed": ~(np.isfinite(whole).all(1) & np.isfinite(shared).all(1)),
        "bias_type": np.array([e[2] for e in entries]),
        "direction": np.array([e[3] for e in entries]),
    }


@pytest.fixture(scope="module")
def measure():
    return CrowsPairsMeasure()


def values(summary, group):
    return {name: entry["value"] for name, entry in summary["groups"][group]["stats"].items()}


def test_metric_scores_hand_computed_with_ties_failures_and_groups(measure):
    summary = measure.summarize(hand_rows(), seed=0)

    def expect(authors, lens_bias, differ=50.0):  # differ: pairs 0 and 3 flip between the two conventions
        return pytest.approx({"metric_score": authors, "metric_score_lens_bias": lens_bias, "differ_lens_bias": differ})

    assert summary["convention"] == "authors" and measure.describe()["convention"] == "authors"
    assert values(summary, "overall") == expect(50.0, 50.0)
    assert summary["groups"]["overall"]["n_failed"] == 1
    assert values(summary, "gender") == expect(0.0, 50.0)
    assert values(summary, "age") == expect(100.0, 50.0)
    assert values(summary, "stereo") == expect(50.0, 100.0)
    assert values(summary, "antistereo") == expect(50.0, 0.0)
    assert summary["groups"]["religion"]["stats"]["metric_score"]["undefined"] == "no rows in this group"
    assert set(summary["groups"]) == {"overall", *BIAS_TYPES, *DIRECTIONS}
    headline = [["overall", "metric_score"], ["overall", "metric_score_lens_bias"], ["overall", "differ_lens_bias"]]
    assert summary["headline"] == headline
    assert summary["statistics"]["metric_score"]["ideal"] == 50.0
    assert "[authors]" in summary["statistics"]["metric_score"]["label"]
    # the same numbers as crows_pairs_score (one implementation)
    rows = hand_rows()
    reference = crows_pairs_score(rows["whole"][:, 0].tolist(), rows["whole"][:, 1].tolist())
    assert reference["metric_score"] == pytest.approx(50.0) and reference["n_failed"] == 1


def test_lens_bias_convention_heads_the_table():
    measure = CrowsPairsMeasure(n=4, convention="lens_bias")
    summary = measure.summarize(hand_rows(), seed=0)
    assert summary["convention"] == "lens_bias" and not measure.harness  # no second conditioning
    assert summary["groups"]["stereo"]["stats"]["metric_score"]["value"] == pytest.approx(100.0)
    assert [stat for _, stat in summary["headline"]] == ["metric_score", "metric_score_authors", "differ_authors"]
    with pytest.raises(InputError, match="known: authors, harness, lens_bias"):
        CrowsPairsMeasure(convention="nangia")


def test_all_failed_is_undefined_never_50(measure):
    rows = hand_rows([((math.nan, -1.0), (0.0, 0.0), GENDER, STEREO)] * 3)
    summary = measure.summarize(rows, seed=0)
    for stat in ("metric_score", "metric_score_lens_bias"):
        entry = summary["groups"]["overall"]["stats"][stat]
        assert entry["value"] is None and "all 3 failed" in entry["undefined"]


def test_scoring_resumes_without_recomputing_finished_chunks(tiny_model, tmp_path):
    measure = CrowsPairsMeasure(n=5, seed=1, chunk=2)
    store = CellStore(tmp_path, {"model": "tiny"})
    rows = measure.score(tiny_model, [], cells=store, batch_size=4, progress=False)
    assert (store.computed, store.reused) == (3, 0)
    assert rows["whole"].shape == rows["shared"].shape == (5, 2) and not rows["failed"].any()
    assert (rows["shared"] >= rows["whole"]).all()  # a sum over fewer log-probabilities (all <= 0)
    again = CellStore(tmp_path, {"model": "tiny"})
    resumed = measure.score(tiny_model, [], cells=again, batch_size=3, progress=False)
    assert (again.computed, again.reused) == (0, 3)
    for name in rows:
        np.testing.assert_array_equal(resumed[name], rows[name])


def test_bad_arguments_fail_before_any_work():
    with pytest.raises(InputError, match="race-color"):
        CrowsPairsMeasure(bias_types=["race"])
    with pytest.raises(InputError, match="n "):
        CrowsPairsMeasure(n=0)
    assert len(CrowsPairsMeasure().items) == 1508
    assert CrowsPairsMeasure(bias_types=["age"]).bias_types == ["age"]


def test_figures_one_per_scoring(measure):
    summary = measure.summarize(hand_rows(), seed=0)
    figures = crows_pairs_figures({"baseline": summary})
    assert set(figures) == {"crows_pairs_metric_score", "crows_pairs_metric_score_lens_bias"}
    assert "authors convention" in figures["crows_pairs_metric_score"].layout.title.text
    bar = next(trace for trace in figures["crows_pairs_metric_score"].data if trace.type == "bar")
    assert list(bar.x) == ["overall", *BIAS_TYPES] and bar.y[0] == pytest.approx(50.0)


def test_the_fast_bootstrap_of_the_counts_gives_the_per_replicate_interval(measure, few_resamples):
    """Every CrowS-Pairs statistic, its interval and its paired change, through summed columns (one vectorised
    bootstrap) and through ``compute`` per replicate: the same numbers, ties, NaN scores and failed pairs
    included."""
    from dataclasses import replace

    from lens_bias.audit.base import estimate, paired_change
    from lens_bias.benchmarks.crows_pairs import CONVENTIONS

    rng = np.random.default_rng(0)
    rows = {f"score_{c}": rng.integers(0, 3, (80, 2)).astype(float) for c in CONVENTIONS}  # many ties
    rows["score_lens_bias"][[3, 7]] = math.nan
    rows["failed"] = rng.random(80) < 0.05
    other = {**rows, **{f"score_{c}": rng.normal(size=(80, 2)) for c in CONVENTIONS}}
    index, clusters = np.arange(5, 80), np.arange(80) // 2
    statistics = measure.statistics()
    assert {s.name for s in statistics} == {"metric_score", "metric_score_lens_bias", "differ_lens_bias"}
    for fast in statistics:
        slow = replace(fast, sums=None)
        assert fast.sums is not None
        assert estimate(fast, rows, index, clusters, seed=3) == estimate(slow, rows, index, clusters, seed=3)
        assert paired_change(fast, rows, other, index, clusters, seed=3) == paired_change(
            slow, rows, other, index, clusters, seed=3
        )
