"""Steering vectors: arithmetic, normalisation and persistence."""

from __future__ import annotations

import pytest
import torch

from lens_bias.directions import SteeringVector, mean_norm_across
from lens_bias.errors import InputError


def test_arithmetic_normalisation_and_persistence(tmp_path):
    a = SteeringVector("a", (2, 5), torch.tensor([[3.0, 4.0], [0.0, 2.0]]), torch.tensor([10.0, 20.0]))
    b = SteeringVector("b", (2, 5), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([10.0, 20.0]))
    assert torch.allclose((a + b).directions, torch.tensor([[4.0, 4.0], [0.0, 3.0]]))
    assert torch.allclose((2 * a - b).directions, torch.tensor([[5.0, 8.0], [0.0, 3.0]]))
    assert torch.allclose(a.normalized(1.0).norms(), torch.ones(2))
    assert torch.allclose(mean_norm_across([a, b]), torch.tensor([3.0, 1.5]))
    assert a.relative_multiplier(2.0, 2) == pytest.approx(1.0)  # 2 * 5 / 10
    path = a.save(tmp_path / "vec")
    loaded = SteeringVector.load(path)
    assert loaded.layers == a.layers and torch.equal(loaded.directions, a.directions)
    with pytest.raises(ValueError, match="differ in layers"):
        a + SteeringVector("c", (1, 5), torch.zeros(2, 2), torch.ones(2))
    with pytest.raises(ValueError, match="no direction at layer 3"):
        a.at(3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_vector_with_nan_or_inf_is_refused(bad):
    directions = torch.ones(2, 4)
    directions[1, 2] = bad
    with pytest.raises(InputError, match="NaN or infinite values: refit it"):
        SteeringVector("v", (0, 1), directions, torch.ones(2))
