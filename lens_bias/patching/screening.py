"""Pair screening: which prompt pairs show the behaviour to be patched (clean - corrupted metric at least
``min_gap``), taken in a seeded random order until enough are found."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.data.gender_swap import PatchingPair
from lens_bias.data.records import ContrastPair
from lens_bias.errors import InputError
from lens_bias.interventions import run_chunks
from lens_bias.patching.inputs import MinimalPairInputs, PatchingInputs

Pair = TypeVar("Pair", PatchingPair, ContrastPair)
Inputs = PatchingInputs | MinimalPairInputs


def metric_gaps(model: HookedTransformer, inputs: Inputs, *, batch_size: int = 64) -> Float[Tensor, " n_pairs"]:
    """Clean minus corrupted metric (``inputs.metric()``, unpatched; nats for the logit-difference and
    log-probability metrics) of every pair of ``inputs``, ``[n_pairs]``, in forwards of ``batch_size`` rows."""
    values = []
    for batch in (inputs.clean, inputs.corrupted):
        out, start = [], 0
        for chunk, logits in run_chunks(model, batch, batch_size=batch_size):
            out.append(inputs.metric(rows=slice(start, start + len(chunk)))(logits, chunk).cpu())
            start += len(chunk)
        values.append(torch.cat(out))
    return values[0] - values[1]


@dataclass
class Screening(Generic[Pair]):
    """The pairs kept by :func:`screen_pairs` (sorted by id), how many pairs were screened to find them,
    and how many of those had a gap of at least ``min_gap`` (kept or not: screening goes block by block)."""

    pairs: list[Pair]
    n_screened: int
    n_with_gap: int


def screen_pairs(
    model: HookedTransformer,
    pairs: Sequence[Pair],
    build: Callable[[list[Pair]], Inputs],
    *,
    n_pairs: int | None,
    min_gap: float,
    seed: int = 0,
    batch_size: int = 64,
) -> Screening[Pair]:
    """In a seeded random order (``random.Random(seed).shuffle``), the first ``n_pairs`` pairs (None = all)
    whose clean - corrupted metric (:func:`metric_gaps`) is at least ``min_gap``: the model shows the
    behaviour there, so normalised patching scores are well defined.

    ``build(pairs)`` tokenizes a list of pairs (e.g. ``lambda block: patching_inputs(tokenizer, block)``;
    pairs it drops count as screened, never as kept). Pairs are screened in blocks of ``batch_size``;
    screening stops after the block in which ``n_pairs`` were found. Raises InputError when no screened
    pair has the gap."""
    if n_pairs is not None and n_pairs < 1:
        raise InputError(f"n_pairs must be >= 1 (None = every pair with the gap), got {n_pairs}.")
    order = list(pairs)
    random.Random(seed).shuffle(order)
    chosen: list[Pair] = []
    screened = 0
    for start in range(0, len(order), batch_size):
        block = order[start : start + batch_size]
        inputs = build(block)
        gaps = metric_gaps(model, inputs, batch_size=batch_size)
        screened += len(block)
        gap_of = {id(pair): gap for pair, gap in zip(inputs.pairs, gaps.tolist())}  # the pairs build() kept
        chosen += [pair for pair in block if id(pair) in gap_of and gap_of[id(pair)] >= min_gap]
        if n_pairs is not None and len(chosen) >= n_pairs:
            break
    if not chosen:
        raise InputError(
            f"None of the {screened} screened pairs has a clean - corrupted metric of >= {min_gap}: "
            "lower min_gap or choose other pairs."
        )
    kept = chosen[:n_pairs]
    return Screening(sorted(kept, key=lambda pair: pair.id), screened, len(chosen))
