"""StereoSet's scorer: each option's mean per-token log-probability, intersentence options after the context."""

from __future__ import annotations

import numpy as np

from lens_bias.benchmarks.stereoset import score_stereoset
from lens_bias.data.stereoset import load_stereoset
from lens_bias.forward.readouts import continuation_logprobs


def test_options_scored_by_mean_token_logprob_with_the_context(tiny_model):
    items = [load_stereoset("intrasentence")[0], load_stereoset("intersentence")[0]]
    scores = score_stereoset(tiny_model, items, batch_size=4)
    intra, inter = items
    expected_intra = continuation_logprobs(
        tiny_model, [""] * 3, [intra.stereotype, intra.anti_stereotype, intra.unrelated]
    )
    expected_inter = continuation_logprobs(
        tiny_model, [inter.context] * 3, [f" {s}" for s in (inter.stereotype, inter.anti_stereotype, inter.unrelated)]
    )
    np.testing.assert_allclose(scores[0], expected_intra.mean.double().numpy(), atol=1e-5)
    np.testing.assert_allclose(scores[1], expected_inter.mean.double().numpy(), atol=1e-5)
