"""The SR_LLM recipe of LoRA instruction fine-tuning, and its training examples.

Recipe (:class:`LoraRecipe`, SR_LLM's settings as defaults): LoRA r 64, alpha 16, dropout 0.2 on every attention
and MLP projection of a Llama block (``q_proj k_proj v_proj o_proj gate_proj up_proj down_proj``; not the
embeddings or the unembedding); AdamW, lr 2e-4 constant after a linear warm-up over the first 3% of the steps
(``transformers.get_constant_schedule_with_warmup``, as the HF Trainer does for ``warmup_ratio``), weight decay
0.001, gradient norm clipped at 0.3, batch 4, one epoch, sequences up to 512 tokens, seeded (LoRA init, batch order
and dropout). SR_LLM trains QLoRA (the base in 4-bit NF4 through bitsandbytes, which needs CUDA); here the base is
in full precision (fp32 on CPU) and only the adapters train: the same low-rank update, without the quantisation
noise. 4-bit QLoRA is left to CUDA machines and is not implemented (bitsandbytes is not a dependency).

Examples (:func:`encode_example`): the user message is the instruction, a space and the biased text (SR_LLM's
"{instruction} {text}"), rendered under SR_LLM's system prompt with the model's own chat template
(:func:`lens_bias.prompts.template_for`: ChatML for SmolLM2, Llama 2's ``[INST] <<SYS>>`` for Llama 2 chat, the
plain ``Input:/Response:`` format for base checkpoints, which has no system prompt); the answer is the debiased
rewrite followed by the EOS token (so the fine-tuned model learns to stop). Prompt and answer are tokenized as
:func:`lens_bias.prompts.chat_batch` tokenizes a prompt at generation time (the prompt part exactly as generation
sees it); the labels mask the prompt (``-100``), so the loss is over the answer tokens only. SR_LLM's SFTTrainer
trained on the whole text; masking the prompt is the usual choice for instruction tuning and keeps the model from
learning to reproduce the instruction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from lens_bias.debias.rewrites import RewritePair
from lens_bias.errors import InputError
from lens_bias.prompts import ChatTemplate, document_start_id, template_for

DEBIAS_INSTRUCTION = "Debias this text by rephrasing it to be free of bias:"
#: SR_LLM's system prompt (its training and inference scripts).
DEBIAS_SYSTEM_PROMPT = (
    "You are a text debiasing bot, you take as input a text and you output its debiased version by rephrasing it "
    "to be free from any age, gender, political, social or socio-economic biases, without any extra outputs."
)
#: The attention and MLP projections of a Llama block (HF module names).
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
IGNORE = -100  # label of a position that is not scored (torch's cross-entropy default ignore_index)


@dataclass(frozen=True)
class LoraRecipe:
    """LoRA instruction fine-tuning settings; the defaults are SR_LLM's (see the module docstring)."""

    r: int = 64
    alpha: int = 16
    dropout: float = 0.2
    learning_rate: float = 2e-4
    warmup_ratio: float = 0.03
    weight_decay: float = 0.001
    max_grad_norm: float = 0.3
    batch_size: int = 4
    epochs: int = 1
    max_length: int = 512  # tokens per example (prompt + answer + EOS); longer answers are cut
    instruction: str = DEBIAS_INSTRUCTION
    system_prompt: str | None = DEBIAS_SYSTEM_PROMPT
    target_modules: tuple[str, ...] = LLAMA_PROJECTIONS
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "r": self.r >= 1,
            "alpha": self.alpha > 0,
            "dropout": 0.0 <= self.dropout < 1.0,
            "learning_rate": self.learning_rate > 0,
            "warmup_ratio": 0.0 <= self.warmup_ratio < 1.0,
            "weight_decay": self.weight_decay >= 0,
            "max_grad_norm": self.max_grad_norm > 0,
            "batch_size": self.batch_size >= 1,
            "epochs": self.epochs >= 1,
            "max_length": self.max_length >= 8,
            "instruction": bool(self.instruction.strip()),
            "target_modules": bool(self.target_modules),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise InputError(
                f"LoraRecipe: invalid {', '.join(f'{name}={getattr(self, name)!r}' for name in bad)} (r, batch_size, "
                "epochs >= 1; alpha, learning_rate, max_grad_norm > 0; dropout, warmup_ratio in [0, 1); "
                "weight_decay >= 0; max_length >= 8; a non-empty instruction and target_modules)."
            )
        object.__setattr__(self, "target_modules", tuple(self.target_modules))

    def user_message(self, biased_text: str) -> str:
        """The user turn for one biased text (:func:`debias_request` with the recipe's instruction)."""
        return debias_request(biased_text, self.instruction)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoraRecipe:
        return cls(**{**data, "target_modules": tuple(data["target_modules"])})


def debias_request(biased_text: str, instruction: str = DEBIAS_INSTRUCTION) -> str:
    """The user turn asking for a rewrite: ``"{instruction} {text}"`` (SR_LLM's)."""
    return f"{instruction} {biased_text.strip()}"


def debias_template(model: Any, recipe: LoraRecipe) -> ChatTemplate:
    """The chat template the recipe renders examples with for ``model`` (a HookedTransformer from ``load_model``,
    or anything with ``tokenizer`` and ``lens_bias_record.name``): :func:`lens_bias.prompts.template_for` with the
    recipe's system prompt."""
    return template_for(model, recipe.system_prompt)


@dataclass(frozen=True)
class Example:
    """One training sequence: token ids and their labels (``-100`` on the prompt, the answer ids after it)."""

    input_ids: tuple[int, ...]
    labels: tuple[int, ...]
    truncated: bool


def encode_example(tokenizer: Any, template: ChatTemplate, recipe: LoraRecipe, pair: RewritePair) -> Example:
    """The prompt (rendered with ``template``, tokenized as :func:`lens_bias.prompts.chat_batch` does) and the
    answer (the rewrite, then EOS), cut to ``recipe.max_length`` tokens; labels mask the prompt."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise InputError("The tokenizer has no EOS token: the fine-tuned model could not learn where a rewrite ends.")
    text, end = template.render(tokenizer, recipe.user_message(pair.biased_text), pair.debiased_text.strip())
    start = [document_start_id(tokenizer)] if template.adds_bos else []
    prompt = start + list(tokenizer(text[:end], add_special_tokens=False)["input_ids"])
    answer = list(tokenizer(text[end:], add_special_tokens=False)["input_ids"]) + [eos]
    if len(prompt) >= recipe.max_length:
        raise InputError(
            f"Pair {pair.id}: its prompt alone has {len(prompt)} tokens, max_length is {recipe.max_length}; "
            "raise LoraRecipe.max_length or shorten the text."
        )
    ids = (prompt + answer)[: recipe.max_length]
    labels = ([IGNORE] * len(prompt) + answer)[: recipe.max_length]
    return Example(tuple(ids), tuple(labels), len(prompt) + len(answer) > recipe.max_length)


def collate(examples: Sequence[Example], pad_id: int) -> dict[str, Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` (``[batch, pos]``; labels ``-100`` on padding)."""
    width = max(len(example.input_ids) for example in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example.input_ids)
        ids[row, :n] = torch.tensor(example.input_ids)
        labels[row, :n] = torch.tensor(example.labels)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
