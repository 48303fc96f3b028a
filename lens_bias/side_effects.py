"""What an intervention costs: the same capability readouts with and without it, side by side.

:func:`side_effects` runs any :class:`lens_bias.interventions.Intervention`s (head scaling, steering
vectors, ...) or saved intervention files (:func:`lens_bias.interventions.load_intervention`) and compares
four readouts with the unintervened model on the same items:

* **Neutral text**: mean per-token log-probability (nats/token) of each held-out neutral sentence
  (:func:`lens_bias.data.neutral.neutral_texts`, scored from the document-start token). Sensitive
  to any damage to fluency.
* **BBQ disambiguated accuracy**: a fixed seeded subsample of disambiguated BBQ questions (all
  categories), answered by :func:`lens_bias.benchmarks.bbq.answer_bbq` in its ``context_question``
  format: the prompt is ``"{context} {question}\\nAnswer:"`` and each of the three answers is scored as a
  continuation by its mean per-token log-probability; the highest is the model's answer. Chance is 1/3.
* **StereoSet LMS** (language-modelling score, percent): a fixed seeded subsample of StereoSet dev
  items (all bias types, both kinds), every option scored by
  :func:`lens_bias.benchmarks.stereoset.score_stereoset` (mean per-token log-probability; intrasentence:
  the whole sentence; intersentence: the sentence after the context); per item, the share of
  {stereotype, anti-stereotype} options scored strictly above the unrelated one; LMS is the mean over
  target terms of the per-target mean (:func:`lens_bias.data.stereoset_scores`' macro LMS). Ideal 100.
* **Knowledge accuracy**: a fixed seeded subsample (default: all 208) of the project's factual cloze
  questions (:func:`lens_bias.data.knowledge.knowledge_items`, 8 domains); the right answer and its 3
  distractors are each scored as the continuation ``" " + option`` of the prompt (raw text, no chat
  template) by mean per-token log-probability, the same length normalisation as the two readouts above
  (the sum would charge every extra token of a multi-token answer, "Buenos Aires" against "Lima"; the
  mean's opposite lean, towards long answers whose later tokens are near-certain, is small here: most
  options are one token, and on the embedded model both rules score 0.84 over all 208). An item is
  correct when the right answer scores *strictly* highest (a tie counts as wrong). Chance is 1/4.

Every value comes with a 95% interval over items: the shares correct (BBQ, knowledge) Wilson's, with the
Bonett-Price interval of their paired change (:mod:`lens_bias.stats`: neither collapses when no item
changed); the others a bootstrap interval (LMS: items resampled, the statistic
recomputed per target), and the change (intervened - baseline) with a *paired* bootstrap interval over
the same items. All four readouts are higher-is-better: :attr:`SideEffect.harmed` is True when the
change's interval lies entirely below 0. Item subsamples are drawn once per seed, so the baseline of one
call can be reused for other interventions (``baseline=``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float
from transformer_lens import HookedTransformer

from lens_bias.benchmarks.bbq import answer_bbq
from lens_bias.benchmarks.stereoset import score_stereoset
from lens_bias.data import (
    BBQItem,
    StereoSetScore,
    fingerprint,
    load_bbq,
    load_stereoset,
    sample,
    stereoset_scores,
)
from lens_bias.data.knowledge import KnowledgeItem, knowledge_items
from lens_bias.data.neutral import neutral_texts
from lens_bias.data.stereoset import StereoSetItem
from lens_bias.errors import InputError
from lens_bias.forward.readouts import continuation_logprobs, shared_prompt_logprobs
from lens_bias.interventions import Intervention, check_interventions, describe_all
from lens_bias.interventions import saved as saved_interventions
from lens_bias.stats import Estimate, bootstrap_mean, bootstrap_statistic, paired_proportion_change, share


@dataclass(frozen=True)
class SideEffectConfig:
    """Which items are scored: ``n_neutral`` neutral sentences (None = all 110), ``n_bbq`` disambiguated
    BBQ questions, ``n_stereoset`` StereoSet dev items, ``n_knowledge`` factual cloze questions (None = all
    208), drawn with ``seed``; ``batch_size`` rows per forward."""

    n_neutral: int | None = None
    n_bbq: int = 150
    n_stereoset: int = 150
    n_knowledge: int | None = None
    seed: int = 0
    batch_size: int = 32

    def __post_init__(self) -> None:
        for name in ("n_bbq", "n_stereoset"):
            if getattr(self, name) < 2:
                raise InputError(f"{name} must be >= 2 (a bootstrap needs items), got {getattr(self, name)}.")
        for name in ("n_neutral", "n_knowledge"):
            if getattr(self, name) is not None and getattr(self, name) < 2:
                raise InputError(f"{name} must be >= 2 or None (all items), got {getattr(self, name)}.")


@dataclass
class Items:
    """The items of one :class:`SideEffectConfig` (fixed by its seed)."""

    neutral: list[str]
    bbq: list[BBQItem]
    stereoset: list[StereoSetItem]
    knowledge: list[KnowledgeItem]

    @classmethod
    def draw(cls, config: SideEffectConfig) -> "Items":
        disambiguated = [item for item in load_bbq() if item.context_condition == "disambig"]
        return cls(
            neutral=sample(neutral_texts(), config.n_neutral, config.seed),
            bbq=sample(disambiguated, config.n_bbq, config.seed, key=lambda item: item.uid),
            stereoset=sample(load_stereoset(), config.n_stereoset, config.seed, key=lambda item: item.id),
            knowledge=sample(knowledge_items(), config.n_knowledge, config.seed),
        )

    def fingerprints(self) -> dict[str, str]:
        """Provenance hashes of the drawn items."""
        neutral = hashlib.sha256("\x1f".join(self.neutral).encode("utf-8")).hexdigest()[:16]
        return {
            "side_effects_neutral": neutral,
            "side_effects_bbq": fingerprint(self.bbq),
            "side_effects_stereoset": fingerprint(self.stereoset),
            "side_effects_knowledge": fingerprint(self.knowledge),
        }


@dataclass
class CapabilityScores:
    """Per-item capability readouts of one model under one set of interventions.

    ``neutral``: ``[n_neutral]`` mean log-prob per token (nats); ``bbq_correct``: ``[n_bbq]`` 1 if the
    likeliest answer is the correct one; ``stereoset``: per-item option scores (mean log-prob per token);
    ``related``: ``[n_stereoset]`` share of the two related options scored above the unrelated one;
    ``targets``: ``[n_stereoset]`` integer code of each item's target term (for the per-target LMS);
    ``knowledge_correct``: ``[n_knowledge]`` 1 if the right answer scores strictly above its 3 distractors.
    """

    neutral: np.ndarray
    bbq_correct: np.ndarray
    stereoset: list[StereoSetScore]
    related: np.ndarray
    targets: np.ndarray
    knowledge_correct: np.ndarray
    interventions: list[dict[str, Any]]
    fingerprints: dict[str, str]


def knowledge_correct(option_scores: Float[np.ndarray, "n k"]) -> Float[np.ndarray, " n"]:
    """1.0 per row whose first column (the right answer) is strictly above every other column (the
    distractors), else 0.0: a tie with a distractor counts as wrong, so a model that scores every option
    alike is never credited."""
    scores = np.asarray(option_scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise InputError(f"option_scores must be [n items, k >= 2 options], got shape {scores.shape}.")
    return (scores[:, 0] > scores[:, 1:].max(axis=1)).astype(np.float64)


def capability_scores(
    model: HookedTransformer,
    interventions: Sequence[Intervention] = (),
    config: SideEffectConfig = SideEffectConfig(),
    *,
    items: Items | None = None,
    progress: bool = True,
) -> CapabilityScores:
    """Score the neutral, BBQ, StereoSet and knowledge items of ``config`` under ``interventions``."""
    items = items or Items.draw(config)
    batch_size = config.batch_size
    neutral = continuation_logprobs(
        model,
        [""] * len(items.neutral),
        items.neutral,
        interventions=interventions,
        batch_size=batch_size,
        progress="side effects: neutral text" if progress else False,
    ).mean

    answers = answer_bbq(
        model,
        items.bbq,
        prompt_format="context_question",
        interventions=interventions,
        batch_size=batch_size,
        progress="side effects: BBQ" if progress else False,
    )
    bbq_correct = (answers.likelihood_choice == np.array([item.label for item in items.bbq])).astype(np.float64)

    items_ss = items.stereoset
    options = score_stereoset(
        model,
        items_ss,
        interventions=interventions,
        batch_size=batch_size,
        progress="side effects: StereoSet" if progress else False,
    )
    scores = [StereoSetScore(i.id, i.target, i.bias_type, *map(float, row)) for i, row in zip(items_ss, options)]
    related = ((options[:, 0] > options[:, 2]).astype(float) + (options[:, 1] > options[:, 2])) / 2
    codes = {target: i for i, target in enumerate(dict.fromkeys(item.target for item in items_ss))}

    knowledge = shared_prompt_logprobs(
        model,
        None,
        [item.prompt for item in items.knowledge],
        [item.continuations for item in items.knowledge],
        interventions=interventions,
        batch_size=batch_size,
        progress="side effects: knowledge" if progress else False,
    ).mean
    return CapabilityScores(
        neutral=neutral.double().numpy(),
        bbq_correct=bbq_correct,
        stereoset=scores,
        related=related,
        targets=np.array([codes[item.target] for item in items_ss]),
        knowledge_correct=knowledge_correct(knowledge.view(len(items.knowledge), -1).double().numpy()),
        interventions=describe_all(interventions),
        fingerprints=items.fingerprints(),
    )


def _macro_lms(related: np.ndarray, targets: np.ndarray) -> float:
    """100 x mean over target terms of the per-target mean of ``related``."""
    codes = targets.astype(np.int64)
    counts = np.bincount(codes)
    sums = np.bincount(codes, weights=related)
    present = counts > 0
    return float(100.0 * np.mean(sums[present] / counts[present]))


@dataclass(frozen=True)
class SideEffect:
    """One readout without (``baseline``) and with (``intervened``) the interventions, and the paired
    change ``delta`` = intervened - baseline; ``unit`` names the units (higher is better for all)."""

    name: str
    unit: str
    baseline: Estimate
    intervened: Estimate
    delta: Estimate

    @property
    def harmed(self) -> bool:
        """The change's whole interval is below 0."""
        return self.delta.high < 0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "harmed": self.harmed}


