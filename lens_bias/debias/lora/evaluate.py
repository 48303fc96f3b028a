"""The rewrites of a (fine-tuned) model: each held-out biased text rewritten greedily
(:func:`lens_bias.forward.generation.generate`) and scored by the word-level measures of
:mod:`lens_bias.debias.rewrites` (content retention, stereotype kept), each a mean over pairs with a bootstrap
interval."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lens_bias.debias.lora.recipe import DEBIAS_INSTRUCTION, debias_request
from lens_bias.debias.rewrites import RewritePair, content_retention, content_words, keeps_stereotype
from lens_bias.errors import InputError
from lens_bias.forward.generation import check_context, generate
from lens_bias.models import AnyModel, tokenizer_of
from lens_bias.prompts import ChatTemplate, chat_batch
from lens_bias.provenance import to_jsonable
from lens_bias.stats import Estimate, bootstrap_mean, share


@dataclass(frozen=True)
class RewriteEval:
    """Rewrites of held-out biased texts and their scores (see :mod:`lens_bias.debias.rewrites`).

    ``retention``: mean content retention of the rewrites (share of the original's content words kept, over the
    pairs whose original has content words); ``stereotype``: share of rewrites that still contain one of the pair's
    ``biased_words`` (over the pairs annotated with them; None when none is); ``unchanged``: share of rewrites equal
    to the biased text (case and surrounding whitespace ignored): a model that only copies keeps all content and
    every stereotype. ``reference_*``: the same scores of the pairs' own ``debiased_text`` (what a rewrite as good
    as the data's scores). Intervals: 95% bootstrap over pairs.
    """

    ids: tuple[str, ...]
    rewrites: tuple[str, ...]
    retention: Estimate
    stereotype: Estimate | None
    unchanged: Estimate
    reference_retention: Estimate
    reference_stereotype: Estimate | None

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))


def _scores(pairs: Sequence[RewritePair], texts: Sequence[str], seed: int) -> tuple[Estimate, Estimate | None]:
    retention = [content_retention(p.biased_text, t, p.biased_words) for p, t in zip(pairs, texts)]
    kept = [keeps_stereotype(t, p.biased_words) for p, t in zip(pairs, texts) if p.biased_words]
    values = [value for value in retention if value is not None]  # not empty: check_rewrite_eval
    return bootstrap_mean(values, seed=seed), share(kept, seed=seed) if kept else None


def check_rewrite_eval(
    model: AnyModel,
    pairs: Sequence[RewritePair],
    *,
    template: ChatTemplate,
    max_new_tokens: int,
    instruction: str = DEBIAS_INSTRUCTION,
) -> None:
    """What :func:`rewrite_eval` of ``pairs`` would refuse, checked without generating (call it before the expensive
    work, e.g. training): :class:`InputError` when there is no pair, when no biased text has a content word
    (:func:`lens_bias.debias.rewrites.content_words`: Latin letters; e.g. a CSV in another script), or when a
    request and ``max_new_tokens`` exceed the model's context."""
    if not pairs:
        raise InputError("rewrite_eval: no pairs to rewrite.")
    if not any(content_words(pair.biased_text, pair.biased_words) for pair in pairs):
        raise InputError(
            f"rewrite_eval: none of the {len(pairs)} biased texts has a content word to keep (content words are "
            "words of two or more Latin letters a-z, not stop words), so content retention cannot be scored; "
            "use English (Latin-script) pairs."
        )
    requests = [debias_request(pair.biased_text, instruction) for pair in pairs]
    check_context(model, chat_batch(tokenizer_of(model), template, requests), max_new_tokens)


def rewrite_eval(
    model: AnyModel,
    pairs: Sequence[RewritePair],
    *,
    template: ChatTemplate,
    max_new_tokens: int = 48,
    instruction: str = DEBIAS_INSTRUCTION,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool = False,
) -> RewriteEval:
    """Rewrite every pair's biased text with ``model`` (greedy, the request ``"{instruction} {text}"`` rendered with
    ``template``, e.g. :attr:`FinetuneResult.template` for both the base and the fine-tuned model) and score the
    rewrites (:class:`RewriteEval`). Refuses what :func:`check_rewrite_eval` refuses, before generating."""
    check_rewrite_eval(model, pairs, template=template, max_new_tokens=max_new_tokens, instruction=instruction)
    generations = generate(
        model,
        template,
        [debias_request(pair.biased_text, instruction) for pair in pairs],
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        seed=seed,
        progress="rewrite" if progress else False,
    )
    rewrites = [generation.text.strip() for generation in generations]
    retention, stereotype = _scores(pairs, rewrites, seed)
    reference_retention, reference_stereotype = _scores(pairs, [pair.debiased_text for pair in pairs], seed)
    unchanged = [r.lower() == p.biased_text.strip().lower() for p, r in zip(pairs, rewrites)]
    return RewriteEval(
        ids=tuple(pair.id for pair in pairs),
        rewrites=tuple(rewrites),
        retention=retention,
        stereotype=stereotype,
        unchanged=share(unchanged, seed=seed),
        reference_retention=reference_retention,
        reference_stereotype=reference_stereotype,
    )


def rewrite_items(pairs: Sequence[RewritePair], evaluations: Mapping[str, RewriteEval]) -> list[dict[str, Any]]:
    """The per-item rows of :func:`rewrite_eval`'s results on ``pairs``: per pair, one row per named evaluation
    (the ``condition``, e.g. ``before`` / ``after`` fine-tuning) and one for the pair's own rewrite (``reference``):
    ``item_id``, ``text`` (the biased text), ``group`` (the pair's target), ``condition``, the ``rewrite``, its
    ``retention`` (share of content words kept; None where the biased text has none), ``stereotype_kept``
    (None where the pair has no ``biased_words``) and ``unchanged`` (the biased text copied). Raises
    :class:`InputError` when an evaluation is of other pairs."""
    ids = tuple(pair.id for pair in pairs)
    wrong = [name for name, evaluation in evaluations.items() if evaluation.ids != ids]
    if wrong:
        raise InputError(f"Rewrites {wrong} are of other pairs than the {len(ids)} given: pass the pairs they rewrote.")
    conditions = {name: evaluation.rewrites for name, evaluation in evaluations.items()}
    conditions["reference"] = tuple(pair.debiased_text for pair in pairs)
    rows = []
    for i, pair in enumerate(pairs):
        for condition, rewrites in conditions.items():
            rewrite = rewrites[i]
            rows.append(
                {
                    "item_id": pair.id,
                    "text": pair.biased_text,
                    "group": pair.target,
                    "condition": condition,
                    "rewrite": rewrite,
                    "retention": content_retention(pair.biased_text, rewrite, pair.biased_words),
                    "stereotype_kept": keeps_stereotype(rewrite, pair.biased_words) if pair.biased_words else None,
                    "unchanged": rewrite.strip().lower() == pair.biased_text.strip().lower(),
                }
            )
    return rows
