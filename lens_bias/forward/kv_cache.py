"""TransformerLens KV-cache helpers: a left-padded prefix run into a cache, a cache's rows repeated, and logits of
chosen final-layer rows only.

A prefix runs once into :class:`~transformer_lens.cache.key_value_cache.TransformerLensKeyValueCache` and several
continuations run from it: left-padded prefixes with an explicit attention mask (TransformerLens then shifts the
rotary positions, so each row sees the positions of an unpadded run), the continuations right-padded after them.
The unembedding (a fifth of a small model's compute at every position) is applied only where a readout needs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer
from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache

from lens_bias.prompts import PromptBatch


def pad_id(tokenizer: Any) -> int:
    """The id that fills padded positions (masked, never read): the tokenizer's EOS, else 0."""
    return tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0


def unembed_rows(model: HookedTransformer, residual: Float[Tensor, "batch d_model"]) -> Float[Tensor, "batch d_vocab"]:
    """The logits of final-layer residual rows: the final norm, the unembedding and the logit soft-cap, as the
    model's forward applies them, on these rows only."""
    from transformer_lens.utilities import apply_softcap

    residual = residual[:, None]
    if model.cfg.normalization_type is not None:
        residual = model.ln_final(residual)
    return apply_softcap(model.unembed(residual), model.cfg.output_logits_soft_cap)[:, 0]


def last_position_logits(
    model: HookedTransformer, tokens: Int[Tensor, "batch pos"], cache: Any, mask: Tensor
) -> Float[Tensor, "batch d_vocab"]:
    """The logits of the last position only: the blocks run on every position (filling ``cache``, a
    TransformerLens KV cache, or None), the final norm and the unembedding on the last."""
    residual = model(tokens, past_kv_cache=cache, attention_mask=mask, stop_at_layer=model.cfg.n_layers)
    return unembed_rows(model, residual[:, -1])


def cache_rows(cache: TransformerLensKeyValueCache, index: Int[Tensor, " rows"]) -> TransformerLensKeyValueCache:
    """A new TransformerLens KV cache whose row j is row ``index[j]`` of ``cache`` (one prefix's cache serving
    several continuations); ``cache`` is left as it is."""
    from transformer_lens.cache.key_value_cache_entry import TransformerLensKeyValueCacheEntry

    return TransformerLensKeyValueCache(
        [
            TransformerLensKeyValueCacheEntry(entry.past_keys[index], entry.past_values[index])
            for entry in cache.entries
        ],
        cache.previous_attention_mask[index],
    )


def prefix_forward(
    model: HookedTransformer, prefixes: Sequence[Tensor], pad: int, device: Any
) -> tuple[TransformerLensKeyValueCache | None, Tensor | None, int]:
    """Run ``prefixes`` (token ids, one row each, left-padded to the longest) through the blocks (no unembedding)
    into a new TransformerLens KV cache: ``(cache, residual, width)``, ``residual`` the ``[n_prefix, width,
    d_model]`` final residual stream (prefix ``i``'s token ``t`` at column ``width - len_i + t``).
    ``(None, None, 0)`` when every prefix is empty."""
    if not any(len(p) for p in prefixes):
        return None, None, 0
    lengths = torch.tensor([len(p) for p in prefixes])
    right = torch.nn.utils.rnn.pad_sequence(list(prefixes), batch_first=True, padding_value=pad)
    tokens, mask, _ = PromptBatch(right, lengths, {}, [""] * len(prefixes)).left_padded(pad)
    cache = TransformerLensKeyValueCache.init_cache(model.cfg, device, len(prefixes))
    residual = model(
        tokens.to(device), past_kv_cache=cache, attention_mask=mask.to(device), stop_at_layer=model.cfg.n_layers
    )
    return cache, residual, tokens.shape[1]
