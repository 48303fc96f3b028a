"""Contrasts by name: the names, their check, and each source's pairs selected on the tiny model (the pairs
of the asked bias type, tokenized the patching way, with the metric of their kind)."""

from __future__ import annotations

import pytest

from experiments.circuits import CONTRASTS
from lens_bias.circuits.contrasts import check_contrasts, contrast_names, select_contrast
from lens_bias.errors import InputError
from lens_bias.patching import MinimalPairInputs, PatchingInputs
from lens_bias.patching.metrics import ContinuationLogProb, LogitDiff


def test_names_and_their_check():
    assert contrast_names() == CONTRASTS  # the experiment's literals (for --help speed) are the library's
    assert {"gender_swap", "stereoset:race", "crows_pairs:race-color"} <= set(contrast_names())
    check_contrasts(["gender_swap", "stereoset:gender"])
    for bad in ([], ["stereoset:age"], ["gender_swap", "gender_swap"]):
        with pytest.raises(InputError, match="Contrasts must be distinct names"):
            check_contrasts(bad)


@pytest.mark.parametrize(
    ("name", "kind", "metric", "source"),
    [
        ("stereoset:religion", MinimalPairInputs, ContinuationLogProb, "stereoset-intrasentence"),
        ("crows_pairs:race-color", MinimalPairInputs, ContinuationLogProb, "crows-pairs"),
        ("gender_swap", PatchingInputs, LogitDiff, None),
        ("gender_definitional", PatchingInputs, LogitDiff, None),
    ],
)
def test_each_source_selects_its_pairs(tiny_model, name, kind, metric, source):
    inputs, counts = select_contrast(tiny_model, name, n_pairs=3, min_gap=-1e9, batch_size=16)
    assert isinstance(inputs, kind) and isinstance(inputs.metric(), metric)
    assert len(inputs.pairs) == len(inputs.clean) == counts["used"] == 3
    if source is not None:
        bias_type = name.split(":")[1]
        assert {(pair.bias_type, pair.source) for pair in inputs.pairs} == {(bias_type, source)}
        assert all(pair.positive in text for pair, text in zip(inputs.pairs, inputs.clean.texts))


def test_the_definitional_control_swaps_stated_genders_in_the_same_template(tiny_model):
    inputs, counts = select_contrast(tiny_model, "gender_definitional", n_pairs=4, min_gap=-1e9, batch_size=16)
    assert counts["candidates"] == 200  # 10 female x 10 male nouns, both orientations, one template
    assert all(pair.id.startswith("gender-definitional-occupation-t0-") for pair in inputs.pairs)
    stereotyped, _ = select_contrast(tiny_model, "gender_swap", n_pairs=4, min_gap=-1e9, batch_size=16)
    assert stereotyped.clean.texts[0].split()[2:] == inputs.clean.texts[0].split()[2:]  # same template
