"""Chat templates, tokenization and the positions that matter, computed once and carried with the batch.

Every prompt the toolkit feeds a model is made here:

* :class:`ChatTemplate` renders a user message (and an optional system prompt) into the model's chat
  format, followed by the start of the answer: Llama 2 chat (``[INST] ... [/INST]`` with an optional
  ``<<SYS>>`` block), the tokenizer's own chat template (SmolLM2's ChatML), or a plain
  ``Input: ...\\nResponse:`` format for base checkpoints.
* :func:`tokenize` turns texts into one right-padded :class:`PromptBatch` and maps character marks
  (end of the instruction, the answer letter, the start of a continuation) to token positions through the
  tokenizer's offsets, so no later code guesses a position.

Right padding keeps every real token at the same position and attending to the same tokens as in an
unpadded run (causal attention never looks right), so batched forwards equal one-at-a-time forwards
without an attention mask; readers must only take care to read real positions (``positions["last"]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from jaxtyping import Int
from torch import Tensor

from lens_bias.data.records import ABItem
from lens_bias.errors import InputError

TemplateName = Literal["llama-2-chat", "hf-chat", "plain"]
LLAMA2_SYSTEM_OPEN, LLAMA2_SYSTEM_CLOSE = "<<SYS>>\n", "\n<</SYS>>\n\n"


@dataclass(frozen=True)
class ChatTemplate:
    """How a user message becomes a prompt ending at the start of the model's answer.

    ``llama-2-chat``: ``[INST] <<SYS>>\\n{system}\\n<</SYS>>\\n\\n{user} [/INST] {answer}`` after a BOS
    token. ``hf-chat``: the tokenizer's own chat template with ``add_generation_prompt=True`` (for
    SmolLM2, ChatML with its default system prompt when ``system`` is None). ``plain``:
    ``Input: {user}\\nResponse: {answer}`` after the document-start token (base checkpoints, as in
    contrastive activation addition).
    """

    name: TemplateName
    system: str | None = None

    def render(self, tokenizer: Any, user: str, answer_prefix: str = "") -> tuple[str, int]:
        """Returns ``(text, instruction_end)``: the prompt text (without any BOS token, which
        :func:`tokenize` adds) and the character index where the instruction ends and the answer
        starts (``text[:instruction_end]`` is the prompt up to the start of the answer)."""
        if self.name == "llama-2-chat":
            system = f"{LLAMA2_SYSTEM_OPEN}{self.system}{LLAMA2_SYSTEM_CLOSE}" if self.system else ""
            head = f"[INST] {system}{user.strip()} [/INST]"
            return f"{head} {answer_prefix}" if answer_prefix else head, len(head)
        if self.name == "hf-chat":
            if getattr(tokenizer, "chat_template", None) is None:
                raise InputError(
                    "This tokenizer has no chat template: use ChatTemplate('plain') for "
                    "base checkpoints or ChatTemplate('llama-2-chat')."
                )
            messages = [{"role": "system", "content": self.system}] if self.system else []
            messages.append({"role": "user", "content": user})
            head = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return head + answer_prefix, len(head)
        if self.name == "plain":
            head = f"Input: {user.strip()}\nResponse:"
            return f"{head} {answer_prefix}" if answer_prefix else head, len(head)
        raise InputError(f"Unknown template {self.name!r}: use 'llama-2-chat', 'hf-chat' or 'plain'.")

    @property
    def adds_bos(self) -> bool:
        """Whether :func:`tokenize` puts the document-start token before rendered prompts (the HF chat
        templates carry their own start tokens)."""
        return self.name != "hf-chat"

    def describe(self, tokenizer: Any) -> dict[str, Any]:
        """Provenance: the template's name, system prompt and the exact rendering of a placeholder."""
        example, _ = self.render(tokenizer, "{user}", "{answer}")
        return {"name": self.name, "system": self.system, "rendered": example}


