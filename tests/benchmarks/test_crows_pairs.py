"""CrowS-Pairs' scorer: the shared-token alignment and both scorings by hand on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lens_bias.benchmarks.crows_pairs import score_crows_pairs, shared_token_masks
from lens_bias.data.crows_pairs import CrowsPair
from lens_bias.forward.readouts import continuation_logprobs
from lens_bias.prompts import document_start_id


def test_shared_token_masks_follow_difflib_equal_spans():
    more, less = shared_token_masks([1, 2, 3, 4], [1, 5, 3, 4])  # one token replaced
    assert more.tolist() == [True, False, True, True] and less.tolist() == [True, False, True, True]
    more, less = shared_token_masks([1, 2, 3], [1, 7, 8, 3])  # one token replaced by two
    assert more.tolist() == [True, False, True] and less.tolist() == [True, False, False, True]
    more, less = shared_token_masks([9], [8])
    assert not more.any() and not less.any()


def test_both_scorings_by_hand_on_the_tiny_model(tiny_model):
    pair = CrowsPair(
        "0", "gender", "The nurse walked in and she smiled.", "The engineer walked in and he smiled.", "stereo"
    )
    scored = score_crows_pairs(tiny_model, [pair], batch_size=2)
    tokenizer = tiny_model.tokenizer
    ids = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in (pair.sent_more, pair.sent_less)]
    masks = shared_token_masks(*ids)
    assert 0 < masks[0].sum() < len(ids[0])
    for side, (sentence, mask) in enumerate(zip(ids, masks)):
        full = torch.tensor([document_start_id(tokenizer), *sentence])
        with torch.inference_mode():
            logprobs = tiny_model(full[None])[0].double().log_softmax(-1)
        per_token = [logprobs[t, full[t + 1]].item() for t in range(len(sentence))]  # token t+1 given 0..t
        assert scored["whole"][0, side] == pytest.approx(sum(per_token), abs=1e-4)
        assert scored["shared"][0, side] == pytest.approx(sum(p for p, m in zip(per_token, mask) if m), abs=1e-4)
    whole = continuation_logprobs(tiny_model, ["", ""], [pair.sent_more, pair.sent_less]).total
    np.testing.assert_allclose(scored["whole"][0], whole.double().numpy(), atol=1e-4)
    assert scored["n_shared"][0] == masks[0].sum() == masks[1].sum()
