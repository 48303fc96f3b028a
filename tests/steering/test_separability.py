"""Held-out separability (AUC on the vector) and PCA views."""

import pytest
import torch

from lens_bias.steering import ContrastActivations, build_vector
from lens_bias.steering.separability import best_layer, effect_size, pca_2d, separability


def _acts(pos, neg):
    return ContrastActivations(pos, neg, (0, 1), "resid_post", {"kind": "test"})


def test_separability_picks_the_layer_that_separates():
    torch.manual_seed(0)
    neg = torch.randn(100, 2, 8)
    pos = neg.clone() + torch.randn(100, 2, 8) * 0.01
    pos[:, 1, 0] += 3.0  # only layer 1 carries the contrast
    vector = build_vector("v", _acts(pos[:50], neg[:50]))
    scores = separability(vector, _acts(pos[50:], neg[50:]))
    assert scores[1] > 0.95 and scores[0] < 0.8
    assert best_layer(scores) == 1
    assert best_layer({3: 0.9, 1: 0.9, 2: 0.5}) == 1  # ties: the earliest
    assert best_layer({3: 0.9, 1: 0.9, 2: 0.5}, tie_break={3: 2.0, 1: 1.0, 2: 9.0}) == 3  # then the larger effect
    with pytest.raises(ValueError, match="layers"):
        separability(vector, ContrastActivations(pos, neg, (0, 2), "resid_post", {}))


def test_effect_size_breaks_saturated_separability():
    torch.manual_seed(0)
    neg = torch.randn(100, 2, 8)
    pos = neg + torch.randn(100, 2, 8) * 0.1
    pos[:, 0, 0] += 2.0  # both layers separate perfectly, layer 1 with a 3x larger margin
    pos[:, 1, 0] += 6.0
    vector = build_vector("v", _acts(pos[:50], neg[:50]))
    held_out = _acts(pos[50:], neg[50:])
    auc, effect = separability(vector, held_out), effect_size(vector, held_out)
    assert auc == {0: 1.0, 1: 1.0}
    assert effect[1] > 2 * effect[0] > 0
    assert best_layer(auc) == 0 and best_layer(auc, tie_break=effect) == 1
    with pytest.raises(ValueError, match="2 held-out pairs"):
        effect_size(vector, _acts(pos[:1], neg[:1]))


def test_pca_2d_separates_sides_on_the_first_component():
    torch.manual_seed(0)
    neg = torch.randn(40, 2, 8)
    pos = neg + torch.tensor([5.0] + [0.0] * 7)
    coords, is_positive = pca_2d(_acts(pos, neg), layer=0)
    assert coords.shape == (80, 2) and is_positive.sum() == 40 and bool(is_positive[:40].all())
    first = coords[:, 0]
    assert (first[is_positive].mean() - first[~is_positive].mean()).abs() > 4.0
