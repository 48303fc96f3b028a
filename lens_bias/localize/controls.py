"""BiasScope's control: a bias score with the selected heads scaled (:class:`lens_bias.interventions.HeadScaling`,
0 = ablation) against several seeded draws of as many random other heads (:func:`compare_to_random`)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import Tensor
from tqdm.auto import tqdm

from lens_bias.errors import InputError
from lens_bias.interventions import Head, HeadScaling, Intervention
from lens_bias.stats import bootstrap_mean, bootstrap_statistic


def random_heads(
    n_layers: int, n_heads: int, k: int, n_draws: int, *, seed: int = 0, exclude: Sequence[Head] = ()
) -> list[tuple[Head, ...]]:
    """``n_draws`` sets of ``k`` distinct heads drawn uniformly (seeded) from the heads not in ``exclude``."""
    pool = [(l, h) for l in range(n_layers) for h in range(n_heads) if (l, h) not in set(exclude)]
    if not 1 <= k <= len(pool):
        raise InputError(f"k must be between 1 and the number of heads to draw from ({len(pool)}), got {k}.")
    if n_draws < 1:
        raise InputError(f"n_draws must be >= 1, got {n_draws}.")
    rng = random.Random(seed)
    return [tuple(sorted(rng.sample(pool, k))) for _ in range(n_draws)]


ScoreFn = Callable[[Sequence[Intervention]], Any]


@dataclass
class AblationComparison:
    """A per-item bias score without intervention (``baseline`` ``[n]``), with the selected heads scaled
    (``selected`` ``[n]``) and with each of ``n_draws`` random head sets scaled (``random`` ``[n_draws,
    n]``). Reduction = baseline - intervened (positive = less bias), in the score's units."""

    baseline: np.ndarray
    selected: np.ndarray
    random: np.ndarray
    selected_heads: list[Head]
    random_heads: list[list[Head]]
    scale: float

    def summary(self, seed: int = 0) -> dict[str, Any]:
        """Bootstrap 95% intervals over items: ``baseline``, ``selected`` and ``random_mean`` (mean over
        draws) scores; ``reduction_selected``; ``reduction_random`` (per item, the mean over draws);
        ``advantage``: reduction_selected - reduction_random (paired over items; > 0 = the selected heads
        remove more bias); ``reduction_random_draws``: the mean reduction of each draw, and
        ``random_draw_range``: their 2.5-97.5 percentiles (the spread across draws)."""
        random_mean = self.random.mean(0)
        draws = self.baseline[None] - self.random
        per_draw = draws.mean(1)
        return {
            "n_items": len(self.baseline),
            "n_draws": len(self.random),
            "scale": self.scale,
            "selected_heads": [list(h) for h in self.selected_heads],
            "baseline": bootstrap_mean(self.baseline, seed=seed),
            "selected": bootstrap_mean(self.selected, seed=seed),
            "random_mean": bootstrap_mean(random_mean, seed=seed),
            "reduction_selected": bootstrap_mean(self.baseline - self.selected, seed=seed),
            "reduction_random": bootstrap_mean(self.baseline - random_mean, seed=seed),
            "advantage": bootstrap_statistic(
                (self.baseline - self.selected, self.baseline - random_mean),
                lambda a, b, axis=-1: np.mean(a - b, axis=axis),
                vectorized=True,
                seed=seed,
            ),
            "reduction_random_draws": per_draw.tolist(),
            "random_draw_range": np.percentile(per_draw, [2.5, 97.5]).tolist(),
        }


def compare_to_random(
    score_fn: ScoreFn,
    selected: Sequence[Head],
    *,
    n_layers: int,
    n_heads: int,
    n_random: int = 10,
    scale: float = 0.0,
    seed: int = 0,
    progress: bool = False,
) -> AblationComparison:
    """Evaluate ``score_fn(interventions) -> [n]`` per-item bias scores with no intervention, with the
    ``selected`` heads scaled by ``scale``, and with ``n_random`` draws of ``len(selected)`` other heads
    scaled the same way."""
    heads: list[Head] = [(layer, head) for layer, head in selected]  # tuples, also when read from JSON lists
    draws = random_heads(n_layers, n_heads, len(heads), n_random, seed=seed, exclude=heads)

    def run(interventions: Sequence[Intervention]) -> np.ndarray:
        values = score_fn(interventions)
        values = values.detach().cpu().numpy() if isinstance(values, Tensor) else np.asarray(values)
        return values.astype(np.float64).reshape(-1)

    baseline = run([])
    chosen = run([HeadScaling(tuple(heads), scale)])
    random_scores = np.stack(
        [
            run([HeadScaling(draw, scale)])
            for draw in tqdm(draws, desc="random heads", disable=not progress, leave=False)
        ]
    )
    return AblationComparison(baseline, chosen, random_scores, heads, [list(d) for d in draws], scale)
