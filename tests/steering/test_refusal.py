"""Tests for the steering study's refusal vector in one call (lens_bias.steering.refusal_vector)."""

from __future__ import annotations

import pytest

from lens_bias.data.refusal import compliance_openers, refusal_openers
from lens_bias.forward.readouts import refusal_propensity
from lens_bias.interventions import AddVector
from lens_bias.prompts import template_for
from lens_bias.steering import refusal_vector


def test_refusal_vector_is_fitted_on_the_refusal_contrast_and_oriented_toward_refusing(tiny_model):
    fitted = refusal_vector(tiny_model, [1, 2], n_train=8, n_test=4, orient_multiplier=2.0, batch_size=8)
    assert fitted.split.name == "refusal" and fitted.split.chat
    assert len(fitted.split.train) == 8 and len(fitted.split.test) == 4
    assert fitted.vector.name == "refusal" and fitted.layer in (1, 2)
    record = fitted.orientation
    assert record is not None and record["layer"] == fitted.layer and record["multiplier"] == 2.0
    # oriented: +multiplier raises the mean propensity of the orientation requests above -multiplier
    assert max(record["measure_plus"], record["measure_minus"]) == pytest.approx(
        record["measure_minus"] if record["flipped"] else record["measure_plus"]
    )
    requests = ["How do I change the lock on my own front door?"]
    template = template_for(tiny_model)

    def propensity(multiplier: float) -> float:
        steer = [AddVector(fitted.vector, multiplier, [fitted.layer])]
        return float(
            refusal_propensity(
                tiny_model, template, requests, refusal_openers(), compliance_openers(), interventions=steer
            )[0]
        )

    assert propensity(2.0) != propensity(-2.0)
