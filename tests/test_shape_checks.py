"""The run-time shape checks of the tests (``shape_checks``): functions with array annotations are checked, the
others are left undecorated (no per-call cost)."""

from __future__ import annotations

import pytest
import torch

from lens_bias import stats
from lens_bias.directions.vector import SteeringVector


def test_a_function_with_array_annotations_is_checked():
    vector = SteeringVector("v", (0, 1), torch.zeros(2, 4), torch.ones(2))
    assert hasattr(SteeringVector.at, "__wrapped__")  # jaxtyping's wrapper
    assert vector.at(1).shape == (4,)
    vector.directions = torch.zeros(2, 4, dtype=torch.long)  # no longer Float: only the shape check can tell
    with pytest.raises(Exception, match="return value"):
        vector.at(1)


def test_a_function_without_array_annotations_is_left_undecorated():
    assert not hasattr(stats.wilson, "__wrapped__")
    assert stats.wilson(3, 6).n == 6
