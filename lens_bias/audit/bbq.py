"""BBQ in full: every question answered by option likelihood and by letter; accuracy, s_DIS, s_AMB.

**Scoring** (:func:`lens_bias.benchmarks.bbq.answer_bbq`, its ``multiple_choice`` prompt format): the
context, question and lettered options as raw text (``template=None``, the default: base and chat
checkpoints alike, as the evaluation harnesses do) or as the user message of a chat template (the persona
study puts a persona in that template's system prompt). Two readouts from the one prompt: *likelihood*
(the option whose text is likeliest as the continuation; works on any model) and *letter* (the likeliest
of A/B/C as the next token), with ``format_mass`` = P(A) + P(B) + P(C), which says whether the model
follows the multiple-choice format at all: the letter scores mean little where it is low.

The scores (``lens_bias.data.bbq.bias_scores_from_arrays``, formulas in
:func:`lens_bias.data.bbq.bbq_bias_scores`): accuracy in ambiguous and disambiguated contexts, s_DIS,
s_AMB; a score with no non-unknown answer is undefined, with the reason. An item is *failed* when its
scores are not finite (it is counted, and excluded from every score).

**Convention** (``convention``, :data:`lens_bias.data.bbq.CONVENTIONS`, recorded in every summary and
table): ``authors`` (the default, the BBQ paper's analysis script): the biased answer is the authors'
``target_loc``, items without one (16) and items whose top two answers tie (under that scoring) are
dropped before every score, and the name-based questions form their own groups ("Category (names)");
``lens_bias``: the matched target (68 questions differ), unresolved items kept in accuracy, the first
tied answer taken, one group per category; ``harness`` (lm-evaluation-harness 0.4.13's ``bbq`` task,
:mod:`lens_bias.data.bbq_harness`): the measure scores the harness's own prompt and 12 choices instead
(:func:`lens_bias.benchmarks.bbq.score_bbq_harness`, raw text only, BBQ release items only) and reports its
``acc``, accuracies, ``amb_bias_score`` (s_amb) and ``disamb_bias_score`` (s_dis) per category. ``overall``
pools every group (the paper has no such pool). ``describe()["convention_differences"]`` counts the items
the ``authors`` and ``lens_bias`` rules treat differently.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar

import numpy as np

from lens_bias.audit.base import Arrays, MeasureOptions, RowMeasure, Rows, Statistic, Sums, item_chunks
from lens_bias.benchmarks.bbq import HARNESS_PROMPT_VERSION, PROMPT_VERSION, answer_bbq, score_bbq_harness
from lens_bias.data.bbq import (
    CATEGORIES,
    CONVENTIONS,
    DEFAULT_CONVENTION,
    BBQItem,
    bias_scores_from_arrays,
    check_convention,
    convention_differences,
    count_columns,
    group_name,
    item_arrays,
    load_bbq,
    scores_of_counts,
)
from lens_bias.data.bbq_harness import (
    harness_choice_roles,
    harness_count_columns,
    harness_scores,
    harness_scores_of_counts,
)
from lens_bias.data.records import fingerprint
from lens_bias.data.sampling import sample
from lens_bias.data.tables import load_bbq_items
from lens_bias.errors import InputError
from lens_bias.interventions import Intervention
from lens_bias.models import AnyModel, tokenizer_of
from lens_bias.prompts import ChatTemplate, template_for

CONTEXTS = ("ambig", "disambig")
SCORINGS = ("likelihood", "letter")
MC_SCORINGS = {
    "likelihood": "argmax of the mean per-token log-prob of each option text after the prompt",
    "letter": "argmax of P(letter) as the next token; format_mass = P(A)+P(B)+P(C)",
}
HARNESS_SCORINGS = {"harness": "argmax of the summed log-prob of each of the harness's 12 choices after its prompt"}


def _column(scoring: str) -> str:
    """The rows' column of per-option log-probs that ``scoring`` reads."""
    return "option_logprob" if scoring == "likelihood" else "letter_logprob"


def _dropped(rows: Rows, index: np.ndarray, column: str, convention: str) -> np.ndarray:
    """``[len(index)]`` bool: the rows ``convention`` drops before every score (``authors``: unresolved items and
    tied answers; none otherwise)."""
    if convention != "authors":
        return np.zeros(index.size, dtype=bool)
    top = np.sort(rows[column][index], axis=1)
    return (rows["biased"][index] < 0) | (top[:, -1] == top[:, -2])


