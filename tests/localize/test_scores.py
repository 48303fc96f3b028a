"""BiasScope component scores: shapes, the metrics of both runs, direct attributions that account for the gap."""

from __future__ import annotations

import pytest
import torch

from lens_bias.localize import bias_contrast, score_components
from lens_bias.patching.logit_attribution import direct_attribution

from .tiny import TINY_SPEC


def test_score_components_shapes_and_metrics(tiny_injected):
    contrast = bias_contrast(tiny_injected, TINY_SPEC, "Italy")
    scores = score_components(tiny_injected, contrast)
    n, layers, heads = len(contrast.templates), tiny_injected.cfg.n_layers, tiny_injected.cfg.n_heads
    assert scores.patching_heads.shape == scores.dla_heads.shape == (n, layers, heads)
    assert scores.patching_mlp.shape == scores.dla_mlp.shape == (n, layers)
    assert scores.heads("patching").shape == (layers, heads) and scores.mlp("dla").shape == (layers,)
    biased = direct_attribution(tiny_injected, contrast.biased, contrast.attribute_ids, contrast.neutral_ids)
    adversarial = direct_attribution(tiny_injected, contrast.adversarial, contrast.attribute_ids, contrast.neutral_ids)
    assert torch.allclose(scores.biased_metric, biased.metric, atol=1e-4)
    assert torch.allclose(scores.adversarial_metric, adversarial.metric, atol=1e-4)
    # direct attributions of the two runs account for the whole gap
    gap = biased.total() - adversarial.total()
    assert torch.allclose(gap, scores.biased_metric - scores.adversarial_metric, atol=1e-4)
    assert torch.isfinite(scores.patching_heads).all()
    with pytest.raises(ValueError, match="Unknown score method"):
        scores.heads("probe")
