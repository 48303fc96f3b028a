"""Activation patching over clean/corrupted prompt pairs: exact (batched, from cached activations) and
attribution patching (gradient x activation difference), with a measure of how well the two agree.

Setup. A *clean* prompt and a *corrupted* prompt differ in one detail (a demographic term swapped for a
counterpart of the same token length); a metric (e.g. :func:`logit_diff_metric`: logit of the answer the
clean prompt's stereotype predicts minus logit of the other answer) is high on the clean run and low on
the corrupted run. Patching one activation from one run into the other shows how much of the difference
that activation carries, in one of two directions: ``"denoising"`` (clean activation into the corrupted
run: is it sufficient?) or ``"noising"`` (corrupted activation into the clean run: is it necessary?).
Scores are normalised so that 1 = the clean run's metric and 0 = the corrupted run's.

Modules, one concept each:

* :mod:`~lens_bias.patching.metrics`: what a forward is scored by (the :data:`Metric` type, the
  :class:`PositionMetric` protocol, logit differences of tokens or token sets, continuation log-prob);
* :mod:`~lens_bias.patching.result`: directions, targets (hook, unit, axes), normalisation and
  :class:`PatchResult`;
* :mod:`~lens_bias.patching.exact`: :func:`patch`, exact activation patching, and how it is fast;
* :mod:`~lens_bias.patching.attribution`: :func:`attribution_patch` and :func:`agreement`;
* :mod:`~lens_bias.patching.inputs`: pairs tokenized for patching (:func:`patching_inputs`,
  :func:`minimal_pair_inputs`);
* :mod:`~lens_bias.patching.screening`: which pairs show the behaviour (:func:`screen_pairs`) and the
  study's pair sets by name (:func:`select_pairs`: :func:`select_gender_swap_pairs`, :func:`select_crows_pairs`);
* :mod:`~lens_bias.patching.study`: every target of selected pairs patched both ways (:func:`patch_targets`);
* :mod:`~lens_bias.patching.bench`: timing and memory of a sweep, against TransformerLens's own patching;
* :mod:`~lens_bias.patching.checks`: the pieces exact and attribution patching share.
"""

from lens_bias.patching.attribution import agreement, attribution_patch
from lens_bias.patching.exact import patch
from lens_bias.patching.inputs import MinimalPairInputs, PatchingInputs, minimal_pair_inputs, patching_inputs
from lens_bias.patching.metrics import (
    ContinuationLogProb,
    LogitDiff,
    Metric,
    PositionMetric,
    SetLogitDiff,
    logit_diff_metric,
    set_logit_diff_metric,
)
from lens_bias.patching.result import DIRECTIONS, MIN_GAP, TARGETS, Direction, PatchResult, Target
from lens_bias.patching.screening import (
    Screening,
    metric_gaps,
    screen_pairs,
    select_crows_pairs,
    select_gender_swap_pairs,
    select_pairs,
)
from lens_bias.patching.study import METRIC_NAMES, patch_targets, patching_items, x_labels

__all__ = [
    "DIRECTIONS",
    "METRIC_NAMES",
    "MIN_GAP",
    "TARGETS",
    "ContinuationLogProb",
    "Direction",
    "LogitDiff",
    "Metric",
    "MinimalPairInputs",
    "PatchResult",
    "PatchingInputs",
    "PositionMetric",
    "Screening",
    "SetLogitDiff",
    "Target",
    "agreement",
    "attribution_patch",
    "logit_diff_metric",
    "metric_gaps",
    "minimal_pair_inputs",
    "patch",
    "patch_targets",
    "patching_inputs",
    "patching_items",
    "screen_pairs",
    "select_crows_pairs",
    "select_gender_swap_pairs",
    "select_pairs",
    "set_logit_diff_metric",
    "x_labels",
]