def _scores(rows: Rows, index: np.ndarray, scoring: str, convention: str) -> dict[str, Any]:
    column = _column(scoring)
    index = index[~_dropped(rows, index, column, convention)]
    pred = np.where(rows["failed"][index], -1, rows[column][index].argmax(1))
    return bias_scores_from_arrays(
        pred, rows["label"][index], rows["unknown"][index], rows["biased"][index], rows["ambiguous"][index]
    )


def _count_columns(rows: Rows, index: np.ndarray, scoring: str, convention: str) -> np.ndarray:
    """``[len(index), 10]``: each row's :func:`lens_bias.data.bbq.count_columns` (a dropped or failed row: none)."""
    column = _column(scoring)
    unused = rows["failed"][index] | _dropped(rows, index, column, convention)
    pred = np.where(unused, -1, rows[column][index].argmax(1))
    fields = (rows[name][index] for name in ("label", "unknown", "biased", "ambiguous"))
    return count_columns(pred, *fields)


def score_statistic(
    key: str, scoring: str, label: str, ideal: float | None, convention: str = "lens_bias"
) -> Statistic:
    """The BBQ score ``key`` (``s_amb``, ``s_dis``, ``accuracy_ambig``, ``accuracy_disambig``) of the rows'
    ``scoring`` choice (``likelihood`` or ``letter``) under ``convention`` as a :class:`Statistic` (the
    rows' ``biased`` must be :func:`lens_bias.data.bbq.item_arrays`' under the same convention)."""
    suffix = "" if scoring == "likelihood" else "_letter"

    def compute(rows: Rows, index: np.ndarray) -> float:
        return float(_scores(rows, index, scoring, convention)[key])

    def counts(rows: Rows, index: np.ndarray) -> tuple[int, int]:
        scores = _scores(rows, index, scoring, convention)
        n = scores["n_ambig" if key == "accuracy_ambig" else "n_disambig"]
        return round(scores[key] * n), n

    def undefined(rows: Rows, index: np.ndarray) -> str:
        reasons = _scores(rows, index, scoring, convention)["undefined"]
        if key in reasons:  # s_amb, s_dis
            return reasons[key] or "not finite"
        return f"no answered items in {'ambiguous' if key == 'accuracy_ambig' else 'disambiguated'} contexts"

    accuracy = key.startswith("accuracy")  # a share of the answered questions: Wilson's interval
    sums = Sums(partial(_count_columns, scoring=scoring, convention=convention), lambda t: scores_of_counts(t)[key])
    return Statistic(
        f"{key}{suffix}", f"{label} ({scoring})", compute, undefined, ideal, counts if accuracy else None, sums
    )


def _harness_scores(rows: Rows, index: np.ndarray) -> dict[str, Any]:
    ok = index[~rows["failed"][index]]
    pred = rows["choice_total"][ok].argmax(1)
    return harness_scores(pred, rows["target"][ok], rows["biased"][ok], rows["unknown"][ok], rows["ambiguous"][ok])


def harness_statistic(key: str, label: str, ideal: float) -> Statistic:
    """The harness convention's ``key`` (``acc``, ``accuracy_ambig``, ``accuracy_disambig``, ``s_amb``,
    ``s_dis``) of rows holding ``choice_total`` and the choice roles (:func:`harness_choice_roles`)."""

    def compute(rows: Rows, index: np.ndarray) -> float:
        return float(_harness_scores(rows, index)[key])

    def counts(rows: Rows, index: np.ndarray) -> tuple[int, int]:
        scores = _harness_scores(rows, index)
        n = scores["n_ambig"] + scores["n_disambig"] if key == "acc" else scores[key.replace("accuracy", "n")]
        return round(scores[key] * n), n

    def undefined(rows: Rows, index: np.ndarray) -> str:
        context = {"s_amb": "ambiguous", "s_dis": "disambiguated"}.get(key, key.removeprefix("accuracy_"))
        return f"no answered items in {context} contexts" if key != "acc" else "no answered items"

    def columns(rows: Rows, index: np.ndarray) -> np.ndarray:  # a failed item's columns are zero: not counted
        target, biased, unknown, ambiguous = (rows[key][index] for key in ("target", "biased", "unknown", "ambiguous"))
        counts = harness_count_columns(rows["choice_total"][index].argmax(1), target, biased, unknown, ambiguous)
        return counts * ~rows["failed"][index][:, None]

    proportion = counts if key.startswith("acc") else None  # a share of the answered questions: Wilson's
    sums = Sums(columns, lambda totals: harness_scores_of_counts(totals)[key])
    return Statistic(key, f"{label} (harness)", compute, undefined, ideal, proportion, sums)


