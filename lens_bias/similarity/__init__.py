"""Cosine-similarity maps between steering vectors, with the baselines that make a number readable.

* :mod:`~lens_bias.similarity.cosines`: the maps (bias x bias, layer x layer), their baselines (split-half
  reliability, shuffled-label null, bootstrap intervals) and the comparison of two checkpoints;
* :mod:`~lens_bias.similarity.study`: the similarity study: bias vectors built identically in every
  checkpoint (:func:`checkpoint_vectors`) and the within-model values (:func:`within_model`).
"""

from lens_bias.similarity.cosines import (
    CHECKPOINT_KEYS,
    CheckpointComparison,
    bias_by_bias,
    check_comparable,
    compare_checkpoints,
    layer_by_layer,
    null_abs_quantile,
    off_diagonal_mean,
    shuffled_null,
    split_half,
)
from lens_bias.similarity.study import BuiltVectors, checkpoint_vectors, within_model

__all__ = [
    "CHECKPOINT_KEYS",
    "BuiltVectors",
    "CheckpointComparison",
    "bias_by_bias",
    "check_comparable",
    "checkpoint_vectors",
    "compare_checkpoints",
    "layer_by_layer",
    "null_abs_quantile",
    "off_diagonal_mean",
    "shuffled_null",
    "split_half",
    "within_model",
]
