"""Fixtures of the BiasScope tests: the tiny model with the tiny spec's entity token added."""

from __future__ import annotations

import pytest
import torch

from lens_bias.localize.inject import add_token

from .tiny import TINY_SPEC


@pytest.fixture(scope="module")
def tiny_injected(tiny_model):
    vector = torch.randn(tiny_model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    return add_token(tiny_model, TINY_SPEC.entity_token, vector)
