"""Layer validation against a model."""

from __future__ import annotations

import pytest

from lens_bias.models import check_layers


def test_check_layers(tiny_model):
    assert check_layers(tiny_model, [0, -1]) == [0, 3]
    with pytest.raises(ValueError, match=r"layers 0..3"):
        check_layers(tiny_model, 4)
    with pytest.raises(ValueError, match="No layers"):
        check_layers(tiny_model, [])
