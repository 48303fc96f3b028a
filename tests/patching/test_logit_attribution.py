"""Direct logit attribution: the direct contributions sum to the metric."""

from __future__ import annotations

import pytest
import torch

from lens_bias.patching.logit_attribution import direct_attribution
from lens_bias.prompts import tokenize


@pytest.mark.parametrize("fixture", ["tiny_model", "tiny_gqa_model"])
def test_direct_attribution_sums_to_the_metric(fixture, request):
    model = request.getfixturevalue(fixture)
    batch = tokenize(model.tokenizer, ["People from Italy drive", "The nurse walked in and"], add_start=True)
    dla = direct_attribution(model, batch, torch.tensor([5, 7]), torch.tensor([9, 11, 13]), batch_size=1)
    assert dla.heads.shape == (2, model.cfg.n_layers, model.cfg.n_heads)
    assert dla.mlp.shape == (2, model.cfg.n_layers)
    assert torch.allclose(dla.total(), dla.metric, atol=1e-4)
