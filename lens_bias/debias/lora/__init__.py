"""Debiasing by LoRA instruction fine-tuning (the SR_LLM recipe), saved as a merged model folder that
:func:`lens_bias.models.load_model` reads, and the evaluation of the model's rewrites.

* :mod:`~lens_bias.debias.lora.recipe`: :class:`LoraRecipe` (SR_LLM's settings) and the training examples;
* :mod:`~lens_bias.debias.lora.train`: :func:`finetune_lora` (train, merge, save; a saved fine-tune is reused);
* :mod:`~lens_bias.debias.lora.evaluate`: :func:`rewrite_eval` (rewrites of held-out biased texts, scored) and
  :func:`rewrite_items` (their per-item rows).
"""

from lens_bias.debias.lora.evaluate import RewriteEval, check_rewrite_eval, rewrite_eval, rewrite_items
from lens_bias.debias.lora.recipe import (
    DEBIAS_INSTRUCTION,
    DEBIAS_SYSTEM_PROMPT,
    IGNORE,
    LLAMA_PROJECTIONS,
    Example,
    LoraRecipe,
    collate,
    debias_request,
    debias_template,
    encode_example,
)
from lens_bias.debias.lora.train import (
    FINETUNE_FORMAT,
    MANIFEST,
    FinetuneResult,
    answer_loss,
    base_record,
    finetune_lora,
    load_hf_model,
    train_lora,
)

__all__ = [
    "DEBIAS_INSTRUCTION",
    "DEBIAS_SYSTEM_PROMPT",
    "FINETUNE_FORMAT",
    "IGNORE",
    "LLAMA_PROJECTIONS",
    "MANIFEST",
    "Example",
    "FinetuneResult",
    "LoraRecipe",
    "RewriteEval",
    "answer_loss",
    "base_record",
    "check_rewrite_eval",
    "collate",
    "debias_request",
    "debias_template",
    "encode_example",
    "finetune_lora",
    "load_hf_model",
    "rewrite_eval",
    "rewrite_items",
    "train_lora",
]
