"""Uncertainty for per-item scores: bootstrap intervals, correlations, AUC, shares.

Conventions shared by every function here:

* Inputs are one score per item (1-D arrays, lists or tensors converted with ``np.asarray``).
  Items whose score could not be computed must be *removed and counted by the caller*; a NaN
  reaching this module raises ``InputError`` (a ``ValueError``) rather than being silently dropped, so every
  denominator is explicit.
* Intervals are two-sided bootstrap intervals at ``level`` (default 0.95) computed with
  ``scipy.stats.bootstrap``. The default method is BCa (bias-corrected and accelerated, Efron &
  Tibshirani 1993, ch. 14), which corrects the percentile interval for bias and skew (useful for
  proportions near 0 or 1 and for correlations). BCa needs a jackknife whose cost grows as n^2
  (about 2 s for a Spearman correlation at n = 2000), while its correction vanishes as n grows, so
  the default ``method="auto"`` uses BCa up to ``BCA_MAX_N`` = 2000 observations per sample and
  the percentile interval above. When BCa is undefined (a degenerate bootstrap distribution) the
  percentile interval of the finite bootstrap replicates is used instead. ``"BCa"``,
  ``"percentile"`` or ``"basic"`` can be requested explicitly.
* Degenerate inputs do not crash: a single observation, or data whose bootstrap distribution is
  constant, give an interval that collapses to the point estimate (``low == value == high``).
  Such an interval is *not* a statement of certainty; report ``n`` alongside it.
* Every resampling is seeded (``seed``, default 0): the same call returns the same interval.
* Proportions (a share of items) are not bootstrapped: :func:`share` gives the Wilson score interval
  (:func:`wilson`), which stays inside [0, 1] and keeps a width at 0 or n successes (6 of 6 correct:
  [0.61, 1.00], where the bootstrap says [1, 1]); the paired change of a proportion (the same items
  before and after) has the Bonett-Price adjusted Wald interval (:func:`paired_proportion_change`).
  Groups smaller than :data:`SMALL_N` items get a warning from the callers that report them
  (:func:`small_groups`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from jaxtyping import Float, Int, Num
from scipy import stats as sps

from lens_bias.errors import InputError

BootstrapMethod = Literal["auto", "BCa", "percentile", "basic"]

SMALL_N = 10
"""Fewer items than this in a group: its interval rests on too few items to say much (callers warn)."""

BCA_MAX_N = 2000
"""Largest sample size for which ``method="auto"`` uses BCa (percentile above)."""

# Upper bound on (resamples per vectorised call) x (observations), so that memory stays around
# 16 MB of float64 per batch however many items there are (BCa's jackknife is n x (n - 1)).
_BATCH_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided confidence interval.

    ``value`` is the statistic on the observed data (not the bootstrap mean); ``[low, high]`` is the
    interval at confidence ``level``; ``n`` is the number of observations it rests on (items, or
    pairs for paired statistics; see the function that produced it).
    """

    value: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def to_dict(self) -> dict[str, float | int]:
        """Plain-Python dict (JSON-ready apart from non-finite floats)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Estimate:
        """Inverse of ``to_dict`` (also accepts dicts read back from a saved Result, where a
        non-finite float was stored as ``None``)."""

        def num(x: Any) -> float:
            return float("nan") if x is None else float(x)

        return cls(
            value=num(data["value"]),
            low=num(data["low"]),
            high=num(data["high"]),
            n=int(data["n"]),
            level=float(data.get("level", 0.95)),
        )

    def __str__(self) -> str:
        """E.g. ``0.62 [0.55, 0.69] (n=120)``; scientific notation for very small/large values."""
        scale = max(abs(self.value), abs(self.low), abs(self.high))
        fixed = scale == 0 or 0.01 <= scale < 1e5 or not np.isfinite(scale)
        spec = ".2f" if fixed else ".2e"
        return f"{self.value:{spec}} [{self.low:{spec}}, {self.high:{spec}}] (n={self.n})"


def _as_1d(values: Any, name: str) -> np.ndarray:
    """Validate one sample: 1-D, non-empty, numeric, no NaN/inf. Returns float64 array."""
    if hasattr(values, "detach"):  # torch tensor
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.dtype == bool:
        arr = arr.astype(np.float64)
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: expected numbers, got dtype {arr.dtype}") from exc
    if arr.ndim != 1:
        raise InputError(f"{name}: expected a 1-D array of per-item values, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name}: no observations (empty input); cannot estimate anything")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InputError(
            f"{name}: {int(bad.sum())} of {arr.size} values are NaN/inf. Remove the items whose "
            "score could not be computed and report their count separately; this module does "
            "not drop them silently."
        )
    return arr


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise InputError(f"level must be in (0, 1), got {level}")


def bootstrap_statistic(
    samples: Sequence[Any],
    statistic: Callable[..., Any],
    *,
    paired: bool = True,
    vectorized: bool = False,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    method: BootstrapMethod = "auto",
) -> Estimate:
    """Bootstrap confidence interval for any statistic of one or more samples.

    Args:
        samples: tuple of 1-D arrays, one per sample (e.g. ``(scores_a, scores_b)``).
        statistic: ``statistic(*samples) -> float``. With ``vectorized=True`` it must also accept
            an ``axis`` keyword and reduce along it (like ``np.mean``), which is much faster.
        paired: resample items jointly across samples (all samples must have the same length,
            element ``i`` of each belonging to item ``i``), e.g. the same prompts under two
            conditions. With ``paired=False`` each sample is resampled independently, e.g. two
            disjoint groups of items.
        level: confidence level of the two-sided interval.
        n_resamples: bootstrap replicates.
        seed: seed of the resampling generator.
        method: ``"auto"`` (default: BCa up to ``BCA_MAX_N`` observations, else percentile),
            ``"BCa"``, ``"percentile"`` or ``"basic"``; see module docstring.

    Returns:
        ``Estimate`` with ``value = statistic(*samples)``; ``n`` is the number of pairs when
        ``paired`` and the total number of observations over all samples otherwise.

    Raises:
        InputError: on empty samples, NaN/inf values, mismatched paired lengths, an unpaired
            sample of size 1 next to larger ones, a non-finite statistic on the observed data,
            or a ``level`` outside (0, 1).
    """
    _check_level(level)
    if len(samples) == 0:
        raise InputError("samples: need at least one sample")
    data = tuple(_as_1d(s, f"samples[{i}]") for i, s in enumerate(samples))
    sizes = [d.size for d in data]
    if paired and len(set(sizes)) != 1:
        raise InputError(f"paired=True needs samples of equal length, got lengths {sizes}")

    value = float(statistic(*data))
    if not np.isfinite(value):
        raise InputError(f"the statistic is not finite on the observed data ({value})")
    n = sizes[0] if paired else sum(sizes)

    if max(sizes) == 1:  # nothing to resample
        return Estimate(value, value, value, n, level)
    if not paired and min(sizes) == 1:
        raise InputError(f"unpaired bootstrap needs at least 2 observations in every sample, got sizes {sizes}")

    if method == "auto":
        method = "BCa" if max(sizes) <= BCA_MAX_N else "percentile"
    batch = max(1, _BATCH_ELEMENTS // max(sizes))
    with warnings.catch_warnings():
        # Degenerate cases are detected and handled below from the bootstrap distribution.
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", sps.ConstantInputWarning)
        res = sps.bootstrap(
            data,
            statistic,
            n_resamples=n_resamples,
            batch=batch,
            vectorized=vectorized,
            paired=paired,
            confidence_level=level,
            method=method,
            rng=np.random.default_rng(seed),
        )
    dist = np.asarray(res.bootstrap_distribution, dtype=np.float64)
    finite = dist[np.isfinite(dist)]
    if finite.size == 0:
        raise InputError("the statistic is undefined (NaN/inf) on every bootstrap resample")
    if np.ptp(finite) == 0 and finite.size == dist.size:
        return Estimate(value, value, value, n, level)

    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)):
        low, high = _finite_percentile_interval(dist, level, " (e.g. a constant resample for a correlation)")
    return Estimate(value, low, high, n, level)


def _finite_percentile_interval(replicates: np.ndarray, level: float, example: str = "") -> tuple[float, float]:
    """The percentile interval of the finite bootstrap replicates; a warning says how many were undefined
    (``example`` says why they may be), an error when none is finite."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        raise InputError("the statistic is undefined (NaN/inf) on every bootstrap resample")
    if finite.size < replicates.size:
        warnings.warn(
            f"the statistic was undefined on {replicates.size - finite.size} of {replicates.size} bootstrap "
            f"resamples{example}; the interval is the percentile interval of the others",
            RuntimeWarning,
            stacklevel=3,
        )
    alpha = 1.0 - level
    low, high = (float(q) for q in np.quantile(finite, [alpha / 2, 1 - alpha / 2]))
    return low, high


