"""Pair screening: clean - corrupted metric gaps in chunks equal one full forward; screening keeps the first
pairs with the gap in the seeded order, and counts what it screened."""

from __future__ import annotations

import random

import pytest
import torch

from lens_bias.data.gender_swap import gender_swap_pairs
from lens_bias.data.records import ContrastPair
from lens_bias.patching import metric_gaps, minimal_pair_inputs, patching_inputs, screen_pairs


@pytest.fixture(scope="module")
def usable_pairs(tiny_model):
    return patching_inputs(tiny_model.tokenizer, gender_swap_pairs(groups=["occupation-t0"])).pairs[:10]


def full_forward_gaps(model, inputs) -> torch.Tensor:
    with torch.inference_mode():
        return inputs.metric()(model(inputs.clean.tokens), inputs.clean) - inputs.metric()(
            model(inputs.corrupted.tokens), inputs.corrupted
        )


def test_metric_gaps_in_chunks_equal_one_forward(tiny_model, usable_pairs):
    inputs = patching_inputs(tiny_model.tokenizer, usable_pairs)
    expected = full_forward_gaps(tiny_model, inputs)
    for batch_size in (3, 64):  # per-pair answer ids follow the chunks
        assert torch.allclose(metric_gaps(tiny_model, inputs, batch_size=batch_size), expected, atol=1e-5)


def test_screening_keeps_the_first_pairs_with_the_gap_in_the_seeded_order(tiny_model, usable_pairs):
    def build(block):
        return patching_inputs(tiny_model.tokenizer, block)

    gaps = dict(zip([p.id for p in usable_pairs], metric_gaps(tiny_model, build(usable_pairs)).tolist()))
    ranked = sorted(gaps.values())
    min_gap = (ranked[3] + ranked[4]) / 2  # 6 of the 10 pairs have the gap
    order = list(usable_pairs)
    random.Random(3).shuffle(order)
    with_gap = [p.id for p in order if gaps[p.id] >= min_gap]

    screening = screen_pairs(tiny_model, usable_pairs, build, n_pairs=2, min_gap=min_gap, seed=3, batch_size=4)
    assert [p.id for p in screening.pairs] == sorted(with_gap[:2])
    # screened block by block (4 pairs each) until a block brings the count to 2
    screened = next(end for end in (4, 8, 10) if sum(gaps[p.id] >= min_gap for p in order[:end]) >= 2)
    assert screening.n_screened == screened
    assert screening.n_with_gap == sum(gaps[p.id] >= min_gap for p in order[:screened])

    everything = screen_pairs(tiny_model, usable_pairs, build, n_pairs=None, min_gap=min_gap, seed=3, batch_size=4)
    assert [p.id for p in everything.pairs] == sorted(with_gap) and everything.n_screened == 10
    with pytest.raises(ValueError, match="None of the 10 screened pairs"):
        screen_pairs(tiny_model, usable_pairs, build, n_pairs=2, min_gap=1e9, seed=3, batch_size=4)
    with pytest.raises(ValueError, match="n_pairs must be >= 1"):
        screen_pairs(tiny_model, usable_pairs, build, n_pairs=0, min_gap=0.0)


def test_screening_minimal_pairs(tiny_model):
    def pair(i, positive, negative):
        return ContrastPair(
            id=f"p{i}", bias_type="test", target=f"t{i}", prompt="", positive=positive, negative=negative, source="test"
        )

    pairs = [
        pair(1, "The nurse walked in and she smiled.", "The nurse walked in and he smiled."),
        pair(0, "The engineer walked in and he smiled.", "The engineer walked in and she smiled."),
    ]

    def build(block):
        return minimal_pair_inputs(tiny_model.tokenizer, block)

    inputs = build(pairs)
    assert len(inputs.pairs) == 2
    assert torch.allclose(
        metric_gaps(tiny_model, inputs, batch_size=1), full_forward_gaps(tiny_model, inputs), atol=1e-4
    )
    screening = screen_pairs(tiny_model, pairs, build, n_pairs=None, min_gap=-float("inf"), batch_size=1)
    assert [p.id for p in screening.pairs] == ["p0", "p1"] and screening.n_with_gap == screening.n_screened == 2


def test_your_own_pairs_from_a_dataset_are_patched_with_per_item_rows(tiny_model):
    from pathlib import Path

    import datasets
    import pandas as pd

    from lens_bias.data import load_pairs
    from lens_bias.patching import METRIC_NAMES, patch_targets, patching_items, select_pairs

    example = pd.read_csv(Path(__file__).resolve().parents[2] / "examples" / "pairs.csv", dtype=str)
    own = load_pairs(datasets.Dataset.from_pandas(example))
    inputs, counts = select_pairs(tiny_model, "gender_swap", n_pairs=2, min_gap=0.0, pairs=own)
    assert counts["candidates"] == len(example) and counts["used"] == 2
    values, tensors, _ = patch_targets(
        tiny_model, inputs, ["z"], direction="denoising", metric_name=METRIC_NAMES["crows_pairs"]
    )
    frame = pd.DataFrame(patching_items(inputs, values, tensors))
    assert frame.groupby("item_id").size().tolist() == [4 * 4, 4 * 4]  # layers x heads per pair
    assert set(frame["group"]) <= set(example["target"])
    first = frame[(frame["item_id"] == inputs.pairs[0].id) & (frame["layer"] == 0)]["exact"].tolist()
    assert first == pytest.approx(tensors["z.exact"][0, 0].tolist())