def template_for(model: Any, system: str | None = None) -> ChatTemplate:
    """The template a model was trained with: Llama 2 chat for Llama 2 chat checkpoints, the tokenizer's
    own chat template where it has one, plain otherwise (base models)."""
    tokenizer = model.tokenizer
    record = getattr(model, "lens_bias_record", None)
    name = (record.name if record else model.cfg.model_name).lower()
    chat_template = getattr(tokenizer, "chat_template", None) or ""
    if ("llama-2" in name and "chat" in name) or "[INST]" in chat_template:
        return ChatTemplate("llama-2-chat", system)
    if chat_template:
        return ChatTemplate("hf-chat", system)
    return ChatTemplate("plain", system)


def document_start_id(tokenizer: Any) -> int:
    """The token that conditions text with no prompt: ``<|endoftext|>`` where the vocabulary has it
    (GPT-2, SmolLM, Qwen use it as the document separator), else BOS (Llama's ``<s>``), else EOS."""
    token_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    if token_id is not None and tokenizer.convert_ids_to_tokens(token_id) == "<|endoftext|>":
        return token_id
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return token_id
    raise InputError("The tokenizer has no <|endoftext|>, BOS or EOS token to start a document with.")


def harness_prefix_id(tokenizer: Any) -> int:
    """The token lm-evaluation-harness 0.4 conditions a loglikelihood request with an empty context on
    (``HFLM.prefix_token_id``): the tokenizer's BOS where it has one, else EOS. For SmolLM2 that is
    ``<|im_start|>`` (a chat-turn opener), where :func:`document_start_id` gives ``<|endoftext|>``."""
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    raise InputError("The tokenizer has no BOS or EOS token: lm-evaluation-harness's prefix token is undefined.")


def _pad_id(tokenizer: Any) -> int:
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.bos_token_id):
        if token_id is not None:
            return token_id
    return 0


@dataclass
class PromptBatch:
    """Right-padded token ids with the positions of interest.

    ``tokens``: ``[batch, pos]`` token ids (pad id after each row's real tokens).
    ``lengths``: ``[batch]`` number of real tokens per row.
    ``positions``: name -> ``[batch]`` token index per row; always has ``"last"`` (last real token), plus
    the marks passed to :func:`tokenize` (e.g. ``"instruction_end"``: the last token of the instruction;
    ``"answer"``: the answer-letter token; ``"continuation"``: the first token of a scored continuation).
    """

    tokens: Int[Tensor, "batch pos"]
    lengths: Int[Tensor, " batch"]
    positions: dict[str, Int[Tensor, " batch"]]
    texts: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __getitem__(self, index: slice) -> "PromptBatch":
        """Rows ``index`` (a slice), trimmed to their longest row."""
        lengths = self.lengths[index]
        width = int(lengths.max()) if len(lengths) else 0
        return PromptBatch(
            self.tokens[index, :width],
            lengths,
            {k: v[index] for k, v in self.positions.items()},
            self.texts[index],
            self.meta,
        )

    def chunks(self, batch_size: int):
        """Consecutive sub-batches of at most ``batch_size`` rows, each trimmed to its longest row."""
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}.")
        for start in range(0, len(self), batch_size):
            yield self[start : start + batch_size]

    def left_padded(self, pad_id: int) -> tuple[Int[Tensor, "batch pos"], Int[Tensor, "batch pos"], "PromptBatch"]:
        """The rows left-padded: ``(tokens, attention_mask, batch)`` where ``batch`` holds the left-padded
        tokens and every position shifted accordingly (for KV-cached forwards, which need a mask)."""
        width = int(self.lengths.max())
        shift = width - self.lengths
        tokens = torch.full((len(self), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(self), width), dtype=torch.long)
        for row in range(len(self)):
            n = int(self.lengths[row])
            tokens[row, width - n :] = self.tokens[row, :n]
            mask[row, width - n :] = 1
        positions = {name: index + shift for name, index in self.positions.items()}
        return tokens, mask, PromptBatch(tokens, self.lengths, positions, self.texts, self.meta)

    def to(self, device: str | torch.device) -> "PromptBatch":
        return PromptBatch(
            self.tokens.to(device),
            self.lengths.to(device),
            {k: v.to(device) for k, v in self.positions.items()},
            self.texts,
            self.meta,
        )


