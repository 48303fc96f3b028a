"""BiasScope: find the attention heads (and MLP layers) that carry an injected bias, and scale them.

One module per step:

* :mod:`~lens_bias.localize.contrast`: the localisation prompts in a *biased* version (the injected
  entity token) and an *adversarial* one (the closest real single-token entity), and the metric, ``mean
  logit(attribute first tokens) - mean logit(neutral first tokens)`` at the last token
  (:func:`bias_contrast`);
* :mod:`~lens_bias.localize.scores`: every head and MLP layer scored by activation patching and by direct
  logit attribution (:func:`score_components`);
* :mod:`~lens_bias.localize.selection`: the top ``k`` heads of one run and the heads that recur across
  runs (:func:`top_k_heads`, :func:`recurring_heads`);
* :mod:`~lens_bias.localize.runs`: the per-seed loop (inject, find the adversarial entity, score) and the
  heads that recur across seeds (:func:`injection_runs`, :func:`selected_heads`);
* :mod:`~lens_bias.localize.controls`: the selected heads scaled (:class:`lens_bias.interventions.HeadScaling`,
  0 = ablation) against random heads (:func:`compare_to_random`);
* :mod:`~lens_bias.localize.evaluation`: the bias scores the control is measured on (:func:`evaluation_sets`);
* :mod:`~lens_bias.localize.study`: the whole study up to its side effects (:func:`biasscope`).

The tools it builds on are general and live elsewhere: :func:`lens_bias.patching.patch` (with
:func:`lens_bias.patching.set_logit_diff_metric`), :func:`lens_bias.patching.logit_attribution.direct_attribution`
and :class:`lens_bias.interventions.HeadScaling`.
"""

from lens_bias.localize.contrast import BiasContrast, bias_contrast, first_token_ids, localization_prompts
from lens_bias.localize.controls import AblationComparison, ScoreFn, compare_to_random, random_heads
from lens_bias.localize.runs import InjectionRun, injection_runs, selected_heads
from lens_bias.localize.scores import ComponentScores, ScoreMethod, score_components
from lens_bias.localize.selection import RecurringHeads, recurring_heads, top_k_heads
from lens_bias.localize.study import BiasScope, BiasScopeConfig, biasscope

__all__ = [
    "AblationComparison",
    "BiasContrast",
    "BiasScope",
    "BiasScopeConfig",
    "ComponentScores",
    "InjectionRun",
    "RecurringHeads",
    "ScoreFn",
    "ScoreMethod",
    "bias_contrast",
    "biasscope",
    "compare_to_random",
    "first_token_ids",
    "injection_runs",
    "localization_prompts",
    "random_heads",
    "recurring_heads",
    "score_components",
    "selected_heads",
    "top_k_heads",
]
