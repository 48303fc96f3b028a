"""Persona BBQ as an audit measure: select the questions, score them under every persona, count the rows.

Definitions (design, counting, formulas, shape, intervals) in :mod:`lens_bias.audit.persona`; the counts
are :func:`lens_bias.audit.persona.counts.count_targets`, the statistics
:class:`lens_bias.audit.persona.statistics.PersonaStatistics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from jaxtyping import Float

from lens_bias.audit.base import Arrays, MeasureOptions, RowMeasure, Rows, Statistic, Summary
from lens_bias.audit.bbq import CONTEXTS
from lens_bias.audit.persona.counts import BAMT_HIGH, DEFAULT_CATEGORIES, TB_HIGH, count_targets
from lens_bias.audit.persona.statistics import PersonaStatistics
from lens_bias.benchmarks.bbq import PROMPT_VERSION, answer_bbq
from lens_bias.data.bbq import BBQItem, item_arrays, load_bbq
from lens_bias.data.personas import (
    BASELINE,
    answer_targets,
    default_personas,
    persona,
    persona_instruction,
    persona_rewordings,
    study_targets,
    target_category,
)
from lens_bias.data.records import fingerprint
from lens_bias.data.sampling import sample
from lens_bias.errors import InputError
from lens_bias.interventions import Intervention
from lens_bias.models import AnyModel, tokenizer_of
from lens_bias.prompts import template_for


class PersonaBBQMeasure(RowMeasure):
    """Persona-conditioned BBQ (module docstring): ``n`` questions per category and context (None = all
    eligible) of ``categories`` in ``contexts``, drawn with ``seed``; the baseline plus ``personas`` (names of
    personas.yaml; None = its default six) x the first ``rewordings`` wordings of the persona instruction.
    Scored in chunks of ``chunk`` questions per condition, each a resumable cell."""

    name: ClassVar[str] = "persona_bbq"
    desc: ClassVar[str] = "persona BBQ"
    HEADLINE: ClassVar[tuple[tuple[str, str], ...]] = (
        ("overall", "mean_abs_TB"),
        ("overall", "mean_BAmt"),
        ("overall", "PB"),
        ("overall", "PB_range"),
        (BASELINE, "mean_abs_TB"),
        (BASELINE, "mean_BAmt"),
        ("overall", "accuracy_ambig"),
        ("overall", "accuracy_disambig"),
        ("overall", "format_mass"),
    )
    convention = "lens_bias"  # BBQ's biased answers by lens_bias.data.bbq's matching (item_arrays' default)

    def __init__(
        self,
        categories: Sequence[str] = DEFAULT_CATEGORIES,
        personas: Sequence[str] | None = None,
        rewordings: int = 3,
        n: int | None = 40,
        *,
        contexts: Sequence[str] = CONTEXTS,
        seed: int = 0,
        chunk: int = 64,
    ) -> None:
        if not categories or len(set(categories)) != len(categories):
            raise InputError(f"categories must be distinct BBQ categories, got {list(categories)}.")
        for category in categories:
            target_category(category)  # raises for a category without targets
        if not contexts or any(c not in CONTEXTS for c in contexts):
            raise InputError(f"contexts must be some of {', '.join(CONTEXTS)}, got {list(contexts)}.")
        names = list(default_personas() if personas is None else personas)
        if not names or len(set(names)) != len(names) or BASELINE in names:
            raise InputError(f"personas must be distinct persona names (not {BASELINE!r}), got {names}.")
        self.personas = [persona(name) for name in names]
        if not 1 <= rewordings <= len(persona_rewordings()):
            raise InputError(f"rewordings must be in 1..{len(persona_rewordings())}, got {rewordings}.")
        if n is not None and n < 1:
            raise InputError(f"n (questions per category and context) must be >= 1 or None for all, got {n}.")
        if chunk < 1:
            raise InputError(f"chunk must be >= 1, got {chunk}.")
        self.categories, self.contexts = tuple(categories), tuple(contexts)
        self.rewordings, self.n, self.seed, self.chunk = rewordings, n, seed, chunk
        self.targets = study_targets(self.categories)
        codes = {target: i for i, target in enumerate(self.targets)}
        by_group: dict[tuple[str, str], list[BBQItem]] = {}
        for item in load_bbq(self.categories):
            tags = answer_targets(item)
            if item.context_condition in self.contexts and sum(t is not None for t in tags) == 2:
                by_group.setdefault((item.category, item.context_condition), []).append(item)
        self.items = [
            item
            for category in self.categories
            for context in self.contexts
            for item in sample(by_group.get((category, context), []), n, seed, key=lambda item: item.uid)
        ]
        if not self.items:
            raise InputError(f"No BBQ questions of {list(self.categories)} in {list(self.contexts)} have two targets.")
        self.answer_target = np.array(
            [[-1 if t is None else codes[t] for t in answer_targets(item)] for item in self.items], dtype=np.int64
        )
        # conditions: (persona code, rewording, system prompt); persona code 0 is the baseline
        self.conditions: list[tuple[int, int, str | None]] = [(0, -1, None)] + [
            (code, k, persona_instruction(p.phrase, k))
            for code, p in enumerate(self.personas, start=1)
            for k in range(rewordings)
        ]
        self.persona_names = [BASELINE, *names]
        self.raw_text = False  # prompts go through the model's chat template
        self._stats = PersonaStatistics(self.persona_names, self.targets, rewordings)
        self._statistics = self._stats.build()

    @classmethod
    def from_options(cls, options: MeasureOptions, model: AnyModel | None) -> PersonaBBQMeasure:
        return cls(
            personas=options.personas, rewordings=options.n_rewordings, n=options.n_persona_bbq, seed=options.seed
        )

    def describe(self) -> dict[str, Any]:
        return {
            "measure": self.name,
            "n_items": len(self.items),
            "n_rows": len(self.items) * len(self.conditions),
            "categories": list(self.categories),
            "contexts": list(self.contexts),
            "n_per_category_context": self.n,
            "seed": self.seed,
            "data": fingerprint(self.items),
            "prompt": PROMPT_VERSION,
            "baseline": "no persona instruction: the chat template's default system prompt",
            "personas": [{"name": p.name, "category": p.category, "phrase": p.phrase} for p in self.personas],
            "rewordings": list(persona_rewordings()[: self.rewordings]),
            "targets": list(self.targets),
            "answer": "the option whose text is likeliest as the start of the reply (mean per-token log-prob)",
            "counting": "a wrong group answer counts negative for its target on a negative question, positive on "
            "a non-negative one; unknown and correct answers count neutral for the targets shown",
            "formulas": "TB=(pos-neg)/shown, BAmt=(pos+neg)/shown, PB=mean_t |TB(p,t)-TB(none,t)| (paired)",
            "shape_thresholds": {"TB_high": TB_HIGH, "BAmt_high": BAMT_HIGH},
            "failed": "a row whose scores are not finite; counted in n_failed, excluded from every count",
        }

    def cells(self, model: AnyModel, *, batch_size: int) -> tuple[list[dict[str, Any]], list[Any]]:
        """One cell per condition x chunk of questions, condition-major; refuses a model whose prompt format
        would drop the persona's system prompt."""
        tokenizer = tokenizer_of(model)
        for system in [system for _, _, system in self.conditions if system is not None]:
            template = template_for(model, system=system)
            if system not in template.render(tokenizer, "{user}")[0]:
                raise InputError(
                    f"This model's prompt format ({template.name!r}) has no system prompt, so the persona would be "
                    "dropped: persona BBQ needs a chat model (Llama 2 chat, or a tokenizer chat template that keeps "
                    "a system message)."
                )
        payloads, keys = [], []
        for _, _, system_prompt in self.conditions:
            template = template_for(model, system=system_prompt)
            for start in range(0, len(self.items), self.chunk):
                chunk = self.items[start : start + self.chunk]
                payloads.append((system_prompt, chunk))
                keys.append(
                    {
                        "measure": self.name,
                        "prompt": PROMPT_VERSION,
                        "template": template.describe(tokenizer),
                        "items": fingerprint(chunk),
                    }
                )
        return keys, payloads

    def score_cell(
        self,
        model: AnyModel,
        payload: tuple[str | None, list[BBQItem]],
        *,
        interventions: Sequence[Intervention],
        batch_size: int,
    ) -> Arrays:
        system, chunk = payload
        template = template_for(model, system=system)
        return answer_bbq(model, chunk, template=template, interventions=interventions, batch_size=batch_size).arrays()

    def rows(self, model: AnyModel, parts: list[Arrays]) -> Rows:
        scores = super().rows(model, parts)
        return {
            **self.rows_from_scores(scores["option_logprob"], scores["letter_logprob"]),
            "option_total": scores["option_total"],
        }

    def rows_from_scores(self, option: Float[np.ndarray, "rows 3"], letter: Float[np.ndarray, "rows 3"]) -> Rows:
        """The row arrays from ``[n_conditions * n_items, 3]`` scores of every (condition, question),
        condition-major (:attr:`conditions` order, then :attr:`items`); the counting of the module docstring."""
        n_items, n_conditions = len(self.items), len(self.conditions)
        if option.shape != (n_items * n_conditions, 3) or letter.shape != option.shape:
            raise InputError(f"expected [{n_items * n_conditions}, 3] scores, got {option.shape} and {letter.shape}.")
        items = {name: np.tile(array, n_conditions) for name, array in item_arrays(self.items).items()}
        failed = ~(np.isfinite(option).all(1) & np.isfinite(letter).all(1))
        pred = np.where(failed, -1, option.argmax(1))
        negative_question = np.tile([item.polarity == "neg" for item in self.items], n_conditions)
        answer_target = np.tile(self.answer_target, (n_conditions, 1))
        shown, positive, negative = count_targets(
            pred, items["label"], items["unknown"], negative_question, answer_target, len(self.targets)
        )
        question = np.tile(np.arange(n_items), n_conditions)
        category = {c: i for i, c in enumerate(self.categories)}
        return {
            "option_logprob": option,
            "letter_logprob": letter,
            "failed": failed,
            "question": question,
            "baseline_row": question,  # the baseline is condition 0: its row of question q is q
            "persona": np.repeat([c[0] for c in self.conditions], n_items),
            "rewording": np.repeat([c[1] for c in self.conditions], n_items),
            "category": np.tile([category[item.category] for item in self.items], n_conditions),
            "negative_question": negative_question,
            "answer_target": answer_target,
            "shown": shown,
            "positive": positive,
            "negative": negative,
            **items,
        }

    def groups(self, rows: Rows) -> dict[str, np.ndarray]:
        out = {"overall": np.flatnonzero(rows["persona"] > 0)}
        for code, name in enumerate(self.persona_names):
            out[name] = np.flatnonzero(rows["persona"] == code)
        return out

    def clusters(self, rows: Rows) -> np.ndarray:
        return rows["question"]

    def statistics(self) -> Sequence[Statistic]:
        return self._statistics

    def summarize(self, rows: Rows, *, seed: int) -> Summary:
        """:meth:`RowMeasure.summarize` plus ``shape`` (the model's place on the TB-BAmt plane) and
        ``n_shown_ambig`` (persona -> target -> times shown in ambiguous contexts, the denominators of TB)."""
        summary = super().summarize(rows, seed=seed)
        summary["shape"] = self._stats.shape(rows, summary)
        shown = self._stats.cells(rows, np.arange(len(rows["failed"])), True)[2]
        summary["n_shown_ambig"] = {
            name: dict(zip(self.targets, shown[code].astype(int).tolist()))
            for code, name in enumerate(self.persona_names)
        }
        return summary