@dataclass
class SideEffectReport:
    """Side effects of one set of interventions (``interventions``: their descriptions); ``items``: the per-item
    rows of both runs (:func:`item_rows`; not in ``to_dict``)."""

    interventions: list[dict[str, Any]]
    effects: list[SideEffect]
    details: dict[str, Any] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)

    def harmed(self) -> list[str]:
        """Names of the readouts the interventions significantly worsen."""
        return [effect.name for effect in self.effects if effect.harmed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "interventions": self.interventions,
            "effects": [e.to_dict() for e in self.effects],
            "harmed": self.harmed(),
            "details": self.details,
        }


def item_rows(items: Items, scores: CapabilityScores, condition: str) -> list[dict[str, Any]]:
    """One row per scored item under ``condition``: ``readout`` (neutral, bbq, stereoset, knowledge), ``group``
    (BBQ category, StereoSet bias type, knowledge domain) and ``score`` (neutral: mean log-prob per token,
    nats; bbq, knowledge: 1 correct / 0 not; stereoset: share of the related options above the unrelated)."""
    readouts = [
        ("neutral", [(f"neutral-{i}", text, "") for i, text in enumerate(items.neutral)], scores.neutral),
        ("bbq", [(i.uid, f"{i.context} {i.question}", i.category) for i in items.bbq], scores.bbq_correct),
        ("stereoset", [(i.id, i.context, i.bias_type) for i in items.stereoset], scores.related),
        ("knowledge", [(i.id, i.prompt, i.domain) for i in items.knowledge], scores.knowledge_correct),
    ]
    return [
        {"item_id": item_id, "text": text, "group": group, "condition": condition, "readout": name, "score": value}
        for name, named, values in readouts
        for (item_id, text, group), value in zip(named, np.asarray(values, dtype=float).tolist())
    ]


