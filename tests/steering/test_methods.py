"""Direction methods by registered name: the registries hold the four methods, a lookup by an unknown name
names the known ones, and building by name gives exactly what the method functions give."""

from __future__ import annotations

from typing import get_args

import pytest
import torch

from lens_bias.errors import InputError
from lens_bias.steering import (
    CCSConfig,
    SVDConfig,
    build_subspace,
    build_vector,
    ccs_subspace,
    subspace_config,
    svd_subspace,
    vector_method,
)
from lens_bias.steering.methods import SUBSPACE_METHODS, VECTOR_METHODS, Method

from .pairs import acts


def _paired(n: int = 12, d: int = 6, layers: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    negative = torch.randn(n, layers, d, generator=generator)
    return negative + 0.5 + torch.randn(n, layers, d, generator=generator), negative


def test_the_registries_hold_the_vector_and_subspace_methods():
    assert set(VECTOR_METHODS) == {"mean_difference", "first_pc"} == set(get_args(Method))
    assert set(SUBSPACE_METHODS) == {"svd", "ccs"}
    assert SUBSPACE_METHODS["svd"].config is SVDConfig and SUBSPACE_METHODS["ccs"].config is CCSConfig


def test_an_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(InputError, match="Unknown vector method 'pca': use one of 'first_pc', 'mean_difference'"):
        vector_method("pca")
    with pytest.raises(InputError, match="Unknown vector method 'pca'"):
        build_vector("g", acts(*_paired(), layers=(1, 3)), method="pca")
    with pytest.raises(InputError, match="Unknown subspace method 'lda': use one of 'ccs', 'svd'"):
        build_subspace(acts(*_paired(), layers=(1, 3)), "lda")
    with pytest.raises(InputError, match="no setting variance: its settings are"):
        subspace_config("ccs", variance=0.5)
    with pytest.raises(InputError, match="takes a SVDConfig, got CCSConfig"):
        build_subspace(acts(*_paired(), layers=(1, 3)), "svd", CCSConfig())


def test_vector_methods_by_name_give_the_method_functions_directions():
    positive, negative = _paired()
    activations = acts(positive, negative, layers=(1, 3))
    differences = positive - negative
    for name in ("mean_difference", "first_pc"):
        vector = build_vector("g", activations, method=name)
        assert torch.equal(vector.directions, VECTOR_METHODS[name](differences))
        assert vector.provenance["method"] == name
    assert torch.equal(VECTOR_METHODS["mean_difference"](differences), differences.mean(0))


def test_subspace_methods_by_name_give_the_functions_subspaces():
    activations = acts(*_paired(), layers=(1, 3))
    by_name = build_subspace(activations, "svd", subspace_config("svd", variance=0.5))
    direct = svd_subspace(activations, variance=0.5)
    assert all(torch.equal(by_name.bases[layer], direct.bases[layer]) for layer in (1, 3))
    assert build_subspace(activations, "svd").variance == SVDConfig().variance
    config = CCSConfig(seed=1, n_tries=2, epochs=5)
    by_name = build_subspace(activations, "ccs", config)
    direct = ccs_subspace(activations, seed=1, n_tries=2, epochs=5)
    assert all(torch.equal(by_name.bases[layer], direct.bases[layer]) for layer in (1, 3))
    assert by_name.provenance == direct.provenance
