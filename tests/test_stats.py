"""Tests of lens_bias.stats: intervals contain the estimate, narrow with n, handle degenerate
inputs, and are reproducible; correlations and AUC on hand-checkable cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats as sps

from lens_bias.stats import (
    Estimate,
    auc,
    bootstrap_correlation,
    bootstrap_mean,
    bootstrap_statistic,
    curve_correlation,
    paired_proportion_change,
    share,
    small_groups,
    wilson,
)


def test_estimate_str_and_dict_round_trip() -> None:
    est = Estimate(0.6213, 0.55, 0.6899, 120)
    assert str(est) == "0.62 [0.55, 0.69] (n=120)"
    assert str(Estimate(1e-4, 5e-5, 2e-4, 3)) == "1.00e-04 [5.00e-05, 2.00e-04] (n=3)"
    assert Estimate.from_dict(est.to_dict()) == est
    assert est.to_dict() == {"value": 0.6213, "low": 0.55, "high": 0.6899, "n": 120, "level": 0.95}
    restored = Estimate.from_dict({"value": None, "low": None, "high": None, "n": 0})
    assert math.isnan(restored.value)


def test_bootstrap_mean_contains_mean_and_narrows_with_n() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 200, 2000):
        values = rng.normal(loc=1.0, scale=2.0, size=n)
        est = bootstrap_mean(values)
        assert est.n == n
        assert est.value == pytest.approx(values.mean())
        assert est.low < est.value < est.high
        widths.append(est.high - est.low)
        # width ~ 2 * 1.96 * sd / sqrt(n)
        assert est.high - est.low == pytest.approx(2 * 1.96 * values.std() / math.sqrt(n), rel=0.3)
    assert widths[0] > widths[1] > widths[2]


def test_bootstrap_mean_is_seeded() -> None:
    values = np.random.default_rng(1).exponential(size=50)
    assert bootstrap_mean(values, seed=3) == bootstrap_mean(values, seed=3)
    assert bootstrap_mean(values, seed=3) != bootstrap_mean(values, seed=4)


def test_bootstrap_mean_level_and_methods() -> None:
    values = np.random.default_rng(2).normal(size=100)
    e90 = bootstrap_mean(values, level=0.90)
    e99 = bootstrap_mean(values, level=0.99)
    assert e90.level == 0.90
    assert e99.low < e90.low < e90.high < e99.high
    for method in ("BCa", "percentile", "basic"):
        est = bootstrap_mean(values, method=method)
        assert est.low < values.mean() < est.high
    with pytest.raises(ValueError, match="level"):
        bootstrap_mean(values, level=95)


def test_degenerate_inputs_collapse() -> None:
    one = bootstrap_mean([3.5])
    assert (one.value, one.low, one.high, one.n) == (3.5, 3.5, 3.5, 1)
    const = bootstrap_mean(np.full(10, 2.0))
    assert (const.value, const.low, const.high, const.n) == (2.0, 2.0, 2.0, 10)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="empty"):
        bootstrap_mean([])
    with pytest.raises(ValueError, match=r"count separately|report their count"):
        bootstrap_mean([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="1-D"):
        bootstrap_mean(np.ones((2, 2)))


def test_accepts_tensors() -> None:
    est = bootstrap_mean(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert est.value == pytest.approx(2.5)


def test_share() -> None:
    mask = np.array([True] * 30 + [False] * 70)
    est = share(mask)
    assert est.value == pytest.approx(0.3)
    assert est.n == 100
    assert 0.2 < est.low < 0.3 < est.high < 0.4
    all_true = share(np.ones(6, dtype=bool))  # Wilson: not collapsed at 6 of 6
    assert (all_true.value, all_true.high, all_true.n) == (1.0, 1.0, 6) and all_true.low == pytest.approx(
        0.6097, abs=1e-4
    )
    with pytest.raises(ValueError, match="0/1"):
        share([0.0, 0.5])


@pytest.mark.parametrize("successes, n", [(0, 6), (6, 6), (3, 6), (0, 1), (37, 150), (999, 1000)])
def test_wilson_is_scipys_wilson_interval(successes, n):
    expected = sps.binomtest(successes, n).proportion_ci(0.95, method="wilson")
    est = wilson(successes, n)
    assert (est.value, est.n) == (successes / n, n)
    assert (est.low, est.high) == pytest.approx((expected.low, expected.high), abs=1e-9)
    with pytest.raises(ValueError, match="successes <= n"):
        wilson(3, 2)


def test_paired_proportion_change_keeps_a_width_when_nothing_changed():
    same = paired_proportion_change([1, 0, 1, 1, 0, 1], [1, 0, 1, 1, 0, 1])
    assert same.value == 0.0 and same.low < -0.2 and same.high > 0.2 and same.n == 6
    before, after = np.array([0] * 40 + [1] * 60), np.array([1] * 30 + [0] * 10 + [1] * 60)  # 30 gained, 0 lost
    gained = paired_proportion_change(before, after)
    assert gained.value == pytest.approx(0.3) and 0.15 < gained.low < 0.3 < gained.high < 0.42
    # Bonett-Price by hand: discordant counts + 1 over n + 2
    p12, p21 = 31 / 102, 1 / 102
    half = 1.959963984540054 * math.sqrt((p12 + p21 - (p12 - p21) ** 2) / 102)
    assert (gained.low, gained.high) == pytest.approx((p12 - p21 - half, p12 - p21 + half))
    with pytest.raises(ValueError, match="two 0/1 arrays"):
        paired_proportion_change([1, 0], [1])


def test_small_groups_are_named():
    assert small_groups({"overall": 40, "Age": 6, "none": 0}) == ["Age (n=6)"]


def test_bootstrap_statistic_paired_difference() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(size=200)
    shifted = base + 0.1 + rng.normal(scale=0.01, size=200)  # same items, tiny noise
    paired = bootstrap_statistic((shifted, base), lambda a, b: np.mean(a - b), paired=True)
    unpaired = bootstrap_statistic((shifted, base), lambda a, b: np.mean(a) - np.mean(b), paired=False)
    assert paired.value == pytest.approx(0.1, abs=0.01)
    assert paired.n == 200 and unpaired.n == 400
    assert paired.low < paired.value < paired.high
    assert unpaired.low < unpaired.value < unpaired.high
    # pairing removes the between-item variance
    assert (paired.high - paired.low) < 0.1 * (unpaired.high - unpaired.low)
    with pytest.raises(ValueError, match="equal length"):
        bootstrap_statistic((base, base[:10]), lambda a, b: 0.0, paired=True)
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_statistic((base, base[:1]), lambda a, b: 0.0, paired=False)


def test_bootstrap_statistic_vectorized_matches_plain() -> None:
    values = np.random.default_rng(4).normal(size=60)
    plain = bootstrap_statistic((values,), lambda v: np.median(v))
    vec = bootstrap_statistic((values,), np.median, vectorized=True)
    assert plain == vec


def test_correlation() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(size=80)
    perfect = bootstrap_correlation(x, 3 * x - 2)
    assert perfect.value == pytest.approx(1.0)
    assert perfect.low == pytest.approx(1.0) and perfect.high == pytest.approx(1.0)
    monotone = bootstrap_correlation(x, np.exp(x), method="spearman")
    assert monotone.value == pytest.approx(1.0)

    y = 0.5 * x + rng.normal(size=80)
    pear = bootstrap_correlation(x, y)
    spear = bootstrap_correlation(x, y, method="spearman")
    assert pear.value == pytest.approx(sps.pearsonr(x, y).statistic)
    assert spear.value == pytest.approx(sps.spearmanr(x, y).statistic)
    assert pear.low < pear.value < pear.high and spear.low < spear.value < spear.high
    assert pear.n == 80

    with pytest.raises(ValueError, match="same length"):
        bootstrap_correlation(x, y[:-1])
    with pytest.raises(ValueError, match="constant"):
        bootstrap_correlation(x, np.ones(80))
    with pytest.raises(ValueError, match="method"):
        bootstrap_correlation(x, y, method="kendall")  # type: ignore[arg-type]


def test_correlation_with_undefined_resamples_warns() -> None:
    # with 4 pairs, some resamples repeat one pair and have an undefined correlation
    with pytest.warns(RuntimeWarning, match="undefined on"):
        est = bootstrap_correlation([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 0.0, 2.0])
    assert -1.0 <= est.low <= est.value <= est.high <= 1.0


def test_curve_correlation_resamples_items_not_grid_points() -> None:
    rng = np.random.default_rng(2)
    grid = np.linspace(-1, 1, 5)
    # x rises with the grid, y falls; item noise small vs the trend -> a tight negative interval
    x = grid + rng.normal(scale=0.2, size=(40, 5))
    y = -2 * grid + rng.normal(scale=0.2, size=(30, 5))
    est = curve_correlation(x, y)
    assert est.value == pytest.approx(sps.pearsonr(x.mean(0), y.mean(0)).statistic)
    assert -1.0 <= est.low <= est.value <= est.high < -0.9
    assert est.n == 70
    # pure noise around flat curves: the interval must cover a wide range, not sit on the point value
    noise = curve_correlation(rng.normal(size=(20, 5)), rng.normal(size=(20, 5)))
    assert noise.high - noise.low > 1.0
    assert curve_correlation(x, y, seed=1) == curve_correlation(x, y, seed=1)

    with pytest.raises(ValueError, match="same grid"):
        curve_correlation(x, y[:, :4])
    with pytest.raises(ValueError, match="3 grid points"):
        curve_correlation(x[:, :2], y[:, :2])
    with pytest.raises(ValueError, match="flat"):
        curve_correlation(np.ones((4, 5)), y)


def test_auc_hand_cases() -> None:
    assert auc([3, 4], [1, 2]) == 1.0
    assert auc([1, 2], [3, 4]) == 0.0
    assert auc([1, 1], [1, 1]) == 0.5  # all ties count half
    # pairs (pos, neg): (2,1) win, (2,3) loss, (3,1) win, (3,3) tie -> (2 + 0.5) / 4
    assert auc([2, 3], [1, 3]) == 0.625
    with pytest.raises(ValueError, match="empty"):
        auc([], [1.0])


# --- bootstrap_rows --------------------------------------------------------------------------------


def test_bootstrap_rows_on_independent_rows_matches_a_mean():
    from lens_bias.stats import bootstrap_rows

    x = np.random.default_rng(0).normal(size=400)
    estimate = bootstrap_rows(lambda rows: float(x[rows].mean()), np.arange(400), seed=3)
    assert estimate.value == pytest.approx(x.mean()) and estimate.n == 400
    assert estimate.low < x.mean() < estimate.high
    assert estimate.high - estimate.low == pytest.approx(2 * 1.96 * x.std() / 20, rel=0.15)
    assert bootstrap_rows(lambda rows: float(x[rows].mean()), np.arange(400), seed=3) == estimate


def test_bootstrap_rows_keeps_clusters_together():
    """Rows of one cluster are drawn together: a paired difference that is constant within clusters
    has a bootstrap distribution made only of whole-cluster draws."""
    from lens_bias.stats import bootstrap_rows

    clusters = np.repeat(np.arange(30), 2)  # question q: rows 2q (baseline) and 2q+1 (persona)
    seen = []

    def statistic(rows):
        counts = np.bincount(clusters[rows], minlength=30)
        seen.append(counts)
        return float(len(rows))

    estimate = bootstrap_rows(statistic, clusters, n_resamples=50)
    assert estimate.n == 30
    assert all((c % 2 == 0).all() for c in seen), "a cluster's two rows always come together"


def test_bootstrap_rows_needs_a_defined_value():
    from lens_bias.errors import InputError
    from lens_bias.stats import bootstrap_rows

    with pytest.raises(InputError, match="not finite"):
        bootstrap_rows(lambda rows: float("nan"), np.arange(5))


def test_bootstrap_sums_draws_what_bootstrap_rows_draws_and_gives_its_interval():
    """A ratio of counts over clustered rows, some resamples undefined (0/0): the vectorised bootstrap of the
    column sums equals the per-replicate one exactly, its undefined replicates left out alike."""
    from lens_bias.stats import bootstrap_rows, bootstrap_sums

    rng = np.random.default_rng(1)
    clusters = np.repeat(rng.permutation(12), 2)  # labels out of order, two rows each
    hits, tries = rng.integers(0, 2, 24), (rng.random(24) < 0.15).astype(np.int64)
    columns = np.stack([hits * tries, tries], 1)

    def ratio(sums):
        with np.errstate(invalid="ignore", divide="ignore"):
            return sums[:, 0] / sums[:, 1]

    with pytest.warns(RuntimeWarning, match="undefined on"):
        rows = bootstrap_rows(lambda r: float(ratio(columns[r].sum(0)[None])[0]), clusters, n_resamples=300, seed=4)
    with pytest.warns(RuntimeWarning, match="undefined on"):
        fast = bootstrap_sums(columns, ratio, clusters, n_resamples=300, seed=4)
    assert fast == rows and fast.n == 12


def test_the_draws_are_the_same_in_any_batching():
    """5,000 clusters: the replicates come in batches of 400 (2e6 draws each), and both bootstraps see the
    draws of one replicate at a time from the seeded stream."""
    from lens_bias.stats import _cluster_draws, bootstrap_rows, bootstrap_sums

    batches = list(_cluster_draws(5000, 1000, seed=2))
    assert [len(batch) for batch in batches] == [400, 400, 200]
    rng = np.random.default_rng(2)
    assert all(np.array_equal(drawn, rng.integers(0, 5000, 5000)) for drawn in np.concatenate(batches))
    columns = np.random.default_rng(3).integers(0, 4, (5000, 2))
    fast = bootstrap_sums(columns, lambda sums: sums[:, 0] / sums[:, 1], np.arange(5000), n_resamples=1000, seed=2)
    rows = bootstrap_rows(lambda r: columns[r, 0].sum() / columns[r, 1].sum(), np.arange(5000), seed=2)
    assert fast == rows


def test_bootstrap_sums_refuses_columns_that_do_not_match_the_rows():
    from lens_bias.errors import InputError
    from lens_bias.stats import bootstrap_sums

    with pytest.raises(InputError, match=r"expected \[rows, k\]"):
        bootstrap_sums(np.ones((4, 2)), lambda s: s[:, 0], np.arange(5))


def test_paired_change_is_the_bootstrap_mean_of_the_differences() -> None:
    from lens_bias.stats import bootstrap_mean, paired_change

    before, after = [1.0, 2.0, 4.0, 3.0], [2.0, 2.5, 5.0, 3.0]
    assert paired_change(before, after, seed=3) == bootstrap_mean(np.array(after) - np.array(before), seed=3)


def test_grid_correlation_needs_three_settings_and_takes_rows_per_setting() -> None:
    from lens_bias.stats import grid_correlation

    x = [[0.0, 0.1], [1.0, 1.2], [2.0, 2.1]]  # 3 settings x 2 items
    y = [[5.0, 5.5, 5.2], [4.0, 4.1, 3.9], [3.0, 3.3, 2.8]]  # 3 settings x 3 items
    assert grid_correlation(x[:2], y[:2]) is None
    assert grid_correlation(x, y, seed=1) == curve_correlation(np.array(x).T, np.array(y).T, seed=1)
