"""Data: record types, split and sample helpers, the StereoSet / CrowS-Pairs / BBQ loaders and named contrasts.

The project's own prompt sets are in their modules (:mod:`~lens_bias.data.gender_prompts`,
:mod:`~lens_bias.data.refusal`, :mod:`~lens_bias.data.injection_specs`, :mod:`~lens_bias.data.neutral`,
:mod:`~lens_bias.data.gender_swap`), read from the package resource files in ``lens_bias/data/resources/``.
"""

from lens_bias.data.bbq import CATEGORIES as BBQ_CATEGORIES
from lens_bias.data.bbq import BBQItem, bbq_bias_scores, load_bbq
from lens_bias.data.contrast_splits import CONTRASTS, ContrastSplit, contrast_split, own_splits
from lens_bias.data.crows_pairs import BIAS_TYPES as CROWS_BIAS_TYPES
from lens_bias.data.crows_pairs import CrowsPair, crows_pairs_contrast, crows_pairs_score, load_crows_pairs
from lens_bias.data.records import ABItem, ContrastPair, fingerprint, split_by_target, to_ab_items
from lens_bias.data.sampling import sample
from lens_bias.data.source import DataNotFoundError, benchmark_dir, benchmark_file, data_root
from lens_bias.data.stereoset import BIAS_TYPES as STEREOSET_BIAS_TYPES
from lens_bias.data.stereoset import (
    StereoSetItem,
    StereoSetScore,
    load_stereoset,
    stereoset_pairs,
    stereoset_scores,
)
from lens_bias.data.tables import load_bbq_items, load_pairs, load_sentence_pairs

__all__ = [
    "BBQ_CATEGORIES",
    "CONTRASTS",
    "CROWS_BIAS_TYPES",
    "STEREOSET_BIAS_TYPES",
    "ABItem",
    "BBQItem",
    "ContrastPair",
    "ContrastSplit",
    "CrowsPair",
    "DataNotFoundError",
    "StereoSetItem",
    "StereoSetScore",
    "bbq_bias_scores",
    "benchmark_dir",
    "benchmark_file",
    "contrast_split",
    "crows_pairs_contrast",
    "crows_pairs_score",
    "data_root",
    "fingerprint",
    "load_bbq",
    "load_bbq_items",
    "load_crows_pairs",
    "load_pairs",
    "load_sentence_pairs",
    "load_stereoset",
    "own_splits",
    "sample",
    "split_by_target",
    "stereoset_pairs",
    "stereoset_scores",
    "to_ab_items",
]
