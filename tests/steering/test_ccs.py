"""CCS directions: the loss formula by hand, the known direction of synthetic pairs, determinism, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from lens_bias.errors import InputError
from lens_bias.steering import ccs_loss, ccs_subspace

from .pairs import acts

D = 32


def _synthetic(seed: int, n: int = 200, *, varying_labels: bool = True):
    """Pairs whose contrast lives on the unit direction ``u`` (dims 0-3, small nuisance) while the other
    dims carry 10x larger Gaussian nuisance shared by both sides of a pair.

    ``varying_labels``: CCS's own setting, a label y = +-1 per pair (x+ carries +y u, x- carries -y u) plus
    an offset that makes the mean difference point to +u (so the sign is defined). Otherwise the
    self-alignment setting: every positive side is the "good" one, by a varying amount a > 0."""
    g = torch.Generator().manual_seed(seed)
    u = torch.zeros(D)
    u[:4] = 0.5
    scale = torch.full((D,), 3.0)
    scale[:4] = 0.3
    shared = torch.randn(n, D, generator=g) * scale
    if varying_labels:
        amount = torch.randint(0, 2, (n,), generator=g).float() * 2 - 1 + 0.5
    else:
        amount = 1.0 + torch.rand(n, generator=g)
    pos = shared + 0.3 * torch.randn(n, D, generator=g) + amount[:, None] * u
    neg = shared + 0.3 * torch.randn(n, D, generator=g) - amount[:, None] * u
    return pos, neg, u


def test_loss_by_hand():
    p_pos, p_neg = torch.tensor([0.9, 0.2]), torch.tensor([0.3, 0.6])
    # consistency: ((0.9 - 0.7)^2 + (0.2 - 0.4)^2) / 2 = 0.04; confidence: (0.3^2 + 0.2^2) / 2 = 0.065
    assert float(ccs_loss(p_pos, p_neg)) == pytest.approx(0.105)
    assert float(ccs_loss(torch.full((3,), 0.5), torch.full((3,), 0.5))) == pytest.approx(0.25)
    assert float(ccs_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))) == 0.0


@pytest.mark.parametrize("varying_labels", [True, False])
def test_finds_the_known_direction_with_the_right_sign(varying_labels):
    pos, neg, u = _synthetic(0, varying_labels=varying_labels)
    subspace = ccs_subspace(acts(pos[:, None], neg[:, None]))
    (direction,) = subspace.bases[0]
    assert subspace.bases[0].shape == (1, D) and float(direction.norm()) == pytest.approx(1.0, abs=1e-5)
    assert float(direction @ u) > 0.9  # |cos| > 0.9 and the positive side projects positive
    assert float(direction @ (pos - neg).mean(0)) > 0
    (layer,) = subspace.provenance["per_layer"]
    assert layer["layer"] == 0 and layer["loss"] < 0.2
    # accuracy = share of pairs the direction orders positive-over-negative, in residual units
    assert layer["accuracy"] == pytest.approx(float(((pos - neg) @ direction > 0).float().mean()))
    if not varying_labels:
        assert layer["accuracy"] == 1.0
    share = float(((pos - neg) @ direction).pow(2).sum() / (pos - neg).pow(2).sum())
    assert layer["explained"] == pytest.approx(share, rel=1e-4) and subspace.variance == pytest.approx(share, rel=1e-4)
    # swapping the sides flips the direction (the sign follows the mean difference)
    flipped = ccs_subspace(acts(neg[:, None], pos[:, None]))
    assert float(flipped.bases[0][0] @ u) < -0.9


def test_seeded_deterministic_and_per_layer():
    pos, neg, u = _synthetic(1, n=120)
    noise = torch.randn(2, 120, D, generator=torch.Generator().manual_seed(2))  # layer 1: no contrast at all
    activations = acts(torch.stack([pos, noise[0]], 1), torch.stack([neg, noise[1]], 1), layers=(3, 7))
    first = ccs_subspace(activations, seed=5, epochs=300)
    again = ccs_subspace(activations, seed=5, epochs=300)
    assert all(torch.equal(first.bases[layer], again.bases[layer]) for layer in (3, 7))
    assert first.provenance == again.provenance
    assert list(first.bases) == [3, 7] and first.hook == "resid_post"
    signal, noise_layer = first.provenance["per_layer"]
    assert signal["layer"] == 3 and noise_layer["layer"] == 7
    assert abs(float(first.bases[3][0] @ u)) > 0.9
    assert signal["accuracy"] > noise_layer["accuracy"] and signal["loss"] < noise_layer["loss"]
    other = ccs_subspace(activations, seed=6, epochs=300)
    assert abs(float(other.bases[3][0] @ u)) > 0.9  # another seed: other starts, the same direction
    provenance = json.loads(json.dumps(first.provenance))  # JSON-able as saved
    assert provenance["method"] == "ccs" and provenance["seed"] == 5 and provenance["n_pairs"] == 120


def test_one_pair_is_too_few():
    with pytest.raises(InputError, match="at least 2 pairs"):
        ccs_subspace(acts(torch.randn(1, 1, 4), torch.randn(1, 1, 4)))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_tries": 0}, "n_tries"), ({"epochs": 0}, "epochs"), ({"lr": 0.0}, "lr"), ({"weight_decay": -1.0}, "weight_")],
)
def test_bad_settings(kwargs, match):
    with pytest.raises(InputError, match=match):
        ccs_subspace(acts(torch.randn(4, 1, 4), torch.randn(4, 1, 4)), **kwargs)
