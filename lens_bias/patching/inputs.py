"""Prompt pairs tokenized for patching: term-swap pairs with answer tokens (:func:`patching_inputs`) and
minimal sentence pairs with a shared continuation (:func:`minimal_pair_inputs`), the unusable pairs
dropped and counted by reason, each with the metric it is patched by."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from lens_bias.data.gender_swap import PatchingPair
from lens_bias.data.records import ContrastPair
from lens_bias.errors import InputError
from lens_bias.patching.metrics import ContinuationLogProb, LogitDiff, logit_diff_metric
from lens_bias.prompts import PromptBatch, tokenize


@dataclass
class PatchingInputs:
    """Pairs tokenized for :func:`patch`: ``clean``/``corrupted`` batches (row i = ``pairs[i]``, same token
    length in both), the first token of each pair's ``positive``/``negative`` answer (``[n_pairs]``), and
    the ids of the pairs left out, by reason (``"length_mismatch"``: clean and corrupted prompts tokenize
    to different lengths; ``"same_answer_token"``: both answers start with the same token)."""

    pairs: list[PatchingPair]
    clean: PromptBatch
    corrupted: PromptBatch
    positive_ids: Int[Tensor, " n_pairs"]
    negative_ids: Int[Tensor, " n_pairs"]
    dropped: dict[str, list[str]]

    def metric(self, position: str = "last", rows: slice = slice(None)) -> LogitDiff:
        """``logit(positive answer) - logit(negative answer)`` at ``position`` (the last prompt token), for
        the pairs ``rows`` (all by default: call it on batches of those rows, in order)."""
        return logit_diff_metric(self.positive_ids[rows], self.negative_ids[rows], position)


def patching_inputs(tokenizer: Any, pairs: Sequence[PatchingPair], *, add_start: bool = True) -> PatchingInputs:
    """Tokenize clean and corrupted prompts (after the document-start token with ``add_start``), keep the
    pairs whose two prompts have the same token length and whose answers start with different tokens.

    Raises InputError when no pair is left (naming how many were dropped for which reason).
    """
    if not pairs:
        raise InputError("No pairs given.")
    dropped: dict[str, list[str]] = {"length_mismatch": [], "same_answer_token": []}
    kept, positive_ids, negative_ids = [], [], []
    for pair in pairs:
        lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in (pair.clean, pair.corrupted)]
        answers = [tokenizer(text, add_special_tokens=False)["input_ids"][0] for text in (pair.positive, pair.negative)]
        if lengths[0] != lengths[1]:
            dropped["length_mismatch"].append(pair.id)
        elif answers[0] == answers[1]:
            dropped["same_answer_token"].append(pair.id)
        else:
            kept.append(pair)
            positive_ids.append(answers[0])
            negative_ids.append(answers[1])
    if not kept:
        raise InputError(
            f"None of the {len(pairs)} pairs is usable: {len(dropped['length_mismatch'])} have "
            f"clean and corrupted prompts of different token lengths, "
            f"{len(dropped['same_answer_token'])} answers starting with the same token."
        )
    return PatchingInputs(
        pairs=kept,
        clean=tokenize(tokenizer, [pair.clean for pair in kept], add_start=add_start),
        corrupted=tokenize(tokenizer, [pair.corrupted for pair in kept], add_start=add_start),
        positive_ids=torch.tensor(positive_ids),
        negative_ids=torch.tensor(negative_ids),
        dropped=dropped,
    )


@dataclass
class MinimalPairInputs:
    """Minimal sentence pairs tokenized for :func:`patch` (e.g. CrowS-Pairs): ``clean`` = each pair's
    positive sentence (the more stereotyping one), ``corrupted`` = its negative; the two differ in one
    contiguous span of tokens (the swapped term) and share every token after it. ``positions`` has
    ``"continuation"``: the first shared token after the span. The metric (:meth:`metric`) is the
    log-probability of that shared continuation, so clean - corrupted is how much more likely the rest of
    the sentence is after the stereotyped term. ``dropped``: pair ids left out, by reason."""

    pairs: list[ContrastPair]
    clean: PromptBatch
    corrupted: PromptBatch
    dropped: dict[str, list[str]]

    def metric(self, rows: slice = slice(None)) -> ContinuationLogProb:
        """Summed log P of the shared continuation (nats); the same metric for any ``rows`` (it reads the
        continuation's start from the batch)."""
        return ContinuationLogProb("continuation")


def minimal_pair_inputs(tokenizer: Any, pairs: Sequence[ContrastPair], *, add_start: bool = True) -> MinimalPairInputs:
    """Keep the pairs whose two sentences (``prompt + positive`` / ``prompt + negative``) tokenize to the
    same length, differ in one contiguous span of tokens, and share at least one token after it.

    Raises InputError when no pair is left (naming how many were dropped for which reason).
    """
    if not pairs:
        raise InputError("No pairs given.")
    dropped: dict[str, list[str]] = {"length_mismatch": [], "not_one_span": [], "no_shared_continuation": []}
    kept, continuation = [], []
    offset = 1 if add_start else 0
    for pair in pairs:
        a, b = (
            tokenizer(pair.prompt + side, add_special_tokens=False)["input_ids"]
            for side in (pair.positive, pair.negative)
        )
        differ = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        if len(a) != len(b):
            dropped["length_mismatch"].append(pair.id)
        elif not differ or differ[-1] - differ[0] + 1 != len(differ):
            dropped["not_one_span"].append(pair.id)
        elif differ[-1] == len(a) - 1:
            dropped["no_shared_continuation"].append(pair.id)
        else:
            kept.append(pair)
            continuation.append(differ[-1] + 1 + offset)
    if not kept:
        raise InputError(
            f"None of the {len(pairs)} pairs is usable: "
            + ", ".join(f"{len(ids)} {reason.replace('_', ' ')}" for reason, ids in dropped.items())
            + "."
        )
    clean = tokenize(tokenizer, [pair.prompt + pair.positive for pair in kept], add_start=add_start)
    corrupted = tokenize(tokenizer, [pair.prompt + pair.negative for pair in kept], add_start=add_start)
    for batch in (clean, corrupted):
        batch.positions["continuation"] = torch.tensor(continuation)
    return MinimalPairInputs(kept, clean, corrupted, dropped)
