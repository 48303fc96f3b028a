"""Debiasing methods and the scoreboard that compares them on the same items.

* :mod:`~lens_bias.debias.alignez`: self-alignment by representation editing (AlignEZ): the model's own
  preference pairs and their helpful-minus-harmful directions (SVD or CCS);
* :mod:`~lens_bias.debias.rewrites` and :mod:`~lens_bias.debias.lora`: LoRA instruction fine-tuning on
  (biased text -> debiased rewrite) pairs (the SR_LLM recipe), saved as a merged model folder, and the
  evaluation of its rewrites;
* :mod:`~lens_bias.debias.methods`: every method as a :class:`Candidate` (a model plus interventions),
  fitted once, saved and reused;
* :mod:`~lens_bias.debias.scoreboard`: every candidate against the unintervened model on the same items,
  bias removed against capability kept, with paired intervals.
"""

from lens_bias.debias.alignez import PreferenceData, alignez_subspace, load_or_generate, self_generated_pairs
from lens_bias.debias.lora import FinetuneResult, LoraRecipe, RewriteEval, finetune_lora, rewrite_eval
from lens_bias.debias.methods import (
    Candidate,
    alignez_candidate,
    finetune_candidate,
    head_ablation_candidate,
    redteam_candidate,
    reuse_or_fit,
    steering_candidate,
)
from lens_bias.debias.rewrites import RewritePair, load_rewrite_pairs, split_rewrites
from lens_bias.debias.scoreboard import bias_removed, evaluate, markdown_table, pareto_front

__all__ = [
    "Candidate",
    "FinetuneResult",
    "LoraRecipe",
    "PreferenceData",
    "RewriteEval",
    "RewritePair",
    "alignez_candidate",
    "alignez_subspace",
    "bias_removed",
    "evaluate",
    "finetune_candidate",
    "finetune_lora",
    "head_ablation_candidate",
    "load_or_generate",
    "load_rewrite_pairs",
    "markdown_table",
    "pareto_front",
    "redteam_candidate",
    "reuse_or_fit",
    "rewrite_eval",
    "self_generated_pairs",
    "split_rewrites",
    "steering_candidate",
]
