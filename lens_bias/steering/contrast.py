"""Paired residual activations for a contrast: the input every steering vector is built from.

:func:`contrast_activations` reads paired activations: A/B items at the answer letter, sentence pairs at
the last token or averaged from the first differing token, or chat completions such as refusal vs
compliance (the prompt as the user message, each side as the start of the answer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jaxtyping import Float
from torch import Tensor

from lens_bias.data.records import ABItem, ContrastPair
from lens_bias.errors import InputError
from lens_bias.forward.activations import extract
from lens_bias.forward.hooks import ResidHook
from lens_bias.models import AnyModel, check_layers
from lens_bias.prompts import ChatTemplate, ab_batch, chat_batch, continuation_batch, first_difference

SentenceReadout = Literal["last", "mean_from_difference"]


@dataclass
class ContrastActivations:
    """Paired activations: ``positive``/``negative`` are ``[n_pairs, n_layers, d_model]``; ``source``
    describes where they were read (for provenance)."""

    positive: Float[Tensor, "n n_layers d_model"]
    negative: Float[Tensor, "n n_layers d_model"]
    layers: tuple[int, ...]
    hook: ResidHook
    source: dict[str, Any]


def contrast_activations(
    model: AnyModel,
    items: Sequence[ContrastPair] | Sequence[ABItem],
    layers: Sequence[int],
    *,
    template: ChatTemplate | None = None,
    readout: SentenceReadout = "last",
    hook: ResidHook = "resid_post",
    batch_size: int = 16,
    progress: bool | str = False,
) -> ContrastActivations:
    """Read paired residual activations for a contrast.

    * :class:`ABItem` s (requires ``template``): the prompt followed by ``(`` + the positive letter vs
      the negative letter, read at the answer-letter token (contrastive activation addition).
    * :class:`ContrastPair` s without ``template``: ``prompt + positive`` vs ``prompt + negative`` as raw
      text, read at the last token (``readout="last"``) or averaged over the tokens from the first token
      where the two sides differ to the end (``"mean_from_difference"``).
    * :class:`ContrastPair` s with ``template``: the prompt as the user message and each side as the
      start of the model's answer (e.g. refusal vs compliance), read as above.
    Padding is never read (positions come from the batch).
    """
    layers = check_layers(model, layers)
    if not items:
        raise InputError("No items to build a contrast from.")
    tokenizer = model.tokenizer
    ab_items = [item for item in items if isinstance(item, ABItem)]
    pairs = [item for item in items if isinstance(item, ContrastPair)]
    if len(ab_items) + len(pairs) != len(items) or (ab_items and pairs):
        raise InputError("items must be all ABItems or all ContrastPairs (lens_bias.data.records).")
    source: dict[str, Any]
    mean_from: str | None = None
    if ab_items:
        if template is None:
            raise InputError("A/B items need a chat template (lens_bias.prompts.template_for(model)).")
        letters = [item.positive_letter for item in ab_items]
        other = ["B" if letter == "A" else "A" for letter in letters]
        pos_batch = ab_batch(tokenizer, template, ab_items, letters)
        neg_batch = ab_batch(tokenizer, template, ab_items, other)
        position = "answer"
        source = {"kind": "ab", "position": "answer letter", "template": template.describe(tokenizer)}
    else:
        if template is None:
            pos_batch = continuation_batch(tokenizer, [p.prompt for p in pairs], [p.positive for p in pairs])
            neg_batch = continuation_batch(tokenizer, [p.prompt for p in pairs], [p.negative for p in pairs])
        else:
            users = [p.prompt for p in pairs]
            pos_batch = chat_batch(tokenizer, template, users, [p.positive for p in pairs])
            neg_batch = chat_batch(tokenizer, template, users, [p.negative for p in pairs])
        position = "last"
        if readout == "mean_from_difference":
            first = first_difference(pos_batch, neg_batch)
            pos_batch.positions["first_difference"] = first
            neg_batch.positions["first_difference"] = first.clone()
            mean_from = "first_difference"
        elif readout != "last":
            raise InputError(f"readout must be 'last' or 'mean_from_difference', got {readout!r}.")
        source = {
            "kind": "sentences" if template is None else "chat-completions",
            "position": readout,
            "template": template.describe(tokenizer) if template else None,
        }
    positive = extract(
        model,
        pos_batch,
        layers,
        position=position,
        mean_from=mean_from,
        hook=hook,
        batch_size=batch_size,
        progress=progress and f"{progress} (+)",
    )
    negative = extract(
        model,
        neg_batch,
        layers,
        position=position,
        mean_from=mean_from,
        hook=hook,
        batch_size=batch_size,
        progress=progress and f"{progress} (-)",
    )
    return ContrastActivations(positive, negative, tuple(layers), hook, source)
