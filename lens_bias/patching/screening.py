"""Pair screening: which prompt pairs show the behaviour to be patched (clean - corrupted metric at least
``min_gap``), taken in a seeded random order until enough are found; the two pair sets of the patching
study selected this way (:func:`select_gender_swap_pairs`, :func:`select_crows_pairs`)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.data import crows_pairs_contrast, load_crows_pairs
from lens_bias.data.gender_swap import PatchingPair, definitional_pairs, gender_swap_pairs
from lens_bias.data.records import ContrastPair
from lens_bias.errors import InputError
from lens_bias.interventions import run_chunks
from lens_bias.patching.inputs import MinimalPairInputs, PatchingInputs, minimal_pair_inputs, patching_inputs

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


def select_gender_swap_pairs(
    model: HookedTransformer,
    group: str,
    *,
    n_pairs: int | None,
    min_gap: float,
    seed: int = 0,
    batch_size: int = 64,
    definitional: bool = False,
) -> tuple[PatchingInputs, dict[str, int | float]]:
    """Gender-swap pairs of one template (:func:`lens_bias.data.gender_swap.gender_swap_pairs`; with
    ``definitional``, its control :func:`~lens_bias.data.gender_swap.definitional_pairs`) ready to
    patch: same clean/corrupted token length; of the most common length (positions line up across pairs);
    screened by :func:`screen_pairs` until ``n_pairs`` (None = all) have a clean - corrupted metric of at
    least ``min_gap`` nats. Returns the inputs and the counts of every step (candidates, dropped, kept)."""
    candidates = (definitional_pairs if definitional else gender_swap_pairs)(groups=[group])
    usable = patching_inputs(model.tokenizer, candidates)
    lengths = usable.clean.lengths.tolist()
    modal = Counter(lengths).most_common(1)[0][0]
    aligned = [pair for pair, length in zip(usable.pairs, lengths) if length == modal]
    counts = {
        "candidates": len(candidates),
        "dropped_length_mismatch": len(usable.dropped["length_mismatch"]),
        "dropped_same_answer_token": len(usable.dropped["same_answer_token"]),
        "aligned_length_tokens": modal,
        "dropped_other_length": len(usable.pairs) - len(aligned),
        "aligned": len(aligned),
    }
    build = partial(patching_inputs, model.tokenizer)
    return _screened(model, aligned, build, counts, n_pairs=n_pairs, min_gap=min_gap, seed=seed, batch_size=batch_size)


def select_crows_pairs(
    model: HookedTransformer,
    bias_types: Sequence[str] | None,
    *,
    n_pairs: int | None,
    min_gap: float,
    seed: int = 0,
    batch_size: int = 64,
    pairs: Sequence[ContrastPair] | None = None,
) -> tuple[MinimalPairInputs, dict[str, int | float]]:
    """CrowS-Pairs minimal pairs of ``bias_types`` (None = all), or your own contrast ``pairs``: clean = the
    more stereotyping sentence (``prompt + positive``), kept where the two differ in one span of tokens of the
    same length and share the rest of the sentence after it (:func:`minimal_pair_inputs`), screened by
    :func:`screen_pairs`. Returns the inputs and the counts of every step."""
    candidates = crows_pairs_contrast(load_crows_pairs(bias_types)) if pairs is None else list(pairs)
    usable = minimal_pair_inputs(model.tokenizer, candidates)
    counts = {
        "candidates": len(candidates),
        **{f"dropped_{k}": len(v) for k, v in usable.dropped.items()},
        "usable": len(usable.pairs),
    }
    build = partial(minimal_pair_inputs, model.tokenizer)
    return _screened(
        model, usable.pairs, build, counts, n_pairs=n_pairs, min_gap=min_gap, seed=seed, batch_size=batch_size
    )


def _screened(
    model: HookedTransformer,
    pairs: Sequence[Pair],
    build: Callable[[list[Pair]], Inputs],
    counts: Mapping[str, int | float],
    **screening: Any,
) -> tuple[Any, dict[str, int | float]]:
    """:func:`screen_pairs` of ``pairs`` (keyword settings ``screening``), the kept pairs built, and
    ``counts`` with the screening's own counts added."""
    screened = screen_pairs(model, pairs, build, **screening)
    counts = {
        **counts,
        "screened": screened.n_screened,
        "screened_with_gap": screened.n_with_gap,
        "min_gap_nats": screening["min_gap"],
        "used": len(screened.pairs),
    }
    return build(screened.pairs), counts


#: The pair sets of the patching study, by name.
PAIR_SETS = ("gender_swap", "crows_pairs")


def select_pairs(
    model: HookedTransformer,
    pair_set: str,
    *,
    group: str = "occupation-t0",
    crows_types: Sequence[str] | None = None,
    n_pairs: int | None,
    min_gap: float,
    seed: int = 0,
    batch_size: int = 64,
    pairs: Sequence[ContrastPair] | None = None,
) -> tuple[PatchingInputs | MinimalPairInputs, dict[str, int | float]]:
    """The pairs of one of :data:`PAIR_SETS`: ``gender_swap`` (the template ``group``,
    :func:`select_gender_swap_pairs`) or ``crows_pairs`` (the bias types ``crows_types``, None = all,
    :func:`select_crows_pairs`), screened for ``n_pairs`` with a gap of ``min_gap`` nats; your own contrast
    ``pairs`` (any ``pair_set``) go the ``crows_pairs`` way, as minimal sentence pairs."""
    if pairs is not None:
        return select_crows_pairs(
            model, None, n_pairs=n_pairs, min_gap=min_gap, seed=seed, batch_size=batch_size, pairs=pairs
        )
    if pair_set == "gender_swap":
        return select_gender_swap_pairs(
            model, group, n_pairs=n_pairs, min_gap=min_gap, seed=seed, batch_size=batch_size
        )
    if pair_set == "crows_pairs":
        return select_crows_pairs(
            model, crows_types, n_pairs=n_pairs, min_gap=min_gap, seed=seed, batch_size=batch_size
        )
    raise InputError(f"Unknown pair set {pair_set!r}: choose one of {', '.join(PAIR_SETS)}.")
