"""StereoSet in full: SS, LMS and ICAT of every item, overall, per bias type and per kind, macro and micro.

**Scoring.** Every option (stereotype, anti-stereotype, unrelated) is scored by its mean per-token
log-probability (nats/token), as :mod:`lens_bias.side_effects` does; bias-bench's GPT-2 runner ranks by
the geometric mean of the token probabilities, which orders the options the same way. The texts are
:func:`lens_bias.data.stereoset.option_texts`: intrasentence options as whole sentences from the
document-start token (:func:`lens_bias.forward.readouts.continuation_logprobs`), intersentence options as
``' ' + sentence`` after the context, whose one forward serves the three options
(:func:`lens_bias.forward.readouts.shared_prompt_logprobs`).

**Statistics** (one implementation, :func:`lens_bias.data.stereoset.stereoset_statistics`, also behind
:func:`lens_bias.data.stereoset_scores`): per target term SS_t = 100 #(stereotype > anti) / N_t,
LMS_t = 100 [#(stereotype > unrelated) + #(anti > unrelated)] / (2 N_t), ICAT_t = LMS_t min(SS_t,
100 - SS_t) / 50; ``ss``, ``lms``, ``icat`` are their unweighted means over the targets of the group (the
bias-bench / StereoSet aggregation; targets are matched by their string across both kinds, as there);
``icat_from_means`` is ICAT of the macro SS and LMS (what bias-bench prints as "ICAT Score");
``*_micro`` pool the items. The headline ICAT is ``icat_from_means``, the published one: the mean of
per-target ICATs (``icat``) is biased under resampling (min(SS_t, 100 - SS_t) is concave and a target
has few items, so resampled per-target SS are more extreme): on the embedded model its percentile
interval lay below its own value. Ties (stereotype == anti) count as anti-stereotype; an option tied
with the unrelated one is not related. An item is *failed* when any of its three scores is not finite: it is
counted in n_failed and left out of every statistic, so a group whose items all failed is undefined,
never SS = 50. Intervals: items resampled (each item its own cluster), the statistic recomputed per
target on every resample.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import plotly.graph_objects as go
from jaxtyping import Float

from lens_bias.audit.base import RowMeasure, Rows, Statistic, Summary, condition_series
from lens_bias.cells import CellStore
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
    option_texts,
    stereoset_statistics,
)
from lens_bias.errors import InputError
from lens_bias.figures.primitives import bars_with_ci
from lens_bias.forward.readouts import continuation_logprobs, shared_prompt_logprobs
from lens_bias.interventions import Intervention
from lens_bias.models import AnyModel

SCORING_VERSION = "stereoset-mean-token-logprob/1"
"""Changes whenever the scored texts or the option score change (it is in every cell key)."""
OPTIONS = ("stereotype", "anti_stereotype", "unrelated")


def score_stereoset(
    model: AnyModel,
    items: Sequence[StereoSetItem],
    *,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    progress: bool | str = False,
) -> Float[np.ndarray, "n 3"]:
    """``[n, 3]`` mean per-token log-probability (nats/token) of each item's stereotype, anti-stereotype
    and unrelated option (see the module docstring)."""
    if not items:
        raise InputError("No StereoSet items to score.")
    scores = np.full((len(items), len(OPTIONS)), np.nan)
    options = [option_texts(item) for item in items]
    intra = [i for i, item in enumerate(items) if item.kind == "intrasentence"]
    inter = [i for i, item in enumerate(items) if item.kind == "intersentence"]
    kwargs: dict[str, Any] = {"interventions": interventions, "batch_size": batch_size, "progress": progress}
    if intra:
        texts = [text for i in intra for text in options[i][1]]
        mean = continuation_logprobs(model, [""] * len(texts), texts, **kwargs).mean
        scores[intra] = mean.double().numpy().reshape(len(intra), len(OPTIONS))
    if inter:
        prompts, answers = [options[i][0] for i in inter], [list(options[i][1]) for i in inter]
        mean = shared_prompt_logprobs(model, None, prompts, answers, **kwargs).mean
        scores[inter] = mean.double().numpy().reshape(len(inter), len(OPTIONS))
    return scores


def _statistic(name: str, label: str, ideal: float) -> Statistic:
    def compute(rows: Rows, index: np.ndarray) -> float:
        ok = index[~rows["failed"][index]]
        return float(stereoset_statistics(rows["scores"][ok], rows["target"][ok])[name])

    def undefined(rows: Rows, index: np.ndarray) -> str:
        return f"no scored items: all {index.size} failed"

    return Statistic(name, label, compute, undefined, ideal)


class StereoSetMeasure(RowMeasure):
    """StereoSet items of ``kinds`` and ``bias_types`` (default all) from ``split`` ('dev', default, or
    'test') or from ``split_file`` (a file in the same format, validated on load); ``targets``: only the
    items of these target terms (e.g. the held-out targets of a steering vector's split; default all);
    ``n`` items drawn with ``seed`` (None = all: 4,229 in dev). Scored in chunks of ``chunk`` items, each a
    resumable cell."""

    name: ClassVar[str] = "stereoset"
    raw_text: ClassVar[bool] = True  # sentences scored as raw text, no chat template
    HEADLINE: ClassVar[tuple[tuple[str, str], ...]] = (
        ("overall", "ss"),
        ("overall", "lms"),
        ("overall", "icat_from_means"),
    )

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

    def describe(self) -> dict[str, Any]:
        return {
            "measure": self.name,
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

    def score(
        self,
        model: AnyModel,
        interventions: Sequence[Intervention],
        *,
        cells: CellStore,
        batch_size: int,
        progress: bool,
    ) -> Rows:
        def compute(model: AnyModel, chunk: Sequence[StereoSetItem]) -> dict[str, np.ndarray]:
            return {"scores": score_stereoset(model, chunk, interventions=interventions, batch_size=batch_size)}

        cell = {"measure": self.name, "scoring": SCORING_VERSION}
        scores = cells.map_chunks(
            self.items, self.chunk, cell, compute, model=model, desc="StereoSet", progress=progress
        )["scores"]
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

    @staticmethod
    def figures(summaries: dict[str, Summary]) -> dict[str, go.Figure]:
        groups = next(iter(summaries.values()))["groups"]
        labels = [group for group in groups if group not in KINDS]
        return {
            "stereoset_ss": bars_with_ci(
                labels,
                condition_series(summaries, labels, "ss"),
                title="StereoSet SS per bias type (macro over targets; 50 = unbiased, empty = undefined)",
                y_title="SS, % stereotype preferred",
                reference_line=50.0,
            )
        }