def report_items(reports: Mapping[str, SideEffectReport]) -> list[dict[str, Any]]:
    """The per-item rows of :func:`side_effects_of`' reports: the shared baseline once, then each named set of
    interventions as its own ``condition``."""
    first = next(iter(reports.values()))
    rows = [row for row in first.items if row["condition"] == "baseline"]
    for name, report in reports.items():
        rows += [row | {"condition": name} for row in report.items if row["condition"] != "baseline"]
    return rows


def _paired(name: str, unit: str, base: np.ndarray, after: np.ndarray, seed: int) -> SideEffect:
    if np.isin(base, (0, 1)).all() and np.isin(after, (0, 1)).all():  # shares correct: Wilson, Bonett-Price
        return SideEffect(name, unit, share(base), share(after), paired_proportion_change(base, after))
    delta = bootstrap_statistic(
        (base, after), lambda b, a, axis=-1: np.mean(a - b, axis=axis), vectorized=True, seed=seed
    )
    return SideEffect(name, unit, bootstrap_mean(base, seed=seed), bootstrap_mean(after, seed=seed), delta)


def compare(baseline: CapabilityScores, intervened: CapabilityScores, seed: int = 0) -> SideEffectReport:
    """The side-effect report of ``intervened`` against ``baseline`` (scored on the same items)."""
    if baseline.fingerprints != intervened.fingerprints:
        raise InputError("The two score sets were computed on different items: use the same SideEffectConfig.")
    targets = baseline.targets
    lms = [bootstrap_statistic((scores.related, targets), _macro_lms, seed=seed) for scores in (baseline, intervened)]
    lms_delta = bootstrap_statistic(
        (baseline.related, intervened.related, targets), lambda b, a, t: _macro_lms(a, t) - _macro_lms(b, t), seed=seed
    )
    official = {
        name: stereoset_scores(scores.stereoset)["overall"]
        for name, scores in (("baseline", baseline), ("intervened", intervened))
    }
    effects = [
        _paired("neutral_logprob", "mean log-prob per token (nats)", baseline.neutral, intervened.neutral, seed),
        _paired(
            "bbq_disambig_accuracy", "share correct (chance 1/3)", baseline.bbq_correct, intervened.bbq_correct, seed
        ),
        SideEffect("stereoset_lms", "LMS (percent, ideal 100)", lms[0], lms[1], lms_delta),
        _paired(
            "knowledge_accuracy",
            "share correct (chance 1/4)",
            baseline.knowledge_correct,
            intervened.knowledge_correct,
            seed,
        ),
    ]
    details = {
        "stereoset": {
            name: {k: o[k] for k in ("lms", "ss", "icat", "n_scored", "n_failed", "n_targets")}
            for name, o in official.items()
        },
        "n": {
            "neutral": len(baseline.neutral),
            "bbq": len(baseline.bbq_correct),
            "stereoset": len(baseline.related),
            "knowledge": len(baseline.knowledge_correct),
        },
        "fingerprints": baseline.fingerprints,
    }
    return SideEffectReport(intervened.interventions, effects, details)


