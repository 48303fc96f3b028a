"""TRANSITION shim: named contrast splits moved to :mod:`lens_bias.data.contrast_splits`."""

from lens_bias.data.contrast_splits import CONTRASTS, ContrastSplit, contrast_split

__all__ = ["CONTRASTS", "ContrastSplit", "contrast_split"]
