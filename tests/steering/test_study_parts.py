"""The steering study's library parts on the tiny model: the sign fixed on training pairs, the fluency readout,
the refusal sweep and steered generations give what their steps by hand give."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lens_bias.cells import CellStore
from lens_bias.data import contrast_split
from lens_bias.data.neutral import neutral_texts
from lens_bias.forward.generation import generate
from lens_bias.forward.readouts import continuation_logprobs, score_pairs
from lens_bias.interventions import AddVector
from lens_bias.prompts import template_for
from lens_bias.stats import bootstrap_mean
from lens_bias.steering import (
    FluencyReadout,
    fit_vector,
    orient_toward_positive,
    preference_measure,
    refusal_sweep,
    steered_generations,
)
from lens_bias.steering.refusal import held_out_requests

LAYERS = [1, 2]


@pytest.fixture(scope="module")
def fitted(tiny_model):
    split = contrast_split("gender", n_train=8, n_test=6, seed=0)
    return fit_vector(tiny_model, split, LAYERS, readout="mean_from_difference", batch_size=4)


def test_orient_toward_positive_measures_the_first_training_pairs(tiny_model, fitted):
    oriented, calibration, measure = orient_toward_positive(tiny_model, fitted, 4.0, n_calibration=5, batch_size=4)
    assert calibration == fitted.split.train[:5]
    by_hand = fitted.oriented(preference_measure(tiny_model, calibration, batch_size=4), 4.0, start=None)
    assert oriented.orientation == by_hand.orientation and torch.equal(
        oriented.vector.directions, by_hand.vector.directions
    )
    assert measure([]) == preference_measure(tiny_model, calibration, batch_size=4)([])


def test_fluency_readout_is_the_change_of_neutral_text_log_probability(tiny_model, fitted):
    texts = neutral_texts()[:3]
    fluency = FluencyReadout.on(tiny_model, texts, batch_size=2, seed=0)
    rows = fluency.sweep(tiny_model, fitted.vector, 1, [0, 2.0], CellStore(None), "gender")
    assert [(r["layer"], r["multiplier"]) for r in rows] == [(1, 0), (1, 2.0)]
    assert rows[0]["delta_logprob"]["value"] == 0.0  # unsteered: no change
    steer = [AddVector(fitted.vector, 2.0, [1], start=None)]
    steered = continuation_logprobs(tiny_model, [""] * 3, list(texts), interventions=steer, batch_size=2).mean.numpy()
    assert rows[1]["delta_logprob"] == bootstrap_mean(steered - fluency.base, seed=0).to_dict()


def test_refusal_sweep_reads_propensity_and_gender_bias_per_multiplier(tiny_model, fitted):
    template = template_for(tiny_model)
    harmful, benign = held_out_requests(0, 3)
    assert len(harmful) == len(benign) == 3
    gender_test = fitted.split.test
    rows = refusal_sweep(
        tiny_model, template, fitted.vector, 2, [0, 1.0], harmful, benign, gender_test,
        cells=CellStore(None), batch_size=4, seed=0,
    )  # fmt: skip
    assert [r["multiplier"] for r in rows] == [0, 1.0]
    raw = [AddVector(fitted.vector, 1.0, [2], start=None)]  # gender pairs are raw text: every position
    bias = score_pairs(tiny_model, gender_test, interventions=raw, batch_size=4).preference().numpy()
    np.testing.assert_array_equal(rows[1]["items"]["gender_bias"], bias.tolist())
    assert len(rows[1]["items"]["propensity_harmful"]) == 3
    assert rows[0]["items"]["propensity_harmful"] != rows[1]["items"]["propensity_harmful"]


def test_steered_generations_per_multiplier(tiny_model, fitted):
    template = template_for(tiny_model)
    prompts = ["Tell me about nurses."]
    texts = steered_generations(tiny_model, template, fitted.vector, 1, prompts, (-2, 0.0), max_new_tokens=3, label="g")
    assert list(texts) == ["-2", "0.0"]
    steer = [AddVector(fitted.vector, -2, [1])]
    assert texts["-2"] == [
        g.text for g in generate(tiny_model, template, prompts, interventions=steer, max_new_tokens=3)
    ]
    assert texts["0.0"] == [g.text for g in generate(tiny_model, template, prompts, max_new_tokens=3)]