def check_applicable(interventions: Sequence[Intervention], readouts: str = "the side-effect readouts") -> None:
    """Raise if an intervention cannot run on ``readouts`` that score raw text without a chat template: a
    steering vector that starts at the instruction end has no such position there."""
    for intervention in interventions:
        start = intervention.describe().get("start")
        if start is not None:
            raise InputError(
                f"{intervention.describe()['kind']} starts at position {start!r}, but {readouts} "
                "score raw text without a chat template: apply it at every position "
                "(start=None), as the steering study's fluency check does."
            )


def side_effects(
    model: HookedTransformer,
    interventions: Sequence[Intervention | str | Path],
    config: SideEffectConfig = SideEffectConfig(),
    *,
    baseline: CapabilityScores | None = None,
    progress: bool = True,
) -> SideEffectReport:
    """Capability readouts under ``interventions`` (objects or saved files) next to the unintervened
    model's on the same items. Pass ``baseline`` (from :func:`capability_scores` with the same config) to
    skip rescoring the unintervened model."""
    loaded = [saved_interventions.load_intervention(i) if isinstance(i, (str, Path)) else i for i in interventions]
    if not loaded:
        raise InputError("No interventions given: side effects compare an intervention with the baseline.")
    check_applicable(loaded)
    check_interventions(model, loaded)  # before the baseline: a vector of another model fails here
    items = Items.draw(config)
    if baseline is None:
        baseline = capability_scores(model, (), config, items=items, progress=progress)
    intervened = capability_scores(model, loaded, config, items=items, progress=progress)
    report = compare(baseline, intervened, seed=config.seed)
    report.items = item_rows(items, baseline, "baseline") + item_rows(items, intervened, "intervened")
    return report


def side_effects_of(
    model: HookedTransformer,
    named: Mapping[str, Sequence[Intervention]],
    config: SideEffectConfig = SideEffectConfig(),
    *,
    progress: bool = True,
) -> dict[str, SideEffectReport]:
    """:func:`side_effects` of each named set of interventions, against one baseline scored once (every set is
    checked against the model first)."""
    for interventions in named.values():
        check_applicable(interventions)
        check_interventions(model, interventions)
    items = Items.draw(config)
    baseline = capability_scores(model, (), config, items=items, progress=progress)
    return {name: side_effects(model, i, config, baseline=baseline, progress=progress) for name, i in named.items()}
