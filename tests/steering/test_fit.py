"""fit_vector: the pipeline in one call gives exactly what the steps by hand give (split -> activations ->
vector -> held-out separability and effect size -> best layer -> sign by measurement)."""

from __future__ import annotations

import pytest
import torch

from lens_bias.data import contrast_split
from lens_bias.prompts import ChatTemplate
from lens_bias.steering import build_vector, contrast_activations, fit_vector, orient, preference_measure
from lens_bias.steering.separability import best_layer, effect_size, separability

LAYERS = [1, 2]


@pytest.fixture(scope="module")
def gender():
    return contrast_split("gender", n_train=8, n_test=6, seed=0)


def test_fit_vector_equals_the_steps_by_hand(tiny_model, gender):
    kwargs = dict(readout="mean_from_difference", batch_size=4)
    fitted = fit_vector(tiny_model, gender, LAYERS, seed=3, **kwargs)
    train = contrast_activations(tiny_model, gender.train, LAYERS, **kwargs)
    test = contrast_activations(tiny_model, gender.test, LAYERS, **kwargs)
    vector = build_vector("gender", train, model=tiny_model, items=gender.train, dataset="gender train", seed=3)
    auc, effect = separability(vector, test), effect_size(vector, test)
    assert torch.equal(fitted.train.positive, train.positive) and torch.equal(fitted.test.negative, test.negative)
    assert torch.equal(fitted.vector.directions, vector.directions) and fitted.vector.provenance == vector.provenance
    assert (fitted.separability, fitted.effect_size) == (auc, effect)
    assert fitted.layer == best_layer(auc, tie_break=effect) and fitted.orientation is None
    assert fitted.split is gender
    assert fitted.summary() == {"data": gender.describe(), "best_layer": fitted.layer, "separability": auc,
                                "effect_size": effect, "orientation": None}  # fmt: skip


def test_orientation_by_measure_is_orient_at_the_best_layer(tiny_model, gender):
    measure = preference_measure(tiny_model, gender.train[:4], batch_size=8)
    plain = fit_vector(tiny_model, gender, LAYERS)
    by_hand, record = orient(plain.vector * 1.0, measure, plain.layer, 4.0, start=None)
    fitted = fit_vector(tiny_model, gender, LAYERS, orient_by=measure, orient_multiplier=4.0, orient_start=None)
    assert fitted.orientation == record and record["layer"] == plain.layer
    assert torch.equal(fitted.vector.directions, by_hand.directions)
    opposite = fit_vector(
        tiny_model, gender, LAYERS, orient_by=lambda steer: -measure(steer), orient_multiplier=4.0, orient_start=None
    )
    assert opposite.orientation["flipped"] != fitted.orientation["flipped"]
    assert torch.allclose(opposite.vector.directions, -fitted.vector.directions)


def test_normalized_re_measures_and_comes_before_orientation(tiny_model, gender):
    fitted = fit_vector(tiny_model, gender, LAYERS)
    norms = torch.tensor([1.0, 2.0])
    rescaled = fitted.normalized(norms)
    assert torch.allclose(rescaled.vector.norms(), norms)
    assert rescaled.separability == separability(rescaled.vector, fitted.test)
    assert rescaled.effect_size == effect_size(rescaled.vector, fitted.test)
    oriented = rescaled.oriented(preference_measure(tiny_model, gender.train[:4]), 4.0, start=None)
    with pytest.raises(ValueError, match="Normalise before orienting"):
        oriented.normalized(norms)


def test_chat_contrasts_need_a_template_and_training_only_fits_skip_the_held_out_part(tiny_model, gender):
    refusal = contrast_split("refusal", n_train=4, n_test=4, seed=0)
    with pytest.raises(ValueError, match="chat pairs"):
        fit_vector(tiny_model, refusal, LAYERS)
    with pytest.raises(ValueError, match="raw-text pairs"):
        fit_vector(tiny_model, gender, LAYERS, template=ChatTemplate("llama-2-chat"))
    with pytest.raises(ValueError, match="orient_multiplier"):
        fit_vector(tiny_model, gender, LAYERS, orient_by=lambda steer: 0.0)
    chat = fit_vector(tiny_model, refusal, LAYERS, template=ChatTemplate("llama-2-chat"))
    assert chat.vector.provenance["source"]["kind"] == "chat-completions" and chat.layer in LAYERS
    train_only = fit_vector(tiny_model, gender, LAYERS, held_out=False)
    assert train_only.test is None and train_only.separability is None and train_only.layer is None
    with pytest.raises(ValueError, match="held_out=True"):
        train_only.oriented(lambda steer: 0.0, 1.0)


def test_a_vector_from_your_own_pairs_in_a_dataset(tiny_model):
    """The example pairs as a ``datasets.Dataset``: split by target, a vector fitted, applied with
    ``vector``'s ``AddVector(...).applied(model)``, per-pair rows of the held-out pairs as a DataFrame."""
    from pathlib import Path

    import datasets
    import pandas as pd

    from lens_bias.data import own_splits
    from lens_bias.interventions import AddVector
    from lens_bias.metrics import likelihood_preference

    example = pd.read_csv(Path(__file__).resolve().parents[2] / "examples" / "pairs.csv", dtype=str)
    split = own_splits(datasets.Dataset.from_pandas(example), seed=0)["gender"]
    fitted = fit_vector(tiny_model, split, [1, 2], readout="mean_from_difference", seed=0)
    assert fitted.layer in (1, 2) and not {p.target for p in split.train} & {p.target for p in split.test}
    steer = AddVector(fitted.vector, 4.0, [fitted.layer], start=None)
    by_argument = likelihood_preference(tiny_model, split.test, interventions=[steer])
    with steer.applied(tiny_model):
        in_block = likelihood_preference(tiny_model, split.test)
    assert in_block.diffs == pytest.approx(by_argument.diffs, abs=1e-5)
    frame = by_argument.to_frame("gender+4")
    assert frame["item_id"].tolist() == [p.id for p in split.test] and set(frame["condition"]) == {"gender+4"}
