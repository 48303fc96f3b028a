"""AlignEZ self-alignment: the model's own preference pairs on bias questions, and the directions read from them.

The recipe (Alignment, Simplified: Steering LLMs with Self-Generated Preferences; the public reference code's
``generate_self_data_MULTI_RiC.py``, ``get_embeddings.py`` and ``get_svd.py``), with no human labels:

1. :func:`self_generated_pairs`: for each question (:func:`lens_bias.data.alignez_questions.alignez_questions`)
   the model describes the traits of a helpful (unbiased) and of a harmful (biased) answer, then answers the
   question following each description (prompts in ``alignez_questions.yaml``, rendered with the model's chat
   template). Each pair is checked (:func:`pair_problem`); a pair that is not well formed falls back to the
   question's template answers (:func:`lens_bias.data.alignez_questions.template_pair`), and the record says so.
   :class:`PreferenceData` is saved as a :class:`lens_bias.provenance.Result` and reused by
   :func:`load_or_generate` while the model, the settings and the questions are the same.
2. :func:`alignez_subspace`: the paired activations of (question, helpful answer) vs (question, harmful answer)
   per layer, then the SVD subspace of their differences (:func:`lens_bias.steering.svd_subspace`) or the CCS
   direction (:func:`lens_bias.steering.ccs.ccs_subspace`).

Where this differs from the reference code: it prompts a chat model through its chat template (the reference
writes ``Human: ... Assistant:`` text); it reads the residual stream after each block (``resid_post``) at the
last token of the answer, where the reference reads the MLP output at the last token; the reference drops pairs
whose MLP outputs have cosine > 0.8 before the SVD, which here is ``max_pair_cosine`` (default off: residual
activations of paired answers share most of their direction, see :func:`lens_bias.steering.svd_subspace`); it
decodes greedily by default (the reference samples), and it checks the pairs and falls back to templates (the
reference keeps every generation, with a default description when the model gave none, as here).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from lens_bias.cache import cached, record_path
from lens_bias.data.alignez_questions import (
    AlignEZQuestion,
    alignez_prompts,
    alignez_questions,
    alignez_templates,
    template_pair,
)
from lens_bias.data.records import ContrastPair, fingerprint
from lens_bias.directions import Subspace
from lens_bias.errors import InputError
from lens_bias.forward.generation import generate
from lens_bias.metrics.responses import is_degenerate, is_refusal
from lens_bias.models import AnyModel, model_record, tokenizer_of
from lens_bias.prompts import ChatTemplate, template_for
from lens_bias.provenance import Result, collect_provenance, to_jsonable
from lens_bias.steering import build_subspace, contrast_activations, subspace_config, subspace_method

__all__ = [
    "PREFERENCE_RESULT",
    "PreferenceData",
    "PreferenceRecord",
    "alignez_questions",
    "alignez_subspace",
    "load_or_generate",
    "pair_problem",
    "self_generated_pairs",
]

PREFERENCE_RESULT = "alignez-preferences"
"""``name`` of the saved :class:`lens_bias.provenance.Result` of :class:`PreferenceData`."""
Source = Literal["generated", "template"]
MIN_WORDS = 3
"""An answer with fewer words is empty."""
MAX_JACCARD = 0.8
"""Two texts whose word sets have Jaccard similarity above this are near-identical."""
_WORD = re.compile(r"\w+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def jaccard(a: str, b: str) -> float:
    """Jaccard similarity of the lower-cased word sets of ``a`` and ``b`` (1.0 when both have no words)."""
    x, y = _words(a), _words(b)
    return len(x & y) / len(x | y) if x | y else 1.0


def pair_problem(
    question: str, helpful_description: str, harmful_description: str, helpful: str, harmful: str
) -> str | None:
    """Why a generated pair is not usable, or None when it is well formed. Checked in this order, the first
    failing rule is returned (its reason starts with the rule's name):

    * ``empty``: an answer has fewer than :data:`MIN_WORDS` words;
    * ``degenerate``: an answer loops or is broken (:func:`lens_bias.metrics.responses.is_degenerate`: a
      character repeated 20+ times, or with 12+ words fewer than half of the word trigrams distinct);
    * ``near-identical``: the two answers' word sets have Jaccard similarity > :data:`MAX_JACCARD`;
    * ``echo``: an answer's word set has Jaccard > :data:`MAX_JACCARD` with its own description or with the
      question, or the answer is contained in its description (it repeats the prompt instead of answering);
    * ``refusal``: the harmful answer refuses (:func:`lens_bias.metrics.responses.is_refusal`), so the pair
      contrasts refusing with answering, not biased with unbiased.
    """
    sides = (("helpful", helpful, helpful_description), ("harmful", harmful, harmful_description))
    for side, answer, _ in sides:
        n_words = len(_WORD.findall(answer))
        if n_words < MIN_WORDS:
            return f"empty: the {side} answer has {n_words} word(s) (< {MIN_WORDS})"
    for side, answer, _ in sides:
        if is_degenerate(answer):
            return f"degenerate: the {side} answer repeats itself or is broken"
    similarity = jaccard(helpful, harmful)
    if similarity > MAX_JACCARD:
        return f"near-identical: the answers' word Jaccard is {similarity:.2f} (> {MAX_JACCARD})"
    for side, answer, description in sides:
        for what, text in (("its description", description), ("the question", question)):
            similarity = jaccard(answer, text)
            if similarity > MAX_JACCARD:
                return f"echo: the {side} answer repeats {what} (word Jaccard {similarity:.2f} > {MAX_JACCARD})"
        if answer.strip().lower() in description.lower():
            return f"echo: the {side} answer is contained in its description"
    if is_refusal(harmful):
        return "refusal: the harmful answer refuses"
    return None


@dataclass(frozen=True)
class PreferenceRecord:
    """One question's self-generated pair. ``generated_*`` are the model's answers as generated; ``helpful``
    / ``harmful`` the pair used (the generated one when ``well_formed``, else the templates: ``source``
    ``"template"``); ``reason`` says why the generated pair was not well formed (None when it was)."""

    question: AlignEZQuestion
    helpful_description: str
    harmful_description: str
    generated_helpful: str
    generated_harmful: str
    well_formed: bool
    reason: str | None
    source: Source
    helpful: str
    harmful: str

    def pair(self) -> ContrastPair:
        """The contrast pair: the question as prompt, the helpful answer positive, the harmful one negative."""
        return ContrastPair(
            id=f"alignez-{self.question.id}",
            bias_type=self.question.bias_type,
            target=self.question.target,
            prompt=self.question.text,
            positive=self.helpful,
            negative=self.harmful,
            source=f"alignez-{self.source}",
        )

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> PreferenceRecord:
        """Inverse of ``dataclasses.asdict`` (as saved by :meth:`PreferenceData.save`)."""
        return cls(**{**row, "question": AlignEZQuestion(**row["question"])})


@dataclass
class PreferenceData:
    """Self-generated preference pairs, one :class:`PreferenceRecord` per question, with the ``settings``
    that made them (the reuse key of :func:`load_or_generate`: model record, question fingerprint, template,
    prompts, generation settings; JSON-ready) and their ``provenance``."""

    records: tuple[PreferenceRecord, ...]
    settings: dict[str, Any]
    provenance: dict[str, Any]

    @property
    def well_formed_share(self) -> float:
        """Share of questions whose generated pair was well formed (NaN for no records)."""
        return sum(r.well_formed for r in self.records) / len(self.records) if self.records else float("nan")

    def pairs(self, *, include_templates: bool = True) -> list[ContrastPair]:
        """The contrast pairs in question order; ``include_templates=False`` keeps only generated pairs."""
        return [r.pair() for r in self.records if include_templates or r.source == "generated"]

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (a ``.json`` file; the suffix is added when missing) atomically, as a
        :class:`lens_bias.provenance.Result` named :data:`PREFERENCE_RESULT`. Returns the JSON path."""
        values = {
            "records": [asdict(r) for r in self.records],
            "n_questions": len(self.records),
            "well_formed_share": self.well_formed_share,
        }
        return Result(PREFERENCE_RESULT, values, self.settings, self.provenance).save(_json_path(path))

    @classmethod
    def load(cls, path: str | Path) -> PreferenceData:
        """Read what :meth:`save` wrote; InputError for another kind of result."""
        result = Result.load(_json_path(path))
        if result.name != PREFERENCE_RESULT:
            raise InputError(
                f"{path} holds a {result.name!r} result, not AlignEZ preference data ({PREFERENCE_RESULT!r})."
            )
        records = tuple(PreferenceRecord.from_dict(row) for row in result.values["records"])
        return cls(records, result.config, result.provenance)


def _json_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.suffix == ".json" else Path(f"{path}.json")


def _check_questions(questions: Sequence[AlignEZQuestion]) -> list[AlignEZQuestion]:
    questions = list(questions)
    if not questions:
        raise InputError("questions is empty: pass lens_bias.data.alignez_questions.alignez_questions() or a subset.")
    wrong = [type(q).__name__ for q in questions if not isinstance(q, AlignEZQuestion)]
    if wrong:
        raise InputError(f"questions must be AlignEZQuestion records, got {', '.join(sorted(set(wrong)))}.")
    ids = [q.id for q in questions]
    if len(set(ids)) != len(ids):
        raise InputError("questions has duplicate ids: pass each question once.")
    return questions


def _settings(
    model: AnyModel,
    questions: Sequence[AlignEZQuestion],
    template: ChatTemplate,
    max_new_tokens: int,
    description_tokens: int,
    temperature: float,
    seed: int,
) -> dict[str, Any]:
    """The reuse key: everything that decides the generated data, JSON-ready."""
    return to_jsonable(
        {
            "model": model_record(model).to_dict(),
            "questions": fingerprint(questions),
            "prompts": fingerprint([alignez_prompts()]),
            "templates": fingerprint(list(alignez_templates().values())),
            "template": template.describe(tokenizer_of(model)),
            "max_new_tokens": max_new_tokens,
            "description_tokens": description_tokens,
            "temperature": temperature,
            "seed": seed,
            "rules": {"min_words": MIN_WORDS, "max_jaccard": MAX_JACCARD},
        }
    )


def self_generated_pairs(
    model: AnyModel,
    questions: Sequence[AlignEZQuestion],
    *,
    template: ChatTemplate | None = None,
    max_new_tokens: int = 96,
    description_tokens: int = 48,
    temperature: float = 0.0,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
) -> PreferenceData:
    """The model's own helpful/harmful answer pairs to ``questions``, with the template fallback.

    Step 1: ``2 x len(questions)`` descriptions (at most ``description_tokens`` tokens each; an empty one is
    replaced by the default description of ``alignez_questions.yaml``). Step 2: ``2 x len(questions)`` answers
    following them (at most ``max_new_tokens`` tokens). Both through :func:`lens_bias.forward.generation.generate` with
    ``template`` (default :func:`lens_bias.prompts.template_for`), greedy at ``temperature=0`` (else sampled,
    seeded by ``seed``), ``batch_size`` prompts per forward. Each pair is checked by :func:`pair_problem`.
    """
    questions = _check_questions(questions)
    if max_new_tokens < 1 or description_tokens < 1:
        raise InputError(
            f"max_new_tokens and description_tokens must be >= 1, got {max_new_tokens}, {description_tokens}."
        )
    if temperature < 0:
        raise InputError(f"temperature must be >= 0 (0 = greedy), got {temperature}.")
    template = template or template_for(model)
    prompts = alignez_prompts()
    settings = _settings(model, questions, template, max_new_tokens, description_tokens, temperature, seed)

    def run(users: list[str], tokens: int, label: str) -> list[str]:
        generations = generate(
            model,
            template,
            users,
            max_new_tokens=tokens,
            temperature=temperature,
            batch_size=batch_size,
            seed=seed,
            progress=f"alignez {label}" if progress else False,
        )
        return [g.text.strip() for g in generations]

    describe = [
        kind.format(question=q.text, group=q.group)
        for q in questions
        for kind in (prompts.describe_helpful, prompts.describe_harmful)
    ]
    described = run(describe, description_tokens, "descriptions")
    defaults = (prompts.default_helpful_description, prompts.default_harmful_description)
    descriptions = [
        text if _WORD.search(text) else defaults[i % 2].replace("{group}", questions[i // 2].group)
        for i, text in enumerate(described)
    ]
    answer = [
        kind.format(description=descriptions[2 * i + k], question=q.text)
        for i, q in enumerate(questions)
        for k, kind in enumerate((prompts.answer_helpful, prompts.answer_harmful))
    ]
    answers = run(answer, max_new_tokens, "answers")
    records = []
    for i, q in enumerate(questions):
        helpful_description, harmful_description = descriptions[2 * i], descriptions[2 * i + 1]
        helpful, harmful = answers[2 * i], answers[2 * i + 1]
        reason = pair_problem(q.text, helpful_description, harmful_description, helpful, harmful)
        used = (helpful, harmful) if reason is None else template_pair(q)
        records.append(
            PreferenceRecord(
                question=q,
                helpful_description=helpful_description,
                harmful_description=harmful_description,
                generated_helpful=helpful,
                generated_harmful=harmful,
                well_formed=reason is None,
                reason=reason,
                source="generated" if reason is None else "template",
                helpful=used[0],
                harmful=used[1],
            )
        )
    provenance = collect_provenance(
        model_record=settings["model"], data={"alignez_questions": settings["questions"]}, seed=seed
    )
    return PreferenceData(tuple(records), settings, provenance)


def load_or_generate(
    model: AnyModel,
    questions: Sequence[AlignEZQuestion],
    path: str | Path,
    *,
    template: ChatTemplate | None = None,
    max_new_tokens: int = 96,
    description_tokens: int = 48,
    temperature: float = 0.0,
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
) -> PreferenceData:
    """The preference data saved at ``path`` when its settings (model record, question fingerprint, prompts,
    templates, chat template, generation settings) equal this call's (:func:`lens_bias.cache.cached`: other
    settings or a damaged file are a warning and a regeneration); otherwise :func:`self_generated_pairs` with
    these arguments, saved to ``path`` (replacing a stale file). A file at ``path`` that is not AlignEZ
    preference data raises InputError (it is never overwritten)."""
    questions = _check_questions(questions)
    template = template or template_for(model)
    path = _json_path(path)
    if path.is_file() and not record_path(path).exists():  # not written here: refuse another kind of file
        with suppress(OSError, json.JSONDecodeError, KeyError, TypeError):  # damaged: warned and regenerated
            PreferenceData.load(path)
    settings = _settings(model, questions, template, max_new_tokens, description_tokens, temperature, seed)

    def generate_to(staging: Path) -> None:
        data = self_generated_pairs(
            model,
            questions,
            template=template,
            max_new_tokens=max_new_tokens,
            description_tokens=description_tokens,
            temperature=temperature,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
        )
        os.replace(data.save(staging), staging)  # save() names the file {staging}.json

    return cached(path, settings, generate_to, PreferenceData.load, what="AlignEZ preference data").value


def alignez_subspace(
    model: AnyModel,
    data: PreferenceData,
    layers: Sequence[int],
    *,
    method: str = "svd",
    template: ChatTemplate | None = None,
    variance: float = 0.9,
    max_pair_cosine: float | None = None,
    include_templates: bool = True,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
) -> Subspace:
    """Per-layer directions of the helpful-minus-harmful contrast of ``data``'s pairs.

    Activations (:func:`lens_bias.steering.contrast_activations`): the question as the user message (through
    ``template``, default :func:`lens_bias.prompts.template_for`) and each answer as the start of the reply,
    read at ``resid_post`` at the answer's last token, ``[n_pairs, len(layers), d_model]`` per side.
    ``method``: a registered subspace method (:mod:`lens_bias.steering.methods`), given the settings its config
    has: ``"svd"``: :func:`lens_bias.steering.svd_subspace` (components up to ``variance`` of the variance of the
    paired differences; ``max_pair_cosine`` drops near-identical pairs first); ``"ccs"``:
    :func:`lens_bias.steering.ccs.ccs_subspace` (seeded by ``seed``; ``variance`` and ``max_pair_cosine`` do
    not apply). ``include_templates=False`` uses only the generated (well-formed) pairs.
    """
    known = {f.name for f in fields(subspace_method(method).config)}  # an unknown method: InputError naming them
    offered = {"variance": variance, "max_pair_cosine": max_pair_cosine, "seed": seed}
    config = subspace_config(method, **{name: value for name, value in offered.items() if name in known})
    if not 0.0 < variance <= 1.0:
        raise InputError(f"variance must be in (0, 1], got {variance}.")
    if method == "ccs" and max_pair_cosine is not None:
        raise InputError("max_pair_cosine filters pairs for method='svd' only; pass None with method='ccs'.")
    pairs = data.pairs(include_templates=include_templates)
    if not pairs:
        raise InputError(
            f"No pairs to read directions from: {len(data.records)} question(s), none with a well-formed generated "
            "pair" + ("" if include_templates else " (include_templates=False)") + "; generate more or allow templates."
        )
    activations = contrast_activations(
        model,
        pairs,
        layers,
        template=template or template_for(model),
        readout="last",
        batch_size=batch_size,
        progress="alignez" if progress else False,
    )
    subspace = build_subspace(activations, method, config)
    subspace.provenance = {
        **subspace.provenance,
        "method": f"alignez-{method}",
        "n_pairs": len(pairs),
        "n_generated": sum(pair.source == "alignez-generated" for pair in pairs),
        "include_templates": include_templates,
        "preferences": data.settings,
        "pairs_fingerprint": fingerprint(pairs),
        "model": model_record(model).to_dict(),
        "seed": seed,
    }
    return subspace
