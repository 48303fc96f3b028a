"""Generation under interventions: batched, padding masked, the same tokens with or without the KV cache.

TransformerLens's batched ``generate()`` does not mask padding, and steering hooks indexed against the
prompt miss cached tokens (pitfalls: TransformerLens #1005, steering-vectors #60, CAA #3, neuronpedia
#163). Here prompts are left-padded with an explicit attention mask (TransformerLens then also shifts the
rotary positions, so each row sees the positions of an unpadded run), and every forward tells the
interventions the absolute position of its first token (``ForwardContext.offset``), so a vector added
"from the end of the instruction on" reaches the last instruction token and every generated token, cached
or not. Batched output equals one-at-a-time output (tested).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

from lens_bias.errors import InputError
from lens_bias.forward.hooks import ForwardContext, Intervention, applied
from lens_bias.forward.kv_cache import last_position_logits
from lens_bias.models import AnyModel, device_of, tokenizer_of
from lens_bias.prompts import ChatTemplate, PromptBatch, chat_batch


@dataclass
class Generation:
    """One completion: the prompt as rendered, the generated text (without EOS) and token ids."""

    prompt: str
    text: str
    tokens: list[int]


@torch.inference_mode()
def _generate_batch(
    model: AnyModel,
    batch: PromptBatch,
    interventions: Sequence[Intervention],
    max_new_tokens: int,
    use_cache: bool,
    temperature: float,
    generator: torch.Generator,
) -> list[list[int]]:
    device = device_of(model)
    eos = tokenizer_of(model).eos_token_id
    pad = eos if eos is not None else 0
    tokens, mask, shifted = batch.left_padded(pad)
    tokens, mask = tokens.to(device), mask.to(device)
    context = ForwardContext(shifted.to(device))
    cache = TransformerLensKeyValueCache.init_cache(model.cfg, device, len(batch)) if use_cache else None
    generated = torch.empty((len(batch), 0), dtype=torch.long, device=device)
    step_tokens, step_mask = tokens, mask
    with applied(model, interventions, context):
        for _ in range(max_new_tokens):
            if cache is not None:  # the prompt's positions fill the cache; only the last one is unembedded
                assert isinstance(model, HookedTransformer)  # use_cache needs one (checked by generate)
                last = last_position_logits(model, step_tokens, cache, step_mask).float()
            else:
                last = model(step_tokens, attention_mask=step_mask)[:, -1].float()
            if temperature == 0.0:
                next_ids = last.argmax(-1)
            else:
                probs = (last / temperature).softmax(-1).cpu()
                next_ids = torch.multinomial(probs, 1, generator=generator)[:, 0].to(device)
            generated = torch.cat([generated, next_ids[:, None]], dim=1)
            if eos is not None and bool((generated == eos).any(dim=1).all()):
                break
            ones = torch.ones((len(batch), 1), dtype=torch.long, device=device)
            if cache is not None:
                context.offset += step_tokens.shape[1]
                step_tokens, step_mask = next_ids[:, None], ones
            else:
                step_tokens = torch.cat([step_tokens, next_ids[:, None]], dim=1)
                step_mask = torch.cat([step_mask, ones], dim=1)
    out = []
    for row in generated.tolist():
        out.append(row[: row.index(eos) + 1] if eos in row else row)
    return out


def check_context(model: AnyModel, batch: PromptBatch, max_new_tokens: int) -> None:
    """:class:`InputError` when a prompt of ``batch`` and ``max_new_tokens`` more tokens exceed the model's context
    (``model.cfg.n_ctx``), naming the longest prompt: checked before any generation, not an error mid-way."""
    longest = int(batch.lengths.argmax())
    tokens = int(batch.lengths[longest])
    if tokens + max_new_tokens > model.cfg.n_ctx:
        raise InputError(
            f"The prompt {batch.texts[longest][:60]!r}... has {tokens} tokens; with max_new_tokens={max_new_tokens} "
            f"that exceeds the model's context of {model.cfg.n_ctx} tokens: shorten or drop it, or lower "
            "max_new_tokens."
        )


def generate(
    model: AnyModel,
    template: ChatTemplate,
    prompts: Sequence[str],
    *,
    interventions: Sequence[Intervention] = (),
    max_new_tokens: int = 40,
    use_cache: bool | None = None,
    temperature: float = 0.0,
    batch_size: int = 8,
    seed: int = 0,
    progress: bool | str = False,
) -> list[Generation]:
    """Complete each user prompt (rendered with ``template``) under ``interventions``.

    ``temperature=0`` is greedy decoding (deterministic); otherwise sampling with a seeded generator.
    Each completion stops at EOS (kept in ``tokens``, dropped from ``text``) or after ``max_new_tokens``.
    ``use_cache``: TransformerLens's KV cache (default: on for a HookedTransformer; a TransformerBridge
    ignores ``past_kv_cache``, so there every step reruns the whole sequence, with the same tokens).
    """
    if use_cache is None:
        use_cache = isinstance(model, HookedTransformer)
    elif use_cache and not isinstance(model, HookedTransformer):
        raise InputError(
            f"use_cache=True needs a HookedTransformer; a {type(model).__name__} ignores "
            "TransformerLens's KV cache and would generate different tokens: pass use_cache=False "
            "(the default for it)."
        )
    if max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")
    if not prompts:
        raise InputError("No prompts to generate from.")
    generator = torch.Generator().manual_seed(seed)
    tokenizer = tokenizer_of(model)
    batch = chat_batch(tokenizer, template, prompts)
    check_context(model, batch, max_new_tokens)
    eos = tokenizer.eos_token_id
    out = []
    for chunk in tqdm(
        list(batch.chunks(batch_size)),
        desc=progress if isinstance(progress, str) else "generate",
        disable=not progress,
        leave=False,
    ):
        for text, new in zip(
            chunk.texts, _generate_batch(model, chunk, interventions, max_new_tokens, use_cache, temperature, generator)
        ):
            body = [t for t in new if t != eos]
            decoded = tokenizer.decode(body, skip_special_tokens=True)
            if not isinstance(decoded, str):  # transformers types decode() as str | list[str]; one id list gives str
                raise TypeError(f"tokenizer.decode returned {type(decoded).__name__}, expected str")
            out.append(Generation(prompt=text, text=decoded, tokens=new))
    return out
