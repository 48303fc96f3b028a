"""Readouts: functions from (model, items) to one score per item, optionally under interventions.

* :func:`continuation_logprobs`: log P(continuation | prompt), summed and per-token mean (nats). Works on
  any model, small ones included; the sum itself is :func:`span_logprob_sum` (shared with the
  patching metric :class:`lens_bias.patching.ContinuationLogProb`).
* :func:`token_logprobs`: every token's log-probability in each text (for scores over chosen tokens,
  e.g. CrowS-Pairs' shared tokens).
* :func:`score_pairs`: both sides of :class:`ContrastPair`s; the preference for the positive side.
* :func:`ab_choice`: P("A") and P("B") as the next token after ``(`` in the contrastive-activation-
  addition A/B format, P(positive option), and the model's position bias.
* :func:`refusal_propensity`: log sum P(refusal openers) - log sum P(compliance openers) at the start
  of the answer.

Every readout masks its padding and reads only real positions, so batched scores equal one-at-a-time scores
(tested to 1e-5; to 1e-4 where prompts that begin alike share a left-padded prefix in a KV cache).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.data.records import ABItem, ContrastPair
from lens_bias.errors import InputError
from lens_bias.forward.hooks import ForwardContext, Intervention, applied, run_chunks
from lens_bias.forward.kv_cache import cache_rows, pad_id, prefix_forward, unembed_rows
from lens_bias.forward.prefixes import PrefixGroup, packed, prefix_groups
from lens_bias.forward.shared_prefix import shared_prefix_logprobs
from lens_bias.models import AnyModel, device_of, tokenizer_of
from lens_bias.prompts import (
    ChatTemplate,
    PromptBatch,
    ab_batch,
    chat_batch,
    continuation_batch,
    letter_token_ids,
)


@dataclass
class LogProbs:
    """Per-item log-probabilities of continuations (natural log).

    ``total``: ``[n]`` summed log P over the continuation's tokens; ``mean``: ``[n]`` per-token mean;
    ``n_tokens``: ``[n]`` number of continuation tokens.
    """

    total: Float[Tensor, " n"]
    mean: Float[Tensor, " n"]
    n_tokens: Tensor


def target_logprobs(logits: Float[Tensor, "*rows d_vocab"], targets: Int[Tensor, "*rows"]) -> Float[Tensor, "*rows"]:
    """log P(target) per row of ``logits`` (nats, fp32): the target's logit minus the log-sum-exp of the row, the
    log-softmax read at one entry without writing the whole ``[rows, d_vocab]`` log-softmax (on a 49k vocabulary
    that costs about as much as the transformer's blocks)."""
    logits = logits.float()
    return logits.gather(-1, targets[..., None])[..., 0] - logits.logsumexp(-1)


def _span_sum(
    predict: Callable[[Tensor, Tensor], Float[Tensor, "n d_vocab"]],
    tokens: Int[Tensor, "batch pos"],
    start: Int[Tensor, " batch"],
    last: Int[Tensor, " batch"],
    device: Any,
) -> tuple[Float[Tensor, " batch"], Int[Tensor, " batch"]]:
    """Per row, the summed log-probability of ``tokens[start..last]`` and the number of tokens summed, from
    ``predict(rows, positions)``: the ``[n, d_vocab]`` logits at those (row, position) pairs, each predicting the
    token after it; only the span's positions are ever predicted or read."""
    start = start.cpu().clamp_min(1)  # the first token has no prediction
    last = last.cpu()
    count = (last - start + 1).clamp_min(0)
    rows = torch.repeat_interleave(torch.arange(len(tokens)), count)
    positions = torch.cat([torch.arange(a, a + n) for a, n in zip(start.tolist(), count.tolist())])
    rows, positions = rows.to(device), positions.to(device)
    logprobs = target_logprobs(predict(rows, positions - 1), tokens.to(device)[rows, positions])
    total = torch.zeros(len(tokens), device=device, dtype=logprobs.dtype).index_add(0, rows, logprobs)
    return total, count.to(device)


def span_logprob_sum(
    logits: Float[Tensor, "batch pos d_vocab"],
    tokens: Int[Tensor, "batch pos"],
    start: Int[Tensor, " batch"],
    last: Int[Tensor, " batch"],
) -> tuple[Float[Tensor, " batch"], Int[Tensor, " batch"]]:
    """Per row, the summed log-probability (nats) of ``tokens[start..last]`` (both ends included), each
    token given every token before it, and the number of tokens summed. ``logits`` are the forward's
    over ``tokens``; positions outside the span (padding included) are never read into the sum."""
    return _span_sum(lambda rows, positions: logits[rows, positions], tokens, start, last, logits.device)


def _span_from_residual(
    model: HookedTransformer,
    residual: Float[Tensor, "batch pos d_model"],
    tokens: Int[Tensor, "batch pos"],
    start: Int[Tensor, " batch"],
    last: Int[Tensor, " batch"],
) -> tuple[Float[Tensor, " batch"], Int[Tensor, " batch"]]:
    """:func:`span_logprob_sum` from the final residual stream, unembedding only the positions that predict a span
    token (a prompt's other positions need no logits)."""
    return _span_sum(
        lambda rows, positions: unembed_rows(model, residual[rows, positions]), tokens, start, last, residual.device
    )


def by_length(batch: PromptBatch) -> tuple[PromptBatch, Int[Tensor, " batch"]]:
    """``batch``'s rows sorted by length (stable) and ``order``: sorted row i is row ``order[i]`` of ``batch``.
    Chunks of the sorted rows carry less padding; ``result[order] = sorted_result`` restores the order."""
    order = torch.argsort(batch.lengths, stable=True)
    sorted_batch = PromptBatch(
        batch.tokens[order],
        batch.lengths[order],
        {name: index[order] for name, index in batch.positions.items()},
        [batch.texts[i] for i in order.tolist()],
        batch.meta,
    )
    return sorted_batch, order


def _prefix_shared(
    model: HookedTransformer, batch: PromptBatch, starts: Int[Tensor, " batch"], batch_size: int, progress: bool | str
) -> list[Float[Tensor, " _scored"]]:
    """Per row of ``batch``, the log-probabilities of its tokens from ``starts`` (at least 1) to its last real token,
    by :func:`lens_bias.forward.shared_prefix.shared_prefix_logprobs`."""
    sequences = [batch.tokens[i, : batch.lengths[i]] for i in range(len(batch))]
    return shared_prefix_logprobs(
        model,
        sequences,
        starts.clamp_min(1).tolist(),
        pad=pad_id(tokenizer_of(model)),
        batch_size=batch_size,
        progress=progress,
    )


def batch_logprobs(
    model: AnyModel,
    batch: PromptBatch,
    *,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    progress: bool | str = False,
) -> LogProbs:
    """Log-probabilities of the tokens from ``batch.positions["continuation"]`` to the last real token,
    each given everything before it (rows of similar length share a forward; results in the batch's order).
    A HookedTransformer without interventions runs rows that begin alike from one prefix
    (:func:`lens_bias.forward.shared_prefix.shared_prefix_logprobs`); otherwise each row runs whole (the two
    agree up to the order of float sums: a no-op intervention moves a score by under 1e-6 nats)."""
    if "continuation" not in batch.positions:
        raise InputError("The batch has no 'continuation' position: build it with continuation_batch().")
    if isinstance(model, HookedTransformer) and not interventions:
        per_token = _prefix_shared(model, batch, batch.positions["continuation"], batch_size, progress)
        total = torch.stack([row.sum() for row in per_token])
        n_tokens = torch.tensor([len(row) for row in per_token])
        return LogProbs(total=total, mean=total / n_tokens, n_tokens=n_tokens)
    batch, order = by_length(batch)
    totals, counts = [], []
    for chunk, output in run_chunks(
        model,
        batch,
        interventions=interventions,
        batch_size=batch_size,
        progress=progress,
        stop_at_layer=model.cfg.n_layers if isinstance(model, HookedTransformer) else None,  # before the unembedding
    ):
        start, last = chunk.positions["continuation"], chunk.positions["last"]
        if isinstance(model, HookedTransformer):
            total, count = _span_from_residual(model, output, chunk.tokens, start, last)
        else:
            total, count = span_logprob_sum(output, chunk.tokens, start, last)
        totals.append(total.cpu())
        counts.append(count.cpu())
    total, n_tokens = torch.empty(len(order)), torch.empty(len(order), dtype=torch.long)
    total[order], n_tokens[order] = torch.cat(totals), torch.cat(counts)
    return LogProbs(total=total, mean=total / n_tokens, n_tokens=n_tokens)


def continuation_logprobs(
    model: AnyModel,
    prompts: Sequence[str],
    continuations: Sequence[str],
    *,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    progress: bool | str = False,
) -> LogProbs:
    """log P(continuation_i | document start + prompt_i) for every i (raw text, no chat template).

    A prompt of ``""`` scores the whole continuation as a sentence."""
    batch = continuation_batch(model.tokenizer, prompts, continuations)
    return batch_logprobs(model, batch, interventions=interventions, batch_size=batch_size, progress=progress)


@dataclass
class TokenLogProbs:
    """Per-token log-probabilities of texts read from the document-start token (natural log).

    ``tokens[i]``: ``[len_i]`` token ids of text i (the document-start token not included; each text its own
    length, hence the unchecked ``_len``);
    ``logprobs[i]``: ``[len_i]`` log P(token t | document start + tokens before t) for each of them."""

    tokens: list[Int[Tensor, " _len"]]
    logprobs: list[Float[Tensor, " _len"]]


def token_logprobs(
    model: AnyModel,
    texts: Sequence[str],
    *,
    start_id: int | None = None,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    progress: bool | str = False,
) -> TokenLogProbs:
    """Every token's log-probability in each text, each given the document start (or the token ``start_id``)
    and the tokens before it.

    The batch is :func:`continuation_logprobs`' with prompt ``""`` (same tokens, same positions for
    interventions), so ``logprobs[i].sum()`` is its ``total`` for text i; only real positions are read. Texts of
    similar length share a forward (less padding), texts that begin alike their beginning (as
    :func:`batch_logprobs`); the results come back in the texts' order."""
    batch = continuation_batch(tokenizer_of(model), [""] * len(texts), texts, start_id=start_id)
    if isinstance(model, HookedTransformer) and not interventions:
        per_token = _prefix_shared(model, batch, torch.ones(len(texts), dtype=torch.long), batch_size, progress)
        tokens = [batch.tokens[i, 1 : batch.lengths[i]] for i in range(len(texts))]
        return TokenLogProbs(tokens=tokens, logprobs=per_token)
    batch, order = by_length(batch)
    tokens = [torch.zeros(0)] * len(texts)
    logprobs: list[Tensor] = [torch.zeros(0)] * len(texts)
    rows = iter(order.tolist())
    for chunk, logits in run_chunks(
        model, batch, interventions=interventions, batch_size=batch_size, progress=progress
    ):
        ids = chunk.tokens.to(logits.device)
        token_lp = target_logprobs(logits[:, :-1], ids[:, 1:]).cpu()
        for row, length in enumerate(chunk.lengths.tolist()):
            text = next(rows)
            tokens[text] = chunk.tokens[row, 1:length].cpu()
            logprobs[text] = token_lp[row, : length - 1]
    return TokenLogProbs(tokens=tokens, logprobs=logprobs)


@dataclass
class PairScores:
    """Both sides of contrast pairs. ``preference`` = log P(positive) - log P(negative) per pair, by
    ``mean`` (per-token, the default: robust to length differences) or ``total`` (summed)."""

    positive: LogProbs
    negative: LogProbs

    def preference(self, by: str = "mean") -> Float[Tensor, " n"]:
        if by not in ("mean", "total"):
            raise InputError(f"by must be 'mean' or 'total', got {by!r}.")
        return getattr(self.positive, by) - getattr(self.negative, by)

    def prefers_positive(self, by: str = "mean") -> Tensor:
        """``[n]`` bool: the positive side scores strictly higher (ties count as not preferring)."""
        return self.preference(by) > 0


def score_pairs(
    model: AnyModel,
    pairs: Sequence[ContrastPair],
    *,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    progress: bool | str = False,
) -> PairScores:
    """Likelihoods of both sides of every pair, in one batched pass over ``2 x len(pairs)`` texts."""
    if not pairs:
        raise InputError("No pairs to score.")
    prompts = [p.prompt for p in pairs] * 2
    continuations = [p.positive for p in pairs] + [p.negative for p in pairs]
    scores = continuation_logprobs(
        model, prompts, continuations, interventions=interventions, batch_size=batch_size, progress=progress
    )
    n = len(pairs)
    split = [LogProbs(scores.total[s], scores.mean[s], scores.n_tokens[s]) for s in (slice(0, n), slice(n, None))]
    return PairScores(*split)


def next_token_logprobs(
    model: AnyModel,
    batch: PromptBatch,
    *,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    progress: bool | str = False,
) -> Float[Tensor, "n d_vocab"]:
    """Log-probabilities of the next token after each row's last real token, ``[n, d_vocab]``."""
    rows = []
    # a HookedTransformer unembeds the last positions only (a TransformerBridge runs its whole forward)
    hooked = model if isinstance(model, HookedTransformer) else None
    stop = model.cfg.n_layers if hooked is not None else None
    for chunk, output in run_chunks(
        model, batch, interventions=interventions, batch_size=batch_size, stop_at_layer=stop, progress=progress
    ):
        last = output[torch.arange(len(chunk)), chunk.positions["last"]]
        if hooked is not None:  # still inside run_chunks' hooks and inference mode
            last = unembed_rows(hooked, last)
        rows.append(last.float().log_softmax(-1).cpu())
    return torch.cat(rows)


@dataclass
class ABScores:
    """A/B readout. ``p_a``, ``p_b``: ``[n]`` next-token probabilities of "A" and "B" after ``(``;
    ``p_positive``: ``[n]`` P(positive option) normalised over {A, B}; ``format_mass``: ``[n]`` P(A)+P(B)
    (how much the model follows the format at all); ``positive_is_a``: ``[n]`` bool."""

    p_a: Float[Tensor, " n"]
    p_b: Float[Tensor, " n"]
    p_positive: Float[Tensor, " n"]
    format_mass: Float[Tensor, " n"]
    positive_is_a: Tensor


def ab_choice(
    model: AnyModel,
    items: Sequence[ABItem],
    template: ChatTemplate,
    *,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    progress: bool | str = False,
) -> ABScores:
    """P(A), P(B) as the model's first answer token after ``(`` for every A/B item."""
    if not items:
        raise InputError("No A/B items to score.")
    batch = ab_batch(model.tokenizer, template, items)
    logprobs = next_token_logprobs(model, batch, interventions=interventions, batch_size=batch_size, progress=progress)
    a_id, b_id = letter_token_ids(model.tokenizer)
    p_a, p_b = logprobs[:, a_id].exp(), logprobs[:, b_id].exp()
    positive_is_a = torch.tensor([item.positive_letter == "A" for item in items])
    mass = p_a + p_b
    p_positive = torch.where(positive_is_a, p_a, p_b) / mass
    return ABScores(p_a=p_a, p_b=p_b, p_positive=p_positive, format_mass=mass, positive_is_a=positive_is_a)


def answer_logprobs(
    model: AnyModel,
    template: ChatTemplate,
    users: Sequence[str],
    answers: Sequence[str],
    *,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    progress: bool | str = False,
) -> LogProbs:
    """log P(answer_i | chat prompt of user_i), the answer read as the start of the model's reply."""
    if len(users) != len(answers):
        raise InputError(f"{len(users)} prompts for {len(answers)} answers: the lists must pair up.")
    batch = chat_batch(model.tokenizer, template, users, answers)
    return batch_logprobs(model, batch, interventions=interventions, batch_size=batch_size, progress=progress)


def _runners(inputs: dict[int, tuple[int, ...]], prompt_of: Sequence[int]) -> dict[int, int]:
    """For each row r of ``inputs`` (row -> the tokens it feeds after its prompt), the row of the same prompt whose
    tokens begin with r's and are the longest (the first such row on ties): a forward of that row alone gives r's
    log-probs too (causal attention), so only these rows run."""
    runner = {}
    for r, tokens in inputs.items():
        extending = [
            q
            for q, other in inputs.items()
            if prompt_of[q] == prompt_of[r] and len(other) >= len(tokens) and other[: len(tokens)] == tokens
        ]
        runner[r] = max(extending, key=lambda q: (len(inputs[q]), -q))
    return runner


def shared_prompt_logprobs(
    model: AnyModel,
    template: ChatTemplate | None,
    users: Sequence[str],
    answers: Sequence[str] | Sequence[Sequence[str]],
    *,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    progress: bool | str = False,
    add_start: bool = True,
) -> LogProbs:
    """``log P(answer_j | prompt_i)`` for every prompt i and each of its answers j, flattened row-major
    (``[n_prompts * k]``: entry ``i * k + j``).

    ``answers`` is one list of k answers for every prompt, or one list of k answers per prompt. With a
    ``template`` the prompt is the chat rendering of ``users[i]`` and the answer is read as the start of
    the model's reply (as :func:`answer_logprobs`); with ``template=None`` the prompt is raw text after
    the document-start token (after nothing with ``add_start=False``) and the answer its continuation (as
    :func:`continuation_logprobs`).

    Each prompt runs once and its KV cache serves all its answers, so scoring k short answers costs about
    one prompt forward instead of k. Without interventions, prompts that begin alike also share their common
    beginning (:func:`lens_bias.forward.prefixes.prefix_groups`): it runs once per group into the KV cache, each
    member's remaining tokens after it (right-padded, the padding masked), then the answers (on BBQ 1.2-1.4x fewer
    padded prompt tokens with its multiple-choice prompt, 1.5-1.7x with the harness's). Under interventions each
    prompt runs whole, as an intervention may act per prompt or from a named position. Equal to the
    one-pair-per-row readouts on every pair (tested); the tokens are those of the full ``prompt + answer`` text,
    and a prompt whose tokens would change with the answer (a merge across the boundary) is an error. A model other
    than a HookedTransformer (a TransformerBridge ignores TransformerLens's KV cache) is scored pair by pair."""
    from tqdm.auto import tqdm
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

    if not users or not answers:
        raise InputError("Need at least one prompt and one answer.")
    per_prompt: list[list[str]] = (
        [[str(a) for a in row] for row in answers]
        if not isinstance(answers[0], str)
        else [list(map(str, answers))] * len(users)
    )
    if len(per_prompt) != len(users):
        raise InputError(f"{len(per_prompt)} answer lists for {len(users)} prompts: give one list per prompt.")
    k = len(per_prompt[0])
    if k == 0 or any(len(a) != k for a in per_prompt):
        raise InputError("Every prompt needs the same number (>= 1) of answers.")
    tokenizer = tokenizer_of(model)

    def pairs_batch(prompts: Sequence[str], replies: Sequence[str]) -> PromptBatch:
        if template is None:
            return continuation_batch(tokenizer, prompts, replies, add_start=add_start)
        return chat_batch(tokenizer, template, prompts, replies)

    flat_users = [u for u in users for _ in range(k)]
    flat_answers = [a for answer_list in per_prompt for a in answer_list]
    if not isinstance(model, HookedTransformer):
        batch = pairs_batch(flat_users, flat_answers)
        return batch_logprobs(model, batch, interventions=interventions, batch_size=batch_size, progress=progress)
    device = device_of(model)
    pad = pad_id(tokenizer)
    per_chunk = max(1, batch_size // 2)
    full = pairs_batch(flat_users, flat_answers)
    starts, lasts = full.positions["continuation"], full.positions["last"]
    prompts: list[Tensor] = []
    for u, user in enumerate(users):
        prefix = full.tokens[u * k, : starts[u * k]]
        for r in range(u * k, u * k + k):
            if starts[r] != len(prefix) or not torch.equal(full.tokens[r, : starts[r]], prefix):
                raise InputError(
                    f"The prompt {user!r} tokenizes differently before different answers "
                    "(a token spans the boundary); score these pairs one per row."
                )
        prompts.append(prefix)
    continuations = [full.tokens[r, starts[r] : lasts[r] + 1] for r in range(len(full))]
    positions = {name: index[::k] for name, index in full.positions.items() if name != "continuation"}
    positions["last"] = torch.tensor([len(p) - 1 for p in prompts])
    if interventions:  # an intervention may act per prompt or from a named position: each prompt runs whole
        groups = [PrefixGroup(0, [u]) for u in sorted(range(len(users)), key=lambda u: len(prompts[u]))]
    else:
        groups = prefix_groups([p.tolist() for p in prompts], per_chunk)
        groups.sort(key=lambda g: (g.shared, max(len(prompts[u]) for u in g.members)))
    chunks = packed(groups, per_chunk)
    totals: list[Tensor] = [torch.zeros(())] * len(flat_users)
    counts = [0] * len(flat_users)
    for chunk in tqdm(
        chunks, desc=progress if isinstance(progress, str) else "score", disable=not progress, leave=False
    ):
        members = [u for group in chunk for u in group.members]
        shared = torch.tensor([group.shared for group in chunk for _ in group.members])
        rows = [u * k + j for u in members for j in range(k)]
        suffixes = [prompts[u][int(s) :] for u, s in zip(members, shared)]
        prompt_batch = PromptBatch(
            torch.nn.utils.rnn.pad_sequence(suffixes, batch_first=True, padding_value=pad),
            torch.tensor([len(s) for s in suffixes]),
            {name: index[members] for name, index in positions.items()},
            [users[u] for u in members],
        )
        mask = (torch.arange(prompt_batch.tokens.shape[1])[None] < prompt_batch.lengths[:, None]).long()
        chunk_rows = [r for r in range(len(members)) for _ in range(k)]  # each row's prompt row in the chunk
        # The prompt's last logits predict every continuation's first token; the later tokens need one more forward
        # of the continuations but their last tokens, from the prompt's cache, right-padded: only of the rows that no
        # other row of the same prompt extends (:func:`_runners`; a forward reads every weight, so few large ones).
        inputs = {
            r: tuple(continuations[row][:-1].tolist()) for r, row in enumerate(rows) if len(continuations[row]) > 1
        }
        runner = _runners(inputs, chunk_rows)
        running = sorted(set(runner.values()))
        context = ForwardContext(prompt_batch.to(device))
        with applied(model, interventions, context), torch.inference_mode():
            cache, _, _ = prefix_forward(model, [prompts[g.members[0]][: g.shared] for g in chunk], pad, device)
            if cache is None:
                cache = TransformerLensKeyValueCache.init_cache(model.cfg, device, len(members))
            else:
                group_of = [gi for gi, group in enumerate(chunk) for _ in group.members]
                cache = cache_rows(cache, torch.tensor(group_of, device=device))
            residual = model(
                prompt_batch.tokens.to(device),
                past_kv_cache=cache,
                attention_mask=mask.to(device),
                stop_at_layer=model.cfg.n_layers,
            )
            last = residual[torch.arange(len(members), device=device), prompt_batch.lengths.to(device) - 1]
            first_lp = unembed_rows(model, last).float().log_softmax(-1).cpu()
            context.offset = cache.previous_attention_mask.shape[1]
            if running:
                owner = torch.tensor([chunk_rows[r] for r in running], dtype=torch.long)
                input_tokens = torch.nn.utils.rnn.pad_sequence(
                    [torch.tensor(inputs[r]) for r in running], batch_first=True, padding_value=pad
                )
                context.batch = PromptBatch(
                    input_tokens,
                    torch.tensor([len(inputs[r]) for r in running]),
                    {name: index[owner] for name, index in prompt_batch.positions.items()},
                    [full.texts[rows[r]] for r in running],
                    {"prompt_rows": owner},  # each row's prompt row, for per-prompt interventions (SubspaceEdit)
                ).to(device)
                logits = model(
                    input_tokens.to(device),
                    past_kv_cache=cache_rows(cache, owner.to(device)),
                    attention_mask=torch.ones_like(input_tokens, device=device),
                )
                later = dict(zip(running, logits.float().cpu()))
        for r, row in enumerate(rows):
            continuation = continuations[row]
            total = first_lp[chunk_rows[r], continuation[0]]
            if len(continuation) > 1:
                steps = torch.arange(len(continuation) - 1)
                total = total + target_logprobs(later[runner[r]][steps], continuation[1:]).sum()
            totals[row] = total
            counts[row] = len(continuation)
    total, n_tokens = torch.stack(totals), torch.tensor(counts)
    return LogProbs(total=total, mean=total / n_tokens, n_tokens=n_tokens)


def refusal_propensity(
    model: AnyModel,
    template: ChatTemplate,
    requests: Sequence[str],
    refusal_openers: Sequence[str],
    compliance_openers: Sequence[str],
    *,
    interventions: Sequence[Intervention] = (),
    batch_size: int = 16,
    progress: bool | str = False,
) -> Float[Tensor, " n"]:
    """``log sum_o P(o | prompt) over refusal openers - log sum_o P(o | prompt) over compliance openers``
    (nats) at the start of the answer, per request. Positive = the model leans toward refusing."""
    scores = shared_prompt_logprobs(
        model,
        template,
        requests,
        [*refusal_openers, *compliance_openers],
        interventions=interventions,
        batch_size=batch_size,
        progress=progress,
    )
    by_prompt = scores.total.view(len(requests), len(refusal_openers) + len(compliance_openers))
    n_refusal = len(refusal_openers)
    return by_prompt[:, :n_refusal].logsumexp(1) - by_prompt[:, n_refusal:].logsumexp(1)
