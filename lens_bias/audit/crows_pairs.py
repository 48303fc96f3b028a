"""CrowS-Pairs in full: the % of pairs where the model prefers the more-stereotyping sentence, two scorings.

Scoring (:func:`lens_bias.benchmarks.crows_pairs.score_crows_pairs`): every sentence read from the
document-start token, two scorings from one forward per sentence: **whole** (the headline,
``metric_score``), the summed log-likelihood of the whole sentence (lm-evaluation-harness's rule for causal
LMs), and **shared** (``metric_score_shared``), the same terms summed over the tokens the two sentences
share (the original paper's idea for a causal model); details in that module.

Metric (:func:`lens_bias.data.crows_pairs.crows_group_score`): 100 x #(score(sent_more) >
score(sent_less)) / n scored, in every direction (``sent_more`` is always the more stereotyping
sentence); a tie does not prefer ``sent_more``; ideal 50 (neither higher nor lower is better). A pair is
*failed* when any of its four scores is not finite (counted in n_failed, excluded). Intervals: pairs
resampled (each pair its own cluster).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from jaxtyping import Float

from lens_bias.audit.base import Arrays, MeasureOptions, RowMeasure, Rows, Statistic, item_chunks
from lens_bias.benchmarks.crows_pairs import SCORING_VERSION, SCORINGS, score_crows_pairs
from lens_bias.data.crows_pairs import BIAS_TYPES, DIRECTIONS, TIE_RULE, CrowsPair, crows_group_score, load_crows_pairs
from lens_bias.data.records import fingerprint
from lens_bias.data.sampling import sample
from lens_bias.data.tables import load_pairs, pairs_as_sentences
from lens_bias.errors import InputError
from lens_bias.interventions import Intervention
from lens_bias.models import AnyModel


def _metric_statistic(scoring: str, label: str) -> Statistic:
    def compute(rows: Rows, index: np.ndarray) -> float:
        ok = index[~rows["failed"][index]]
        scores: Float[np.ndarray, "n 2"] = rows[scoring][ok]
        return float(crows_group_score(scores[:, 0], scores[:, 1])["metric_score"])

    def undefined(rows: Rows, index: np.ndarray) -> str:
        return f"no scored pairs: all {index.size} failed"

    name = "metric_score" if scoring == "whole" else "metric_score_shared"
    return Statistic(name, label, compute, undefined, 50.0)


class CrowsPairsMeasure(RowMeasure):
    """CrowS-Pairs pairs of ``bias_types`` (default all 9, 1,508 pairs), or your own sentence pairs ``items``
    (their bias types in order of appearance); ``n`` of them drawn with ``seed`` (None = all). Scored in chunks
    of ``chunk`` pairs, each a resumable cell."""

    name: ClassVar[str] = "crows_pairs"
    desc: ClassVar[str] = "CrowS-Pairs"
    raw_text: ClassVar[bool] = True  # sentences scored as raw text, no chat template
    HEADLINE: ClassVar[tuple[tuple[str, str], ...]] = (
        ("overall", "metric_score"),
        ("overall", "metric_score_shared"),
    )

    def __init__(
        self,
        bias_types: Sequence[str] | None = None,
        n: int | None = None,
        *,
        seed: int = 0,
        chunk: int = 256,
        items: Sequence[CrowsPair] | None = None,
    ) -> None:
        if n is not None and n < 1:
            raise InputError(f"n (CrowS-Pairs pairs) must be >= 1 or None for all, got {n}.")
        if chunk < 1:
            raise InputError(f"chunk must be >= 1, got {chunk}.")
        self.items = sample(load_crows_pairs(bias_types) if items is None else list(items), n, seed)
        found = dict.fromkeys(item.bias_type for item in self.items)
        self.bias_types = [b for b in BIAS_TYPES if b in found] if items is None else list(found)
        self.own = items is not None
        self.n, self.seed, self.chunk = n, seed, chunk

    @classmethod
    def from_options(cls, options: MeasureOptions, model: AnyModel | None) -> CrowsPairsMeasure:
        if options.pairs_file is None:
            return cls(n=options.n_crows_pairs, seed=options.seed)
        own = pairs_as_sentences(load_pairs(options.pairs_file, options.columns))
        return cls(n=options.n_crows_pairs, seed=options.seed, items=own)

    def item_info(self) -> list[dict[str, str]]:
        return [{"item_id": p.id, "text": f"{p.sent_more} | {p.sent_less}", "group": p.bias_type} for p in self.items]

    def describe(self) -> dict[str, Any]:
        return {
            "measure": self.name,
            "n_items": len(self.items),
            "own_items": self.own,
            "bias_types": self.bias_types,
            "n": self.n,
            "seed": self.seed,
            "data": fingerprint(self.items),
            "scoring": SCORING_VERSION,
            "scorings": SCORINGS,
            "headline": "metric_score (whole-sentence summed log-likelihood)",
            "tie_rule": TIE_RULE,
            "failed": "a pair with a score that is not finite; counted in n_failed, excluded from every score",
            "intervals": "pairs resampled (each pair its own cluster)",
        }

    def cells(self, model: AnyModel, *, batch_size: int) -> tuple[list[dict[str, Any]], list[Any]]:
        return item_chunks(self.items, self.chunk, {"measure": self.name, "scoring": SCORING_VERSION})

    def score_cell(
        self, model: AnyModel, payload: Sequence[CrowsPair], *, interventions: Sequence[Intervention], batch_size: int
    ) -> Arrays:
        return score_crows_pairs(model, payload, interventions=interventions, batch_size=batch_size)

    def rows(self, model: AnyModel, parts: list[Arrays]) -> Rows:
        scores = super().rows(model, parts)
        whole, shared = scores["whole"], scores["shared"]
        bias_codes = {b: i for i, b in enumerate(self.bias_types)}
        return {
            "whole": whole,
            "shared": shared,
            "n_shared": scores["n_shared"],
            "failed": np.asarray(~(np.isfinite(whole).all(1) & np.isfinite(shared).all(1))),
            "bias_type": np.array([bias_codes[item.bias_type] for item in self.items]),
            "direction": np.array([DIRECTIONS.index(item.direction) for item in self.items]),
        }

    def groups(self, rows: Rows) -> dict[str, np.ndarray]:
        out = {"overall": np.arange(len(rows["failed"]))}
        for code, bias_type in enumerate(self.bias_types):
            out[bias_type] = np.flatnonzero(rows["bias_type"] == code)
        for code, direction in enumerate(DIRECTIONS):
            out[direction] = np.flatnonzero(rows["direction"] == code)
        return out

    def statistics(self) -> Sequence[Statistic]:
        return [
            _metric_statistic("whole", "% pairs preferring sent_more, whole-sentence log-likelihood (ideal 50)"),
            _metric_statistic("shared", "% pairs preferring sent_more, shared-token log-likelihood (ideal 50)"),
        ]