def bootstrap_mean(
    values: Any,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    method: BootstrapMethod = "auto",
) -> Estimate:
    """Mean of per-item values with a bootstrap interval (see module docstring for the method).

    ``n`` is the number of items. Empty input or NaN/inf values raise ``InputError``.
    """
    return bootstrap_statistic(
        (_as_1d(values, "values"),),
        np.mean,
        paired=True,
        vectorized=True,
        level=level,
        n_resamples=n_resamples,
        seed=seed,
        method=method,
    )


def bootstrap_rows(
    statistic: Callable[[np.ndarray], float],
    clusters: Any,
    *,
    level: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Estimate:
    """Percentile bootstrap of a statistic of *rows*, resampling whole clusters of rows.

    For statistics that are not a function of one flat sample: ``statistic(rows)`` takes an integer
    array of row indices (with repeats) and returns a float, e.g. a macro average over target terms of
    the rows it is given, or a score that compares two conditions of the same questions. ``clusters[i]``
    is the resampling unit of row i (e.g. the question it asks; ``np.arange(n)`` for independent rows):
    each replicate draws as many clusters as there are, with replacement, and takes all their rows, so
    rows that share a cluster stay together and paired conditions stay paired.

    ``value`` is the statistic on all rows; it must be finite (check for an undefined statistic before
    calling). Replicates where it is not finite (a resample with no defined value) are left out of the
    percentile interval, and a warning says how many. ``n`` is the number of clusters.
    """
    _check_level(level)
    codes = _cluster_codes(clusters)
    order = np.argsort(codes, kind="stable")  # rows grouped by cluster
    sizes = np.bincount(codes)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    n_clusters = sizes.size
    value = float(statistic(np.arange(codes.size)))
    if not np.isfinite(value):
        raise InputError(f"the statistic is not finite on the observed rows ({value})")
    if n_clusters == 1:
        return Estimate(value, value, value, 1, level)
    replicates = np.empty(n_resamples)
    for r, drawn in enumerate(drawn for batch in _cluster_draws(n_clusters, n_resamples, seed) for drawn in batch):
        lengths = sizes[drawn]
        # positions in `order` of every row of every drawn cluster, in one vectorised step
        offsets = np.repeat(starts[drawn] - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        replicates[r] = statistic(order[offsets])
    low, high = _finite_percentile_interval(replicates, level)
    return Estimate(value, low, high, n_clusters, level)


def bootstrap_sums(
    columns: Num[np.ndarray, "n k"],
    statistic: Callable[[Float[np.ndarray, "r k"]], Float[np.ndarray, " r"]],
    clusters: Any,
    *,
    level: float = 0.95,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Estimate:
    """:func:`bootstrap_rows` for a statistic of column sums of per-row values (e.g. a ratio of counts), fast.

    ``columns[i]`` holds row i's values; ``statistic(sums)`` maps summed columns ``[r, k]`` to ``[r]`` (NaN
    where undefined). The same clusters are drawn as :func:`bootstrap_rows` draws with the same ``seed``, so a
    statistic that ``bootstrap_rows`` would compute from the same rows gets the same interval (exactly, for
    integer columns), but each replicate's sums are a matrix product (how often it drew each cluster, times the
    per-cluster sums) and ``statistic`` runs once on all replicates instead of once per replicate. ``value`` is
    the statistic of all rows' sums."""
    _check_level(level)
    values = np.asarray(columns)
    if values.ndim != 2 or values.shape[0] != np.asarray(clusters).reshape(-1).size:
        raise InputError(f"columns: expected [rows, k] with one row per cluster label, got {values.shape}")
    codes = _cluster_codes(clusters)
    per_cluster = np.zeros((int(codes.max()) + 1, values.shape[1]), dtype=values.dtype)
    np.add.at(per_cluster, codes, values)
    n_clusters = per_cluster.shape[0]
    value = float(statistic(per_cluster.sum(0)[None])[0])
    if not np.isfinite(value):
        raise InputError(f"the statistic is not finite on the observed rows ({value})")
    if n_clusters == 1:
        return Estimate(value, value, value, 1, level)
    per_cluster = per_cluster.astype(np.float64)
    sums = np.concatenate(
        [_draw_counts(batch) @ per_cluster for batch in _cluster_draws(n_clusters, n_resamples, seed)]
    )
    low, high = _finite_percentile_interval(np.asarray(statistic(sums), dtype=np.float64), level)
    return Estimate(value, low, high, n_clusters, level)


def _cluster_codes(clusters: Any) -> Int[np.ndarray, " n"]:
    """Each row's cluster as 0..n_clusters-1 (in sorted order of the labels)."""
    codes = np.unique(np.asarray(clusters), return_inverse=True)[1].reshape(-1)
    if codes.size == 0:
        raise InputError("clusters: no rows to resample")
    return codes


def _cluster_draws(n_clusters: int, n_resamples: int, seed: int) -> Iterator[Int[np.ndarray, "b n_clusters"]]:
    """The clusters each bootstrap replicate draws (n_clusters of them, with replacement), seeded: batches of
    replicates, ``[b, n_clusters]`` with ``b x n_clusters`` at most :data:`_BATCH_ELEMENTS`. The generator's
    stream does not depend on the shape drawn, so the replicates are the same in any batching."""
    rng = np.random.default_rng(seed)
    per_batch = max(1, _BATCH_ELEMENTS // n_clusters)
    for start in range(0, n_resamples, per_batch):
        yield rng.integers(0, n_clusters, (min(per_batch, n_resamples - start), n_clusters))


def _draw_counts(draws: Int[np.ndarray, "b n_clusters"]) -> Float[np.ndarray, "b n_clusters"]:
    """How many times each replicate of ``draws`` drew each cluster (float64, for a matrix product)."""
    b, n_clusters = draws.shape
    flat = (draws + n_clusters * np.arange(b)[:, None]).reshape(-1)
    return np.bincount(flat, minlength=b * n_clusters).reshape(b, n_clusters).astype(np.float64)


def _z(level: float) -> float:
    _check_level(level)
    return float(sps.norm.ppf(0.5 + level / 2))


def wilson(successes: int, n: int, level: float = 0.95) -> Estimate:
    """``successes / n`` with the Wilson score interval (Wilson 1927; Brown, Cai & DasGupta 2001): the
    interval of the proportions a score test at ``level`` does not reject; inside [0, 1], and of non-zero
    width at 0 and n successes. ``n`` = 0 raises InputError."""
    if n < 1 or not 0 <= successes <= n:
        raise InputError(f"wilson: need 0 <= successes <= n and n >= 1, got {successes} of {n}.")
    z, p = _z(level), successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, max(0.0, float(centre - half)), min(1.0, float(centre + half)), n, level)


def share(mask: Any, level: float = 0.95, seed: int = 0) -> Estimate:
    """Proportion of True entries in a boolean (or 0/1) per-item mask, with the Wilson score interval
    (:func:`wilson`; ``seed`` is accepted for a uniform call and unused: nothing is resampled). ``n`` is the
    denominator: the number of items in ``mask``."""
    arr = _as_1d(mask, "mask")
    if not np.isin(arr, (0.0, 1.0)).all():
        raise InputError("mask: expected booleans or 0/1 values")
    return wilson(int(arr.sum()), arr.size, level)


def paired_proportion_change(before: Any, after: Any, level: float = 0.95) -> Estimate:
    """``mean(after) - mean(before)`` of 0/1 outcomes on the same items, with the Bonett-Price adjusted Wald
    interval (Bonett & Price 2012): the discordant counts get one pseudo-item each, so the interval keeps a
    width when no item changed (the bootstrap's collapses to [0, 0]); clipped to [-1, 1]."""
    b, a = _as_1d(before, "before"), _as_1d(after, "after")
    if b.shape != a.shape or not (np.isin(b, (0.0, 1.0)).all() and np.isin(a, (0.0, 1.0)).all()):
        raise InputError("paired_proportion_change: expected two 0/1 arrays of the same length")
    n, gained, lost = b.size, int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
    p_gain, p_loss = (gained + 1) / (n + 2), (lost + 1) / (n + 2)
    half = _z(level) * np.sqrt((p_gain + p_loss - (p_gain - p_loss) ** 2) / (n + 2))
    centre = p_gain - p_loss
    value = (gained - lost) / n
    return Estimate(value, max(-1.0, float(centre - half)), min(1.0, float(centre + half)), n, level)


def small_groups(sizes: dict[str, int], minimum: int = SMALL_N) -> list[str]:
    """The groups of ``sizes`` (name -> items) with fewer than ``minimum`` items, as ``"name (n=k)"``."""
    return [f"{name} (n={n})" for name, n in sizes.items() if 0 < n < minimum]


def _pearson(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Correlation along ``axis``: an array for batched input, a numpy float for 1-D input."""
    return sps.pearsonr(x, y, axis=axis).statistic


def _spearman(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray | float:
    return _pearson(sps.rankdata(x, axis=axis), sps.rankdata(y, axis=axis), axis=axis)


_CORRELATIONS = {"pearson": _pearson, "spearman": _spearman}


def bootstrap_correlation(
    x: Any,
    y: Any,
    method: Literal["pearson", "spearman"] = "pearson",
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    ci_method: BootstrapMethod = "auto",
) -> Estimate:
    """Pearson or Spearman correlation of paired per-item values with a bootstrap interval.

    Items are resampled as ``(x_i, y_i)`` pairs. ``value`` equals ``scipy.stats.pearsonr`` /
    ``spearmanr`` on the data; ``n`` is the number of pairs (at least 2 required). Resamples on
    which the correlation is undefined (constant) are dropped with a warning.

    Raises:
        InputError: lengths differ, fewer than 2 pairs, NaN/inf, or x or y constant (the
            correlation is undefined).
    """
    xa, ya = _as_1d(x, "x"), _as_1d(y, "y")
    if xa.size != ya.size:
        raise InputError(f"x and y must have the same length, got {xa.size} and {ya.size}")
    if xa.size < 2:
        raise InputError("a correlation needs at least 2 pairs")
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        raise InputError("x or y is constant: the correlation is undefined")
    if method not in _CORRELATIONS:
        raise InputError(f"method must be 'pearson' or 'spearman', got {method!r}")
    return bootstrap_statistic(
        (xa, ya),
        _CORRELATIONS[method],
        paired=True,
        vectorized=True,
        level=level,
        n_resamples=n_resamples,
        seed=seed,
        method=ci_method,
    )


def auc(positive_scores: Any, negative_scores: Any) -> float:
    """Area under the ROC curve: P(score of a random positive > score of a random negative),
    ties counted as 1/2. Computed as ``U / (n_pos * n_neg)`` with the Mann-Whitney U of the
    positives. 0.5 = no separation, 1.0 = every positive above every negative.
    """
    pos = _as_1d(positive_scores, "positive_scores")
    neg = _as_1d(negative_scores, "negative_scores")
    u = sps.mannwhitneyu(pos, neg, alternative="two-sided", method="asymptotic").statistic
    return float(u) / (pos.size * neg.size)


def curve_correlation(
    x: Any,
    y: Any,
    method: Literal["pearson", "spearman"] = "pearson",
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """Correlation between two curves measured over the same grid, each the mean over its own items.

    E.g. refusal propensity (over harmful requests) and bias (over held-out pairs) at each multiplier of a
    steering sweep: ``x`` is ``[n_x, G]`` (item x grid point), ``y`` is ``[n_y, G]``; the items of x and y
    may differ. ``value`` is the correlation of the G-point curves ``x.mean(0)`` and ``y.mean(0)``. The grid
    is a fixed design, so the interval resamples *items* (those of x and those of y independently) and
    recomputes the curves: a percentile interval saying how sure the relation is given item-level noise.
    Resamples with a flat curve (correlation undefined) are dropped with a warning. ``n = n_x + n_y``.

    Raises:
        InputError: the grids differ in size, fewer than 3 grid points, NaN/inf, or a flat observed curve.
    """
    _check_level(level)
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xa.ndim != 2 or ya.ndim != 2 or xa.shape[1] != ya.shape[1]:
        raise InputError(f"x and y must be [items, grid points] with the same grid, got {xa.shape} and {ya.shape}")
    if xa.shape[1] < 3:
        raise InputError("a curve correlation needs at least 3 grid points")
    if not (np.isfinite(xa).all() and np.isfinite(ya).all()):
        raise InputError("x and y must be finite")
    if method not in _CORRELATIONS:
        raise InputError(f"method must be 'pearson' or 'spearman', got {method!r}")
    cx, cy = xa.mean(0), ya.mean(0)
    if np.ptp(cx) == 0 or np.ptp(cy) == 0:
        raise InputError("a curve is flat: the correlation is undefined")
    rng = np.random.default_rng(seed)
    bx = xa[rng.integers(0, len(xa), (n_resamples, len(xa)))].mean(1)
    by = ya[rng.integers(0, len(ya), (n_resamples, len(ya)))].mean(1)
    flat = (np.ptp(bx, axis=1) == 0) | (np.ptp(by, axis=1) == 0)
    if flat.any():
        warnings.warn(
            f"{int(flat.sum())} of {n_resamples} resamples gave a flat curve and were dropped",
            RuntimeWarning,
            stacklevel=2,
        )
    replicates = _CORRELATIONS[method](bx[~flat], by[~flat], axis=-1)
    tail = (1 - level) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return Estimate(float(_CORRELATIONS[method](cx, cy)), float(low), float(high), len(xa) + len(ya), level)


def paired_change(before: Any, after: Any, *, seed: int = 0) -> Estimate:
    """The mean per-item change ``after - before`` (the same items, in order), with a bootstrap interval."""
    return bootstrap_mean(np.asarray(after) - np.asarray(before), seed=seed)


def grid_correlation(x: Any, y: Any, *, seed: int = 0) -> Estimate | None:
    """:func:`curve_correlation` of per-setting item scores: ``x`` is ``[G, n_x]`` and ``y`` ``[G, n_y]`` (one
    row per grid setting, e.g. per multiplier of a sweep); None with fewer than 3 settings."""
    if len(x) < 3:
        return None
    return curve_correlation(np.array(x).T, np.array(y).T, seed=seed)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """Which points no other point dominates (both coordinates >=, one >; NaN points are never on it)."""
    finite = [bool(np.isfinite(p).all()) for p in points]
    front = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            finite[j] and j != i and ox >= x and oy >= y and (ox > x or oy > y) for j, (ox, oy) in enumerate(points)
        )
        front.append(finite[i] and not dominated)
    return front
