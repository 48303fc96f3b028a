"""Similarity maps, their baselines, and the cross-checkpoint comparison on two real local checkpoints."""

from __future__ import annotations

import pytest
import torch

from lens_bias.data.records import ContrastPair
from lens_bias.directions import SteeringVector
from lens_bias.models import load_model
from lens_bias.similarity import (
    bias_by_bias,
    check_comparable,
    compare_checkpoints,
    layer_by_layer,
    off_diagonal_mean,
    shuffled_null,
    split_half,
)
from lens_bias.steering import ContrastActivations, build_vector, contrast_activations


def _acts(diffs: torch.Tensor) -> ContrastActivations:
    neg = torch.zeros_like(diffs)
    return ContrastActivations(diffs, neg, tuple(range(diffs.shape[1])), "resid_post", {"kind": "test"})


def _vec(name, directions, method="mean_difference"):
    return SteeringVector(
        name, tuple(range(len(directions))), directions, torch.ones(len(directions)), provenance={"method": method}
    )


def test_bias_by_bias_and_layer_by_layer_values():
    a = _vec("a", torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    b = _vec("b", torch.tensor([[0.0, 1.0], [-1.0, -1.0]]))
    matrix = bias_by_bias({"a": a, "b": b})
    assert matrix.shape == (2, 2, 2)
    assert torch.allclose(matrix[0], torch.tensor([[1.0, 0.0], [0.0, 1.0]]), atol=1e-6)
    assert matrix[1, 0, 1] == pytest.approx(-1.0)
    pcs = bias_by_bias({"a": _vec("a", a.directions, "first_pc"), "b": _vec("b", b.directions, "first_pc")})
    assert pcs[1, 0, 1] == pytest.approx(1.0)  # sign-invariant for principal components
    assert layer_by_layer(a)[0, 1] == pytest.approx(2**-0.5, abs=1e-6)
    with pytest.raises(ValueError, match="at least two"):
        bias_by_bias({"a": a})


def test_split_half_and_shuffled_null_baselines():
    torch.manual_seed(0)
    signal = torch.randn(1, 3, 16) / 4  # norm ~1; per-pair noise norm ~4, as in real residual differences
    reliable = _acts(signal + torch.randn(400, 3, 16))
    noise = _acts(torch.randn(400, 3, 16))
    assert (split_half(reliable) > 0.7).all()
    assert (split_half(noise).abs() < 0.4).all()
    other = _acts(signal + torch.randn(400, 3, 16))
    null = shuffled_null(reliable, other, n_draws=40)
    real = bias_by_bias({"a": build_vector("a", reliable), "b": build_vector("b", other)})[:, 0, 1]
    assert null.shape == (40, 3)
    assert null.abs().mean() < 0.3 and (real > 0.8).all()  # labels carry the shared signal
    assert (real > null.abs().quantile(0.95, dim=0)).all()
    estimates = off_diagonal_mean({"a": reliable, "b": other}, n_resamples=100)
    assert all(e.low <= e.value <= e.high for e in estimates)
    assert torch.allclose(torch.tensor([e.value for e in estimates]), real, atol=1e-5)


def test_check_comparable_names_the_difference():
    base = {"method": "mean_difference", "source": {"position": "last"}, "model": {"name": "a", "dtype": "float32"}}
    a = SteeringVector("g", (1,), torch.ones(1, 4), torch.ones(1), provenance=base)
    other_model = SteeringVector(
        "g", (1,), torch.ones(1, 4), torch.ones(1), provenance={**base, "model": {"name": "b", "dtype": "float32"}}
    )
    check_comparable(a, other_model)  # only the checkpoint differs: fine
    other_readout = SteeringVector(
        "g", (1,), torch.ones(1, 4), torch.ones(1), provenance={**base, "source": {"position": "mean_from_difference"}}
    )
    with pytest.raises(ValueError, match=r"source.position"):
        check_comparable(a, other_readout)
    other_dtype = SteeringVector(
        "g", (1,), torch.ones(1, 4), torch.ones(1), provenance={**base, "model": {"name": "b", "dtype": "float16"}}
    )
    with pytest.raises(ValueError, match=r"model.dtype"):
        check_comparable(a, other_dtype)


def _pairs(bias, words):
    return [
        ContrastPair(
            id=f"{bias}{i}",
            bias_type=bias,
            target=t,
            prompt=f"The {t} said that",
            positive=f" {words[0]} was tired.",
            negative=f" {words[1]} was tired.",
            source="test",
        )
        for i, t in enumerate(["nurse", "engineer", "pilot", "teacher", "driver", "cook", "judge", "clerk"])
    ]


def test_compare_two_local_checkpoints(tiny_llama_dir, tmp_path):
    """A tiny model and a briefly fine-tuned copy of it, both saved as local HF folders."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    optimizer = torch.optim.SGD(hf.parameters(), lr=0.5)
    ids = torch.tensor([tokenizer("The nurse walked in and she smiled. People from Italy drive.").input_ids])
    for _ in range(5):
        loss = hf(ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    tuned_dir = tmp_path / "tiny-llama-2-tuned"
    hf.save_pretrained(tuned_dir)
    tokenizer.save_pretrained(tuned_dir)

    models = {"base": load_model(str(tiny_llama_dir), device="cpu"), "tuned": load_model(str(tuned_dir), device="cpu")}
    sets = {"gender": _pairs("gender", ("she", "he")), "religion": _pairs("religion", ("they", "we"))}
    vectors, activations = {}, {}
    for key, model in models.items():
        activations[key] = {bias: contrast_activations(model, pairs, [1, 3]) for bias, pairs in sets.items()}
        vectors[key] = {
            bias: build_vector(bias, acts, model=model, items=sets[bias], dataset=bias, seed=0)
            for bias, acts in activations[key].items()
        }
    result = compare_checkpoints(
        vectors["base"], vectors["tuned"], activations["base"], activations["tuned"], n_resamples=50
    )
    assert result.layers == (1, 3)
    for values in result.self_similarity.values():
        assert all(0.0 < v < 1.0 + 1e-6 for v in values)  # the copy moved, but not to an unrelated place
    for a, b, d in zip(result.off_diagonal_a, result.off_diagonal_b, result.difference):
        assert d.value == pytest.approx(b.value - a.value, abs=1e-5) and d.low <= d.value <= d.high
    mismatched = build_vector(
        "gender",
        contrast_activations(models["tuned"], sets["gender"], [1, 3], readout="mean_from_difference"),
        model=models["tuned"],
        items=sets["gender"],
        dataset="gender",
        seed=0,
    )
    with pytest.raises(ValueError, match=r"source.position"):
        compare_checkpoints(
            vectors["base"],
            {**vectors["tuned"], "gender": mismatched},
            activations["base"],
            activations["tuned"],
            n_resamples=10,
        )
