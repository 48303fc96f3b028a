"""Every token's log-probability in many sequences, each common beginning run once.

A CrowS-Pairs pair's two sentences agree up to the first swapped word, a StereoSet context's three sentences up
to the blank, and chat prompts share their header. :func:`shared_prefix_logprobs` groups the sequences that begin
alike (:func:`lens_bias.forward.prefixes.prefix_groups`: at least half the same), runs each group's common prefix
once into a KV cache (:mod:`lens_bias.forward.kv_cache`) and unembeds its positions once for every member, then
runs each member's remaining tokens from that cache (right-padded, the padding masked), and unembeds only the
positions that predict a scored token. A sequence that joins no group runs alone, as before. The log-probabilities
equal those of one forward per sequence up to the floating-point order of the batched sums (tested to 1e-4 nats).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from lens_bias.errors import InputError
from lens_bias.forward.hooks import check_context
from lens_bias.forward.kv_cache import cache_rows, prefix_forward, unembed_rows
from lens_bias.forward.prefixes import PrefixGroup, packed, prefix_groups
from lens_bias.models import device_of

TOKENS_PER_ROW = 64
"""A chunk holds the tokens of ``batch_size`` rows of this many tokens: short sentences (CrowS-Pairs, StereoSet:
about 15 tokens) then fill a forward as the plain path's ``batch_size`` rows do, and their split into a prefix
forward and a remainder forward keeps matrix products large enough to run efficiently (measured: with chunks of
``batch_size`` sentences the two smaller forwards cost what the shared tokens saved)."""


def _read(
    logits: Float[Tensor, "n d_vocab"], index: Int[Tensor, " k"], targets: Int[Tensor, " k"], lse: Tensor
) -> Float[Tensor, " k"]:
    """log P(targets[j]) from logits row ``index[j]`` whose log-sum-exp is ``lse[index[j]]`` (nats, fp32)."""
    return logits[index, targets] - lse[index]


def shared_prefix_logprobs(
    model: HookedTransformer,
    sequences: Sequence[Int[Tensor, " _len"]],
    starts: Sequence[int],
    *,
    pad: int,
    batch_size: int = 16,
    progress: bool | str = False,
) -> list[Float[Tensor, " _scored"]]:
    """``out[i]``: ``[len_i - starts[i]]`` log P(``sequences[i][t]`` | ``sequences[i][:t]``) (nats, fp32, on the
    CPU) for every ``t`` from ``starts[i]`` to the last token. Each sequence has at least 2 tokens and
    ``1 <= starts[i] < len_i``; ``pad`` fills the padded positions (masked, never read). A chunk holds at most
    ``batch_size`` sequences' worth of tokens at :data:`TOKENS_PER_ROW` each (at least one group). No
    interventions: the prefix's forward serves several sequences, so a hook acting per sequence or from a named
    position could not be honoured (callers run interventions one sequence per row)."""
    if len(sequences) != len(starts):
        raise InputError(f"{len(sequences)} sequences for {len(starts)} start positions: the lists must pair up.")
    for seq, start in zip(sequences, starts):
        if not 1 <= start < len(seq):
            raise InputError(
                f"A sequence of {len(seq)} tokens cannot be scored from token {start}: need 1 <= start < length."
            )
    check_context(model, max(len(s) for s in sequences))
    device = device_of(model)
    groups = prefix_groups([s.tolist() for s in sequences], batch_size)
    groups.sort(key=lambda g: (g.shared, max(len(sequences[m]) for m in g.members)))
    out: list[Tensor] = [torch.zeros(0)] * len(sequences)
    desc = progress if isinstance(progress, str) else "score"
    chunks = packed(groups, batch_size * TOKENS_PER_ROW, lambda g: sum(len(sequences[m]) for m in g.members))
    for chunk in tqdm(chunks, desc=desc, disable=not progress, leave=False):
        with torch.inference_mode():
            _score_chunk(model, chunk, sequences, starts, pad, device, out)
    return out


def _score_chunk(
    model: HookedTransformer,
    chunk: list[PrefixGroup],
    sequences: Sequence[Tensor],
    starts: Sequence[int],
    pad: int,
    device: Any,
    out: list[Tensor],
) -> None:
    """Score one chunk of groups into ``out``: the prefixes' forward (each prefix position unembedded once for
    the group, from the earliest start of its members), then the members' remaining tokens from the cache."""
    cache, residual, width = prefix_forward(model, [sequences[g.members[0]][: g.shared] for g in chunk], pad, device)
    assert cache is not None and residual is not None  # every group shares >= 1 token (sequences have >= 2)
    # the prefix: group g's token t (t <= shared, the last one read from the prefix's last position) is predicted by
    # column width - shared + t - 1 of row g
    rows, columns, first, done = [], [], [], 0
    for g, group in enumerate(chunk):
        low = min(starts[m] for m in group.members)
        times = torch.arange(low, max(low, group.shared + 1))
        first.append((done, low))
        done += len(times)
        rows.append(torch.full((len(times),), g))
        columns.append(width - group.shared + times - 1)
    flat_rows, flat_columns = torch.cat(rows), torch.cat(columns)
    logits = unembed_rows(model, residual[flat_rows.to(device), flat_columns.to(device)]).float()
    lse = logits.logsumexp(-1)
    prefix_part: dict[int, Tensor] = {}
    for g, group in enumerate(chunk):
        offset, low = first[g]
        for m in group.members:
            times = torch.arange(starts[m], max(starts[m], group.shared + 1))
            index = (offset + times - low).to(device)
            prefix_part[m] = _read(logits, index, sequences[m][times].to(device), lse).cpu()
    # each member's own tokens after the prefix, but its last (which predicts nothing)
    running = [(g, m) for g, group in enumerate(chunk) for m in group.members if len(sequences[m]) - 1 > group.shared]
    suffix_part: dict[int, Tensor] = {}
    if running:
        inputs = [sequences[m][chunk[g].shared : -1] for g, m in running]
        lengths = torch.tensor([len(x) for x in inputs])
        tokens = torch.nn.utils.rnn.pad_sequence(inputs, batch_first=True, padding_value=pad)
        mask = (torch.arange(tokens.shape[1])[None] < lengths[:, None]).long()
        owner = torch.tensor([g for g, _ in running], device=device)
        residual = model(
            tokens.to(device),
            past_kv_cache=cache_rows(cache, owner),
            attention_mask=mask.to(device),
            stop_at_layer=model.cfg.n_layers,
        )
        # input j of member m predicts its token shared + 1 + j; only those at or after starts[m] are read
        spans = [torch.arange(max(starts[m] - chunk[g].shared - 1, 0), int(n)) for (g, m), n in zip(running, lengths)]
        row_index = torch.repeat_interleave(torch.arange(len(running)), torch.tensor([len(s) for s in spans]))
        column_index = torch.cat(spans)
        logits = unembed_rows(model, residual[row_index.to(device), column_index.to(device)]).float()
        lse = logits.logsumexp(-1)
        done = 0
        for (g, m), span in zip(running, spans):
            targets = sequences[m][chunk[g].shared + 1 + span].to(device)
            suffix_part[m] = _read(logits, torch.arange(done, done + len(span), device=device), targets, lse).cpu()
            done += len(span)
    for group in chunk:
        for m in group.members:
            out[m] = torch.cat([prefix_part[m], suffix_part.get(m, torch.zeros(0))])