def first_difference(a: PromptBatch, b: PromptBatch) -> Int[Tensor, " batch"]:
    """Per row, the first token index at which ``a`` and ``b`` differ (where the shorter row ends if one is
    a prefix of the other), capped at each row's last real token so it is always a readable position."""
    firsts = []
    for i in range(len(a)):
        x, y = a.tokens[i, : a.lengths[i]], b.tokens[i, : b.lengths[i]]
        n = min(len(x), len(y))
        differ = (x[:n] != y[:n]).nonzero()
        first = int(differ[0]) if len(differ) else n
        firsts.append(min(first, int(a.lengths[i]) - 1, int(b.lengths[i]) - 1))
    return torch.tensor(firsts, dtype=torch.long)


def _token_at_char(offsets: list[tuple[int, int]], char: int, first_at_or_after: bool) -> int:
    """Index of the token containing character ``char - 1`` (the last token before ``char``), or, with
    ``first_at_or_after``, of the first token ending after ``char`` (the first token of text at char)."""
    if first_at_or_after:
        for i, (_, end) in enumerate(offsets):
            if end > char:
                return i
        raise InputError(f"No token at or after character {char}: the continuation is empty.")
    for i in range(len(offsets) - 1, -1, -1):
        start, end = offsets[i]
        if start < char and end > start:
            return i
    raise InputError(f"No token before character {char}: the prompt is empty.")


def tokenize(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    add_start: bool,
    marks: dict[str, Sequence[int]] | None = None,
    starts: dict[str, Sequence[int]] | None = None,
    start_id: int | None = None,
) -> PromptBatch:
    """Tokenize ``texts`` into a right-padded :class:`PromptBatch`.

    Args:
        add_start: put :func:`document_start_id` before each text (templates with no start tokens of
            their own, and sentences scored without a prompt).
        marks: name -> per-text character index ``c``; the position is the last token before ``c``
            (e.g. ``instruction_end``: the last token of the instruction).
        starts: name -> per-text character index ``c``; the position is the first token containing
            text at or after ``c`` (e.g. ``continuation``: the first token of a continuation).
        start_id: with ``add_start``, the token put first instead of :func:`document_start_id` (e.g.
            :func:`harness_prefix_id`).
    """
    if len(texts) == 0:
        raise InputError("No texts to tokenize: the item list is empty.")
    rows: list[list[int]] = []
    positions: dict[str, list[int]] = {"last": []}
    named = {**{k: (v, False) for k, v in (marks or {}).items()}, **{k: (v, True) for k, v in (starts or {}).items()}}
    for name, (chars, _) in named.items():
        if len(chars) != len(texts):
            raise InputError(f"marks[{name!r}] has {len(chars)} entries for {len(texts)} texts.")
        positions[name] = []
    offset = 1 if add_start else 0
    start = [document_start_id(tokenizer) if start_id is None else start_id] if add_start else []
    for i, text in enumerate(texts):
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = start + list(encoded["input_ids"])
        if not ids:
            raise InputError(f"Text {i} tokenizes to nothing: {text!r}.")
        for name, (chars, first) in named.items():
            positions[name].append(_token_at_char(encoded["offset_mapping"], chars[i], first) + offset)
        positions["last"].append(len(ids) - 1)
        rows.append(ids)
    width = max(len(r) for r in rows)
    tokens = torch.full((len(rows), width), _pad_id(tokenizer), dtype=torch.long)
    for i, ids in enumerate(rows):
        tokens[i, : len(ids)] = torch.tensor(ids)
    return PromptBatch(
        tokens=tokens,
        lengths=torch.tensor([len(r) for r in rows]),
        positions={k: torch.tensor(v) for k, v in positions.items()},
        texts=list(texts),
    )


