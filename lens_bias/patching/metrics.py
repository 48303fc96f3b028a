"""Patching metrics: what a (patched) forward is scored by, one value per prompt pair.

A :data:`Metric` is any ``metric(logits, batch) -> [batch]``; patching calls it with the logits of all
pairs at once, in the order of ``batch``, so per-pair answer ids line up with the rows. A
:class:`PositionMetric` reads the logits of one named position only, and declares it: :func:`patch
<lens_bias.patching.patch>` then runs the final norm and unembedding on that position alone (the
unembedding of every position costs as much as ~8 layers of SmolLM2). Every logit-difference metric here
is a :class:`PositionMetric`:

* :func:`logit_diff_metric` (:class:`LogitDiff`): ``logit[positive] - logit[negative]``, one id pair for
  all rows or one per row;
* :func:`set_logit_diff_metric` (:class:`SetLogitDiff`): ``mean logit[positive set] - mean logit[negative
  set]``, the sets shared by all rows (BiasScope's attribute vs neutral words).

:class:`ContinuationLogProb` (the summed log-probability of a sentence's continuation) reads every
position: a generic :data:`Metric`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeGuard

import torch
from jaxtyping import Float, Int
from torch import Tensor

from lens_bias.errors import InputError
from lens_bias.forward.readouts import span_logprob_sum
from lens_bias.prompts import PromptBatch

Metric = Callable[[Float[Tensor, "batch pos d_vocab"], PromptBatch], Float[Tensor, " batch"]]


class PositionMetric(Protocol):
    """A :data:`Metric` that reads the logits of one named position only. :func:`patch
    <lens_bias.patching.patch>` then unembeds just that position of each patched run and calls
    ``at_position``; ``metric(logits, batch)`` must equal
    ``metric.at_position(logits[rows, batch.positions[metric.position]], batch)``."""

    position: str

    def __call__(self, logits: Float[Tensor, "batch pos d_vocab"], batch: PromptBatch) -> Float[Tensor, " batch"]: ...

    def at_position(self, logits: Float[Tensor, "batch d_vocab"], batch: PromptBatch) -> Float[Tensor, " batch"]: ...


def reads_one_position(metric: Metric) -> TypeGuard[PositionMetric]:
    """Whether ``metric`` implements :class:`PositionMetric` (names its position and has ``at_position``)."""
    return isinstance(getattr(metric, "position", None), str) and callable(getattr(metric, "at_position", None))


class _AtPosition(ABC):
    """The ``__call__`` of a :class:`PositionMetric`, shared: read ``batch.positions[self.position]`` of
    every row and hand those logits to ``at_position``."""

    position: str

    def __call__(self, logits: Float[Tensor, "batch pos d_vocab"], batch: PromptBatch) -> Float[Tensor, " batch"]:
        if self.position not in batch.positions:
            raise InputError(f"Position {self.position!r} is not in the batch (has {sorted(batch.positions)}).")
        rows = torch.arange(logits.shape[0], device=logits.device)
        return self.at_position(logits[rows, batch.positions[self.position].to(logits.device)], batch)

    @abstractmethod
    def at_position(self, logits: Float[Tensor, "batch d_vocab"], batch: PromptBatch) -> Float[Tensor, " batch"]:
        """The metric from the logits at the position, ``[batch, d_vocab]``."""


@dataclass(frozen=True)
class LogitDiff(_AtPosition):
    """``logit[positive] - logit[negative]`` per row at ``batch.positions[position]`` (a
    :class:`PositionMetric`); ``positive``/``negative`` hold one id for all rows (0-d) or one per row."""

    positive: Int[Tensor, "..."]
    negative: Int[Tensor, "..."]
    position: str = "last"

    def at_position(self, logits: Float[Tensor, "batch d_vocab"], batch: PromptBatch) -> Float[Tensor, " batch"]:
        n = logits.shape[0]
        if self.positive.ndim == 1 and len(self.positive) != n:
            raise InputError(
                f"The metric has {len(self.positive)} answer-id pairs but was called on {n} "
                "rows: give one id pair per prompt pair (or a single id pair for all)."
            )
        rows = torch.arange(n, device=logits.device)
        logits = logits.float()
        return (
            logits[rows, self.positive.to(logits.device).expand(n)]
            - logits[rows, self.negative.to(logits.device).expand(n)]
        )


def logit_diff_metric(
    positive_ids: int | Sequence[int] | Tensor,
    negative_ids: int | Sequence[int] | Tensor,
    position: str = "last",
) -> LogitDiff:
    """``logit[positive_id] - logit[negative_id]`` per row, read at ``batch.positions[position]``.

    Ids are one token id for every row, or one per row (per pair: the rows of the batch the metric is
    called with). Returns a :class:`LogitDiff` giving ``[batch]`` float32 logit differences (the
    log-odds between the two tokens, in nats).
    """
    positive = torch.as_tensor(positive_ids, dtype=torch.long)
    negative = torch.as_tensor(negative_ids, dtype=torch.long)
    if positive.ndim > 1 or negative.ndim > 1 or positive.shape != negative.shape:
        raise InputError(
            f"positive_ids and negative_ids must be two ints or two 1-D sequences of equal "
            f"length, got shapes {tuple(positive.shape)} and {tuple(negative.shape)}."
        )
    return LogitDiff(positive, negative, position)


@dataclass(frozen=True)
class SetLogitDiff(_AtPosition):
    """``mean logit[positive] - mean logit[negative]`` per row at ``batch.positions[position]`` (a
    :class:`PositionMetric`): :class:`LogitDiff` for *sets* of answer tokens shared by all rows
    (``positive``: ``[n_positive]`` ids, ``negative``: ``[n_negative]``)."""

    positive: Int[Tensor, " n_positive"]
    negative: Int[Tensor, " n_negative"]
    position: str = "last"

    def at_position(self, logits: Float[Tensor, "batch d_vocab"], batch: PromptBatch) -> Float[Tensor, " batch"]:
        logits = logits.float()
        return logits[:, self.positive.to(logits.device)].mean(-1) - logits[:, self.negative.to(logits.device)].mean(-1)


def set_logit_diff_metric(
    positive_ids: Sequence[int] | Tensor, negative_ids: Sequence[int] | Tensor, position: str = "last"
) -> SetLogitDiff:
    """``mean logit[positive_ids] - mean logit[negative_ids]`` per row at ``batch.positions[position]``
    (nats): :func:`logit_diff_metric` for *sets* of answer tokens shared by all rows. Returns a
    :class:`SetLogitDiff` giving ``[batch]`` float32 values.

    Raises InputError when a set is empty or not 1-D, or when the two sets share a token."""
    positive, negative = torch.as_tensor(positive_ids).long(), torch.as_tensor(negative_ids).long()
    if positive.ndim != 1 or negative.ndim != 1 or not len(positive) or not len(negative):
        raise InputError("positive_ids and negative_ids must be non-empty 1-D id lists.")
    if set(positive.tolist()) & set(negative.tolist()):
        raise InputError(f"The answer sets share tokens {set(positive.tolist()) & set(negative.tolist())}.")
    return SetLogitDiff(positive, negative, position)


@dataclass(frozen=True)
class ContinuationLogProb:
    """Per row, the summed log-probability (nats) of the tokens from ``batch.positions[start]`` to the last
    real token, each given the tokens before it: how likely the rest of a sentence is after a swapped
    term (minimal pairs, :func:`lens_bias.patching.minimal_pair_inputs`). A generic :data:`Metric` (reads
    every position); the same sum as :func:`lens_bias.forward.readouts.batch_logprobs`."""

    start: str = "continuation"

    def __call__(self, logits: Float[Tensor, "batch pos d_vocab"], batch: PromptBatch) -> Float[Tensor, " batch"]:
        if self.start not in batch.positions:
            raise InputError(f"Position {self.start!r} is not in the batch (has {sorted(batch.positions)}).")
        total, _ = span_logprob_sum(logits, batch.tokens, batch.positions[self.start], batch.lengths - 1)
        return total
