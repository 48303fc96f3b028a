"""Patching metrics: the continuation log-probability (the same sum as the readouts), the logit difference
of token sets (a position metric: patching reads one position and gets the same scores)."""

from __future__ import annotations

import pytest
import torch

from lens_bias.forward.readouts import batch_logprobs
from lens_bias.patching import ContinuationLogProb, SetLogitDiff, patch, set_logit_diff_metric
from lens_bias.prompts import PromptBatch, continuation_batch, tokenize

from .reference import ATOL, TL_FUNCTIONS, make_pairs


def closure_set_logit_diff(positive_ids, negative_ids, position: str = "last"):
    """The set metric as BiasScope had it before it became a position metric (a plain closure): the
    reference the :class:`SetLogitDiff` must reproduce exactly."""
    positive, negative = torch.as_tensor(positive_ids).long(), torch.as_tensor(negative_ids).long()

    def metric(logits, batch: PromptBatch):
        rows = torch.arange(logits.shape[0], device=logits.device)
        at = logits[rows, batch.positions[position].to(logits.device)].float()
        return at[:, positive.to(at.device)].mean(-1) - at[:, negative.to(at.device)].mean(-1)

    return metric


@pytest.mark.slow
def test_continuation_logprob_metric_is_the_summed_next_token_logprob(tiny_model):
    clean, _ = make_pairs([6, 8], swap_at=[2, 3], seed=3)
    clean.positions["continuation"] = torch.tensor([3, 4])
    with torch.inference_mode():
        logits = tiny_model(clean.tokens)
    value = ContinuationLogProb()(logits, clean)
    logprobs = logits.log_softmax(-1)
    for row, (start, length) in enumerate([(3, 6), (4, 8)]):
        expected = sum(float(logprobs[row, t - 1, clean.tokens[row, t]]) for t in range(start, length))
        assert float(value[row]) == pytest.approx(expected, abs=1e-4)  # padding (row 0) never read


@pytest.mark.parametrize("target", ["resid_pre", "z"])
def test_continuation_metric_patching_matches_transformer_lens(tiny_model, target):
    clean, corrupted = make_pairs([5, 5], swap_at=[1, 2], seed=4)
    for batch in (clean, corrupted):
        batch.positions["continuation"] = torch.tensor([2, 3])
    metric = ContinuationLogProb()
    ours = patch(tiny_model, clean, corrupted, metric, target=target, normalize=False)
    base, source = corrupted, clean
    _, source_cache = tiny_model.run_with_cache(source.tokens)
    theirs = TL_FUNCTIONS[target](tiny_model, base.tokens, source_cache, lambda logits: metric(logits, base).mean())
    assert (ours.scores.mean(0) - theirs.cpu()).abs().max() <= ATOL


def test_continuation_logprob_is_the_readouts_sum(tiny_model):
    """The patching metric (from the full logits) equals :func:`lens_bias.forward.readouts.batch_logprobs` (which
    unembeds only the span's positions) to float rounding."""
    batch = continuation_batch(
        tiny_model.tokenizer,
        ["The nurse walked in and", "People from Italy"],
        [" she smiled.", " drive recklessly and safely."],
    )
    with torch.inference_mode():
        logits = tiny_model(batch.tokens)
    torch.testing.assert_close(ContinuationLogProb()(logits, batch), batch_logprobs(tiny_model, batch).total)


def test_set_logit_diff_metric_is_the_difference_of_mean_logits(tiny_model):
    batch = tokenize(tiny_model.tokenizer, ["People from Italy drive", "hello"], add_start=True)
    with torch.inference_mode():
        logits = tiny_model(batch.tokens)
    metric = set_logit_diff_metric([5, 7], [9])
    values = metric(logits, batch)
    last = batch.positions["last"]
    for i in range(2):
        expected = logits[i, last[i], [5, 7]].mean() - logits[i, last[i], 9]
        assert float(values[i]) == pytest.approx(float(expected), abs=1e-5)
    with pytest.raises(ValueError, match="share tokens"):
        set_logit_diff_metric([5, 7], [7])


def test_set_logit_diff_is_a_position_metric_equal_to_the_closure(tiny_model):
    batch = tokenize(tiny_model.tokenizer, ["People from Italy drive", "The nurse walked in and", "hi"], add_start=True)
    with torch.inference_mode():
        logits = tiny_model(batch.tokens)
    metric = set_logit_diff_metric([5, 7, 11], [9, 13])
    assert isinstance(metric, SetLogitDiff) and metric.position == "last"
    assert torch.equal(metric(logits, batch), closure_set_logit_diff([5, 7, 11], [9, 13])(logits, batch))
    at_last = logits[torch.arange(3), batch.positions["last"]]
    assert torch.equal(metric.at_position(at_last, batch), metric(logits, batch))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        set_logit_diff_metric([], [9])
    with pytest.raises(ValueError, match="Position 'answer' is not in the batch"):
        set_logit_diff_metric([5], [9], position="answer")(logits, batch)


@pytest.mark.parametrize("target,direction", [("z", "noising"), ("mlp_out", "denoising"), ("k_pos", "noising")])
def test_patching_with_the_set_metric_equals_the_generic_closure(tiny_gqa_model, target, direction):
    """The position metric unembeds one position per patched run; the closure gets every position's logits.
    Same scores (padding included: the pairs have different lengths)."""
    clean, corrupted = make_pairs([5, 4, 5], swap_at=[1, 2, 3], seed=13)
    ids = ([5, 7, 11], [9, 13])
    fast = patch(
        tiny_gqa_model,
        clean,
        corrupted,
        set_logit_diff_metric(*ids),
        target=target,
        direction=direction,
        normalize=False,
        batch_size=8,
    )
    generic = patch(
        tiny_gqa_model,
        clean,
        corrupted,
        closure_set_logit_diff(*ids),
        target=target,
        direction=direction,
        normalize=False,
        batch_size=8,
    )
    assert torch.allclose(fast.scores, generic.scores, atol=1e-5, equal_nan=True)
    assert torch.allclose(fast.clean_metric, generic.clean_metric, atol=1e-5)
    assert torch.allclose(fast.corrupted_metric, generic.corrupted_metric, atol=1e-5)