def chat_batch(
    tokenizer: Any, template: ChatTemplate, users: Sequence[str], answer_prefixes: Sequence[str] | str = ""
) -> PromptBatch:
    """Render user messages through ``template`` with answer prefixes and tokenize them, marking
    ``instruction_end`` (last token before the answer starts) and, when every answer prefix is non-empty,
    ``continuation`` (the first token of the answer prefix, for scoring it)."""
    if isinstance(answer_prefixes, str):
        answer_prefixes = [answer_prefixes] * len(users)
    if len(answer_prefixes) != len(users):
        raise InputError(f"{len(answer_prefixes)} answer prefixes for {len(users)} prompts.")
    rendered = [template.render(tokenizer, u, a) for u, a in zip(users, answer_prefixes)]
    ends = [e for _, e in rendered]
    batch = tokenize(
        tokenizer,
        [t for t, _ in rendered],
        add_start=template.adds_bos,
        marks={"instruction_end": ends},
        starts={"continuation": ends} if all(answer_prefixes) else None,
    )
    batch.meta["template"] = template.describe(tokenizer)
    return batch


def ab_question(item: ABItem) -> str:
    """The user message of an A/B item: the question, then ``Choices:\\n(A) ...\\n(B) ...``."""
    return f"{item.question}\n\nChoices:\n(A) {item.choices[0]}\n(B) {item.choices[1]}"


def ab_batch(
    tokenizer: Any, template: ChatTemplate, items: Sequence[ABItem], letters: Sequence[str] | None = None
) -> PromptBatch:
    """A/B prompts ending in ``(`` (``letters=None``, for reading P(A)/P(B) as the next token) or in
    ``(`` + a letter per item (for extracting activations at the answer-letter token, marked
    ``answer``)."""
    users = [ab_question(item) for item in items]
    if letters is None:
        return chat_batch(tokenizer, template, users, "(")
    if len(letters) != len(items) or any(letter not in ("A", "B") for letter in letters):
        raise InputError("letters must give 'A' or 'B' for every item.")
    batch = chat_batch(tokenizer, template, users, [f"({letter}" for letter in letters])
    batch.positions["answer"] = batch.positions["last"].clone()
    return batch


def letter_token_ids(tokenizer: Any) -> tuple[int, int]:
    """Token ids of ``A`` and ``B`` as they follow ``(``; raises if ``(A`` is a single token (then the
    next-token readout after ``(`` is not defined for this tokenizer)."""
    ids = []
    for letter in ("A", "B"):
        encoded = tokenizer(f"({letter}", add_special_tokens=False, return_offsets_mapping=True)
        if len(encoded["input_ids"]) != 2:
            raise InputError(
                f"'({letter}' does not split into '(' + '{letter}' with this tokenizer; the "
                "A/B readout needs the letter as its own token."
            )
        ids.append(encoded["input_ids"][1])
    return ids[0], ids[1]


def continuation_batch(
    tokenizer: Any,
    prompts: Sequence[str],
    continuations: Sequence[str],
    *,
    start_id: int | None = None,
    add_start: bool = True,
) -> PromptBatch:
    """``prompt + continuation`` texts after the document-start token (or ``start_id``; nothing before the
    prompt with ``add_start=False``, as lm-evaluation-harness encodes a non-empty context), marking
    ``continuation`` (its first token). Whitespace at the end of a prompt is moved to the start of the
    continuation, so the first continuation token never also holds prompt characters."""
    if len(prompts) != len(continuations):
        raise InputError(f"{len(prompts)} prompts for {len(continuations)} continuations: the lists must pair up.")
    texts, starts = [], []
    for prompt, continuation in zip(prompts, continuations):
        if not continuation.strip():
            raise InputError(f"Empty continuation after prompt {prompt!r}.")
        stripped = prompt.rstrip()
        continuation = prompt[len(stripped) :] + continuation
        texts.append(stripped + continuation)
        starts.append(len(stripped))
    return tokenize(tokenizer, texts, add_start=add_start, starts={"continuation": starts}, start_id=start_id)