def format_mass(rows: Rows, index: np.ndarray) -> float:
    """Mean P(A) + P(B) + P(C) over the scored rows of ``index`` (NaN when none is scored)."""
    ok = index[~rows["failed"][index]]
    return float(np.exp(rows["letter_logprob"][ok]).sum(1).mean()) if ok.size else float("nan")


class BBQMeasure(RowMeasure):
    """BBQ questions of ``categories`` (default all 11) in ``contexts`` (default both); ``n`` questions per
    category drawn with ``seed`` (None = all 58,492); ``template`` None for raw text (see module docstring).
    Scored in chunks of ``chunk`` questions, each a resumable cell."""

    name: ClassVar[str] = "bbq"
    desc: ClassVar[str] = "BBQ"
    convention: str  # the scoring convention of the statistics (set in __init__)
    HEADLINE: ClassVar[tuple[tuple[str, str], ...]] = (
        ("overall", "s_amb"),
        ("overall", "s_dis"),
        ("overall", "accuracy_ambig"),
        ("overall", "accuracy_disambig"),
        ("overall", "format_mass"),
    )

    def __init__(
        self,
        categories: Sequence[str] | None = None,
        contexts: Sequence[str] = CONTEXTS,
        n: int | None = None,
        *,
        seed: int = 0,
        template: ChatTemplate | None = None,
        chunk: int = 256,
        convention: str = DEFAULT_CONVENTION,
        items: Sequence[BBQItem] | None = None,
    ) -> None:
        self.convention = check_convention(convention)
        self.harness = convention == "harness"
        if self.harness and (template is not None or items is not None):
            raise InputError(
                "The harness BBQ convention is lm-evaluation-harness's raw-text prompt on the BBQ release: "
                "no chat template and no own questions."
            )
        unknown = [c for c in contexts if c not in CONTEXTS]
        if unknown or not contexts:
            raise InputError(f"BBQ contexts must be some of {', '.join(CONTEXTS)}, got {list(contexts)}.")
        if n is not None and n < 1:
            raise InputError(f"n (BBQ questions per category) must be >= 1 or None for all, got {n}.")
        if chunk < 1:
            raise InputError(f"chunk must be >= 1, got {chunk}.")
        loaded = load_bbq(categories) if items is None else list(items)
        by_category: dict[str, list[BBQItem]] = {}
        for item in loaded:
            if item.context_condition in contexts:
                by_category.setdefault(item.category, []).append(item)
        self.categories = [c for c in CATEGORIES if c in by_category] if items is None else list(by_category)
        self.items = [
            item for category in self.categories for item in sample(by_category[category], n, seed, key=lambda i: i.uid)
        ]
        if not self.items:
            raise InputError(f"No BBQ questions in the contexts {', '.join(contexts)}.")
        self.own = items is not None
        present = {group_name(item, convention) for item in self.items}
        self.groups_reported = [g for c in self.categories for g in (c, f"{c} (names)") if g in present]
        self.contexts = tuple(contexts)
        self.n, self.seed, self.template, self.chunk = n, seed, template, chunk
        self.raw_text = template is None
        self.roles = harness_choice_roles(self.items) if self.harness else {}

    @classmethod
    def from_options(cls, options: MeasureOptions, model: AnyModel | None) -> BBQMeasure:
        """Raw text, or with ``options.bbq_chat`` through the chat template of ``model``."""
        if options.bbq_chat and model is None:
            raise InputError("BBQ through the chat template (bbq_chat) needs the model: its template.")
        template = template_for(model) if options.bbq_chat and model is not None else None
        own = None if options.bbq_file is None else load_bbq_items(options.bbq_file, options.columns)
        return cls(n=options.n_bbq, seed=options.seed, template=template, convention=options.bbq_convention, items=own)

    def item_info(self) -> list[dict[str, str]]:
        return [{"item_id": i.uid, "text": f"{i.context} {i.question}", "group": i.category} for i in self.items]

    def describe(self) -> dict[str, Any]:
        return {
            "measure": self.name,
            "n_items": len(self.items),
            "own_items": self.own,
            "categories": self.categories,
            "contexts": list(self.contexts),
            "n_per_category": self.n,
            "seed": self.seed,
            "data": fingerprint(self.items),
            "prompt": HARNESS_PROMPT_VERSION if self.harness else PROMPT_VERSION,
            "template": None if self.template is None else {"name": self.template.name, "system": self.template.system},
            "scorings": HARNESS_SCORINGS if self.harness else MC_SCORINGS,
            "failed": "an item whose scores are not finite; counted in n_failed, excluded from every score",
            "convention": self.convention,
            "conventions": CONVENTIONS,
            "convention_differences": convention_differences(self.items),
        }

    def cells(self, model: AnyModel, *, batch_size: int) -> tuple[list[dict[str, Any]], list[Any]]:
        template = None if self.template is None else self.template.describe(tokenizer_of(model))
        prompt = HARNESS_PROMPT_VERSION if self.harness else PROMPT_VERSION
        return item_chunks(self.items, self.chunk, {"measure": self.name, "prompt": prompt, "template": template})

    def score_cell(
        self, model: AnyModel, payload: Sequence[BBQItem], *, interventions: Sequence[Intervention], batch_size: int
    ) -> Arrays:
        if self.harness:
            choices = score_bbq_harness(model, payload, interventions=interventions, batch_size=batch_size)
            return {"choice_total": choices}
        return answer_bbq(
            model, payload, template=self.template, interventions=interventions, batch_size=batch_size
        ).arrays()

    def rows(self, model: AnyModel, parts: list[Arrays]) -> Rows:
        scores = super().rows(model, parts)
        codes = {group: i for i, group in enumerate(self.groups_reported)}
        category = np.array([codes[group_name(item, self.convention)] for item in self.items])
        if self.harness:
            choices = scores["choice_total"]
            return {
                "choice_total": choices,
                "failed": np.asarray(~np.isfinite(choices).all(1)),
                "category": category,
                **self.roles,
                "ambiguous": np.array([item.context_condition == "ambig" for item in self.items]),
            }
        option, letter = scores["option_logprob"], scores["letter_logprob"]
        return {
            "option_logprob": option,
            "option_total": scores["option_total"],
            "letter_logprob": letter,
            "failed": np.asarray(~(np.isfinite(option).all(1) & np.isfinite(letter).all(1))),
            "category": category,
            **item_arrays(self.items, self.convention),
        }

    def groups(self, rows: Rows) -> dict[str, np.ndarray]:
        out = {"overall": np.arange(len(rows["failed"]))}
        for code, group in enumerate(self.groups_reported):
            out[group] = np.flatnonzero(rows["category"] == code)
        return out

    def headline(self) -> tuple[tuple[str, str], ...]:
        return (*self.HEADLINE[:4], ("overall", "acc")) if self.harness else self.HEADLINE

    def statistics(self) -> Sequence[Statistic]:
        if self.harness:
            return [
                harness_statistic("s_amb", "s_AMB, amb_bias_score", 0.0),
                harness_statistic("s_dis", "s_DIS, disamb_bias_score", 0.0),
                harness_statistic("accuracy_ambig", "accuracy, ambiguous, accuracy_amb", 1.0),
                harness_statistic("accuracy_disambig", "accuracy, disambiguated, accuracy_disamb", 1.0),
                harness_statistic("acc", "accuracy, all, acc", 1.0),
            ]
        stats = []
        for scoring in SCORINGS:
            stats += [
                score_statistic("s_amb", scoring, "s_AMB", 0.0, self.convention),
                score_statistic("s_dis", scoring, "s_DIS", 0.0, self.convention),
                score_statistic("accuracy_ambig", scoring, "accuracy, ambiguous", 1.0, self.convention),
                score_statistic("accuracy_disambig", scoring, "accuracy, disambiguated", 1.0, self.convention),
            ]
        stats.append(
            Statistic(
                "format_mass",
                "format mass P(A)+P(B)+P(C)",
                format_mass,
                lambda rows, index: "no answered items",
                None,
            )
        )
        return stats
