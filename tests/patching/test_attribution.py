"""Attribution patching: equal to gradient x activation difference computed through TransformerLens's
own backward hooks, works with frozen weights, and agrees with exact patching; the agreement report."""

from __future__ import annotations

import math

import pytest
import torch

from lens_bias.data.gender_swap import gender_swap_pairs
from lens_bias.patching import TARGETS, PatchResult, agreement, attribution_patch, patch, patching_inputs

from .reference import METRIC, make_pairs


def tl_attribution(model, target: str, clean, corrupted, direction: str) -> torch.Tensor:
    """Raw estimated patched metric via ``run_with_cache`` and TransformerLens backward hooks."""
    spec = TARGETS[target]
    base, source = (corrupted, clean) if direction == "denoising" else (clean, corrupted)
    names = [f"blocks.{layer}.{spec.hook}" for layer in range(model.cfg.n_layers)]
    _, source_cache = model.run_with_cache(source.tokens, names_filter=lambda name: name in names)
    acts, grads = {}, {}

    def keep(activation, hook):
        acts[hook.name] = activation.detach()

    def keep_grad(gradient, hook):
        grads[hook.name] = gradient.detach()

    with model.hooks(fwd_hooks=[(name, keep) for name in names], bwd_hooks=[(name, keep_grad) for name in names]):
        value = METRIC(model(base.tokens), base)
        value.sum().backward()
    model.zero_grad(set_to_none=True)
    dims = {"pos": (-1,), "head": (1, -1), "head_pos": (-1,)}[spec.unit]
    effects = torch.stack([((source_cache[n] - acts[n]) * grads[n]).sum(dims) for n in names], 1)
    return effects + value.detach().reshape(-1, *[1] * (effects.ndim - 1))


@pytest.mark.parametrize(
    "target,direction",
    [
        ("resid_pre", "denoising"),
        ("attn_out", "noising"),
        ("z", "denoising"),
        ("z_pos", "noising"),
        ("k", "denoising"),
        ("v_pos", "denoising"),
    ],
)
def test_attribution_equals_gradient_times_difference(tiny_gqa_model, target, direction):
    clean, corrupted = make_pairs([5, 5], swap_at=[1, 3], seed=11)
    ours = attribution_patch(
        tiny_gqa_model, clean, corrupted, METRIC, target=target, direction=direction, normalize=False
    )
    reference = tl_attribution(tiny_gqa_model, target, clean, corrupted, direction)
    assert ours.method == "attribution" and ours.scores.shape == reference.shape
    assert (ours.scores - reference).abs().max() <= 1e-4
    assert all(p.grad is None for p in tiny_gqa_model.parameters())  # no gradients left on the weights


def test_attribution_with_frozen_weights_and_normalised(tiny_model):
    clean, corrupted = make_pairs([6, 6], swap_at=[2, 2], seed=12)
    trainable = attribution_patch(tiny_model, clean, corrupted, METRIC, target="resid_pre")
    flags = [p.requires_grad for p in tiny_model.parameters()]
    try:
        for p in tiny_model.parameters():
            p.requires_grad_(False)
        frozen = attribution_patch(tiny_model, clean, corrupted, METRIC, target="resid_pre")
    finally:
        for p, flag in zip(tiny_model.parameters(), flags):
            p.requires_grad_(flag)
    assert torch.allclose(trainable.scores, frozen.scores, atol=1e-6)
    # unchanged positions carry no activation difference at layer 0: estimated score exactly 0
    assert trainable.scores[:, 0, [0, 1, 3, 4, 5]].abs().max() == 0
    exact = patch(tiny_model, clean, corrupted, METRIC, target="resid_pre")
    assert torch.allclose(trainable.clean_metric, exact.clean_metric, atol=1e-5)
    assert torch.allclose(trainable.corrupted_metric, exact.corrupted_metric, atol=1e-5)


def _result(scores: torch.Tensor, target: str = "resid_pre", degenerate=None) -> PatchResult:
    n = scores.shape[0]
    return PatchResult(
        scores=scores,
        axes=("pair", "layer", "pos"),
        target=target,
        direction="denoising",
        method="exact",
        layers=list(range(scores.shape[1])),
        normalized=True,
        clean_metric=torch.ones(n),
        corrupted_metric=torch.zeros(n),
        degenerate=torch.zeros(n, dtype=torch.bool) if degenerate is None else degenerate,
        clean_tokens=[["a"] * scores.shape[2]] * n,
        corrupted_tokens=[["b"] * scores.shape[2]] * n,
    )


def test_agreement_report():
    scores = torch.arange(24, dtype=torch.float).reshape(2, 3, 4) / 24
    same = agreement(_result(scores), _result(scores.clone()), k=5)
    assert same["pearson"] == pytest.approx(1) and same["top_k_overlap"] == 1 and same["n_cells"] == 12
    flipped = agreement(_result(scores), _result(-scores), k=5)
    assert flipped["pearson"] == pytest.approx(-1) and flipped["top_k_overlap"] == 1  # |effect| ranks alike
    shifted = scores.clone()
    shifted[:, 0, 0] = -5  # the smallest exact effect now dominates the approximation's ranking
    top = agreement(_result(scores), _result(shifted), k=1)
    assert top["top_k_overlap"] == 0 and top["k"] == 1
    assert agreement(_result(scores), _result(scores), k=100)["k"] == 12  # capped at the number of cells
    padded = scores.clone()
    padded[:, :, 3] = math.nan  # padding cells are skipped
    assert agreement(_result(padded), _result(padded))["n_cells"] == 9
    degenerate = agreement(_result(scores, degenerate=torch.tensor([False, True])), _result(scores))
    assert degenerate["n_pairs"] == 1
    with pytest.raises(ValueError, match="differ in target"):
        agreement(_result(scores), _result(scores, target="attn_out"))
    with pytest.raises(ValueError, match="different shapes"):
        agreement(_result(scores), _result(scores[:1]))


@pytest.mark.slow
def test_attribution_agrees_with_exact_patching_on_smollm(smollm):
    """On the embedded model and a gender swap pair, the linear estimate tracks exact patching of the
    attention heads (measured: Pearson 0.996 over layer x head; 0.999 for attention outputs). It does
    not for the residual stream at early layers (measured 0.76: patching the swapped token's embedding
    is far from linear), which the agreement report shows rather than hides."""
    pair = next(
        p for p in gender_swap_pairs(groups=["occupation-t0"]) if p.id == "gender-swap-occupation-t0-nurse-carpenter"
    )
    inputs = patching_inputs(smollm.tokenizer, [pair])
    layers = list(range(0, smollm.cfg.n_layers, 5))
    exact = patch(smollm, inputs.clean, inputs.corrupted, inputs.metric(), target="z", layers=layers)
    approx = attribution_patch(smollm, inputs.clean, inputs.corrupted, inputs.metric(), target="z", layers=layers)
    report = agreement(exact, approx, k=10)
    assert report["pearson"] > 0.95 and report["top_k_overlap"] >= 0.8, report
