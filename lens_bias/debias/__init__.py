"""Debiasing methods and the scoreboard that compares them on the same items.

* :mod:`~lens_bias.debias.alignez`: self-alignment by representation editing (AlignEZ): the model's own
  preference pairs and their helpful-minus-harmful directions (SVD or CCS);
* :mod:`~lens_bias.debias.rewrites` and :mod:`~lens_bias.debias.lora`: LoRA instruction fine-tuning on
  (biased text -> debiased rewrite) pairs (the SR_LLM recipe), saved as a merged model folder, and the
  evaluation of its rewrites;
* :mod:`~lens_bias.debias.methods`: the registry of debiasing methods, each a config dataclass registered
  by name whose ``fit`` gives a :class:`Candidate` (a model plus interventions), fitted once, saved and reused;
* :mod:`~lens_bias.debias.scoreboard`: every candidate against the unintervened model on the same items,
  bias removed against capability kept, with paired intervals (its figures: :mod:`lens_bias.figures.debias`).
"""

from lens_bias.debias.alignez import PreferenceData, alignez_subspace, load_or_generate, self_generated_pairs
from lens_bias.debias.lora import FinetuneResult, LoraRecipe, RewriteEval, finetune_lora, rewrite_eval
from lens_bias.debias.methods import REGISTRY, Candidate, FitContext, MethodConfig, method, register, reuse_or_fit
from lens_bias.debias.rewrites import RewritePair, load_rewrite_pairs, split_rewrites
from lens_bias.debias.scoreboard import bias_removed, evaluate, markdown_table

__all__ = [
    "REGISTRY",
    "Candidate",
    "FinetuneResult",
    "FitContext",
    "LoraRecipe",
    "MethodConfig",
    "PreferenceData",
    "RewriteEval",
    "RewritePair",
    "alignez_subspace",
    "bias_removed",
    "evaluate",
    "finetune_lora",
    "load_or_generate",
    "load_rewrite_pairs",
    "markdown_table",
    "method",
    "register",
    "reuse_or_fit",
    "rewrite_eval",
    "self_generated_pairs",
    "split_rewrites",
]
