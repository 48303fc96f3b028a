"""Prompts that begin alike, grouped so that their common beginning runs once.

BBQ asks two questions of each context and its disambiguated context extends the ambiguous one; every chat
prompt starts with the same header; a benchmark's templates share their openings. Measured on all 58,492 BBQ
questions, the distinct prefixes of the prompts hold 1.83x fewer tokens than the prompts (the multiple-choice
prompt) and 2.52x fewer (lm-evaluation-harness's prompt). :func:`prefix_groups` finds groups of prompts and the
leading run of tokens each group shares (one level of that prefix tree); the readout runs each group's prefix
once into a KV cache and every member's remaining tokens from it
(:func:`lens_bias.forward.readouts.shared_prompt_logprobs`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass
class PrefixGroup:
    """``members``: indices of prompts that share their first ``shared`` tokens (``shared`` is below every
    member's length, so each member has at least one token of its own, whose logits predict what follows)."""

    shared: int
    members: list[int]


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def prefix_groups(prompts: Sequence[Sequence[int]], max_members: int) -> list[PrefixGroup]:
    """Groups of at most ``max_members`` prompts (token id lists, each of length >= 1) covering every prompt
    once, in the prompts' sorted order (prompts with a common beginning are neighbours there).

    Greedy: a prompt joins the current group when that does not lower the tokens the group saves, i.e. when
    ``m * shared' >= (m - 1) * shared`` for a group of ``m`` members sharing ``shared`` tokens and ``shared'``
    with the newcomer (a group of one saves nothing yet; it takes any newcomer sharing a token). Prompts
    sharing no token stay apart; a lone prompt's group shares all of it but its last token."""
    if max_members < 1:
        raise ValueError(f"max_members must be >= 1, got {max_members}.")
    order = sorted(range(len(prompts)), key=lambda i: tuple(prompts[i]))
    groups: list[PrefixGroup] = []
    for i in order:
        prompt = prompts[i]
        if groups and len(groups[-1].members) < max_members:
            group = groups[-1]
            first = prompts[group.members[0]]
            shared = min(group.shared, _common_length(first, prompt), len(prompt) - 1)
            longest = max(len(prompt), *(len(prompts[u]) for u in group.members))
            if 2 * shared >= longest:
                group.shared = shared
                group.members.append(i)
                continue
        groups.append(PrefixGroup(len(prompt) - 1, [i]))
    return groups


def packed(
    groups: Sequence[PrefixGroup], size: int, weight: Callable[[PrefixGroup], int] = lambda g: len(g.members)
) -> list[list[PrefixGroup]]:
    """``groups`` in order, packed into chunks whose ``weight`` (default: members) sums to at most ``size`` (a group
    is never split; a group heavier than ``size`` is a chunk of its own)."""
    chunks: list[list[PrefixGroup]] = []
    load = 0
    for group in groups:
        if not chunks or load + weight(group) > size:
            chunks.append([])
            load = 0
        chunks[-1].append(group)
        load += weight(group)
    return chunks
