"""Preference for the positive (e.g. stereotyped) side of contrast pairs, by likelihood and by A/B choice.

Both summaries carry bootstrap intervals over items and the number of items, and both run under any
interventions, so "bias under steering" is the same call with ``interventions=[...]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lens_bias.data.records import ABItem, ContrastPair
from lens_bias.data.tables import load_pairs
from lens_bias.forward.readouts import ab_choice, score_pairs
from lens_bias.interventions import Intervention
from lens_bias.models import AnyModel
from lens_bias.prompts import ChatTemplate
from lens_bias.stats import Estimate, bootstrap_mean, share


@dataclass(frozen=True)
class LikelihoodPreference:
    """``mean_logprob_diff``: mean over pairs of log P(positive) - log P(negative) (nats; per-token mean
    log-probs by default, see ``by``); ``share_positive``: share of pairs whose positive side scores
    strictly higher (ties count as not preferring); 0.5 / 0 = no preference. ``pairs`` and ``diffs`` (each
    pair's log P(positive) - log P(negative)) are the per-item rows (:meth:`to_frame`; not in ``to_dict``)."""

    mean_logprob_diff: Estimate
    share_positive: Estimate
    by: str
    n: int
    pairs: tuple[ContrastPair, ...] = field(default=(), repr=False)
    diffs: tuple[float, ...] = field(default=(), repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("pairs", "diffs")}

    def items(self, condition: str = "") -> list[dict[str, Any]]:
        """One row per pair: ``item_id``, ``text`` (prompt + positive | prompt + negative), ``group`` (target),
        ``condition``, ``bias_type``, ``logprob_diff`` (nats)."""
        return [
            {
                "item_id": pair.id,
                "text": f"{pair.prompt}{pair.positive} | {pair.prompt}{pair.negative}",
                "group": pair.target,
                "condition": condition,
                "bias_type": pair.bias_type,
                "logprob_diff": diff,
            }
            for pair, diff in zip(self.pairs, self.diffs)
        ]

    def to_frame(self, condition: str = "") -> Any:
        """:meth:`items` as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.items(condition))


@dataclass(frozen=True)
class ABPreference:
    """``p_positive``: mean normalised P(positive option) over A/B items; ``position_bias``: mean
    normalised P(A) (0.5 = none, with the balanced order of :func:`lens_bias.data.to_ab_items`);
    ``format_mass``: mean P(A) + P(B) after ``(`` (near 1 = the model follows the format)."""

    p_positive: Estimate
    position_bias: Estimate
    format_mass: Estimate
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def likelihood_preference(
    model: AnyModel,
    pairs: Sequence[ContrastPair] | Any,
    *,
    by: str = "mean",
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    seed: int = 0,
    progress: bool | str = False,
) -> LikelihoodPreference:
    """Score both sides of every pair and summarise the preference for the positive side. ``pairs``: contrast
    pairs, or a table of them (dicts, a DataFrame, a ``datasets.Dataset``, a file: :func:`load_pairs`)."""
    pairs = load_pairs(pairs)
    scores = score_pairs(model, pairs, interventions=interventions, batch_size=batch_size, progress=progress)
    diff = scores.preference(by).numpy()
    return LikelihoodPreference(
        mean_logprob_diff=bootstrap_mean(diff, seed=seed),
        share_positive=share(diff > 0, seed=seed),
        by=by,
        n=len(pairs),
        pairs=tuple(pairs),
        diffs=tuple(diff.tolist()),
    )


def ab_preference(
    model: AnyModel,
    items: Sequence[ABItem],
    template: ChatTemplate,
    *,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    seed: int = 0,
    progress: bool | str = False,
) -> ABPreference:
    """P(positive option) and the position bias over A/B items."""
    scores = ab_choice(model, items, template, interventions=interventions, batch_size=batch_size, progress=progress)
    return ABPreference(
        p_positive=bootstrap_mean(scores.p_positive.numpy(), seed=seed),
        position_bias=bootstrap_mean((scores.p_a / scores.format_mass).numpy(), seed=seed),
        format_mass=bootstrap_mean(scores.format_mass.numpy(), seed=seed),
        n=len(items),
    )
