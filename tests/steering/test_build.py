"""Building vectors from paired activations: mean difference, first principal component, SVD subspace."""

from __future__ import annotations

import torch

from lens_bias.interventions import ForwardContext, SubspaceEdit
from lens_bias.steering import build_vector, contrast_activations, svd_subspace

from .pairs import PAIRS
from .pairs import acts as _acts


def test_mean_difference_is_the_mean_of_paired_differences(tiny_model):
    acts = contrast_activations(tiny_model, PAIRS, [1, 3])
    vector = build_vector("g", acts, model=tiny_model, items=PAIRS, dataset="test")
    assert torch.allclose(vector.directions, (acts.positive - acts.negative).mean(0), atol=1e-6)
    assert vector.provenance["model"]["kind"] == "hf-folder" and vector.provenance["data_fingerprint"]
    assert torch.allclose(vector.residual_norms, torch.cat([acts.positive, acts.negative]).norm(dim=-1).mean(0))


def test_first_pc_is_centred_and_signed():
    torch.manual_seed(0)
    axis = torch.tensor([1.0, 0.0, 0.0])
    spread = torch.randn(200, 1) * 3.0  # large variance along axis...
    offset = torch.tensor([0.0, 5.0, 0.0])  # ...and a large mean difference along another axis
    neg = torch.randn(200, 3) * 0.01
    pos = neg + spread * axis + offset + 0.2 * axis
    vector = build_vector("pc", _acts(pos[:, None], neg[:, None]), method="first_pc")
    direction = vector.directions[0] / vector.directions[0].norm()
    # centring removes the mean offset, so the component is the spread axis, not the mean direction
    assert abs(float(direction @ axis)) > 0.99
    assert float(vector.directions[0] @ (pos - neg).mean(0)) > 0  # positive side projects positive
    flipped = build_vector("pc", _acts(neg[:, None], pos[:, None]), method="first_pc")
    assert torch.allclose(flipped.directions, -vector.directions, atol=1e-5)


def test_svd_subspace_and_edit_rules():
    torch.manual_seed(0)
    neg = torch.randn(50, 1, 8)
    pos = neg.clone()
    pos[:, 0, 0] += 3.0 + 0.1 * torch.randn(50)  # the differences live on axis 0
    subspace = svd_subspace(_acts(pos, neg), variance=0.9)
    basis = subspace.bases[0]
    assert basis.shape[0] == 1 and basis[0, 0] > 0.99
    x = torch.randn(2, 3, 8)
    context = ForwardContext(None)  # the edit reads no positions
    tiny = type(
        "M", (), {"cfg": type("C", (), {"n_layers": 1, "device": "cpu", "dtype": torch.float32, "model_name": "m"})()}
    )()
    ((_, boost),) = SubspaceEdit(subspace, "boost").hooks(tiny, context)
    ((_, remove),) = SubspaceEdit(subspace, "remove").hooks(tiny, context)
    c = x @ basis[0]
    assert torch.allclose(boost(x, None), x + torch.tanh(c)[..., None] * basis[0], atol=1e-6)
    assert torch.allclose(remove(x, None), x - torch.relu(c)[..., None] * basis[0], atol=1e-6)
