"""Inputs from prompt pairs: term-swap pairs with answer tokens, minimal sentence pairs with a shared
continuation; the pairs dropped and why."""

from __future__ import annotations

import pytest
import torch

from lens_bias.data.gender_swap import gender_swap_groups, gender_swap_pairs
from lens_bias.data.records import ContrastPair
from lens_bias.patching import minimal_pair_inputs, patching_inputs


def test_minimal_pair_inputs_keep_one_span_swaps_with_a_shared_continuation(tiny_model):
    def pair(i, positive, negative):
        return ContrastPair(
            id=f"p{i}", bias_type="test", target=f"t{i}", prompt="", positive=positive, negative=negative, source="test"
        )

    tokenizer = tiny_model.tokenizer
    sentence, swapped = "The nurse walked in and she smiled.", "The nurse walked in and he smiled."
    assert len(tokenizer(sentence)["input_ids"]) == len(tokenizer(swapped)["input_ids"])  # " she"/" he": one token
    pairs = [
        pair(0, sentence, swapped),
        pair(1, sentence, sentence + " Then"),
        pair(2, "The nurse said she walked in and she smiled.", "The nurse said he walked in and he smiled."),
        pair(3, "The nurse walked in and she", "The nurse walked in and he"),
    ]
    inputs = minimal_pair_inputs(tokenizer, pairs)
    assert [p.id for p in inputs.pairs] == ["p0"]
    assert inputs.dropped == {"length_mismatch": ["p1"], "not_one_span": ["p2"], "no_shared_continuation": ["p3"]}
    ids = inputs.clean.tokens[0], inputs.corrupted.tokens[0]
    start = int(inputs.clean.positions["continuation"][0])
    assert torch.equal(ids[0][start:], ids[1][start:]) and ids[0][start - 1] != ids[1][start - 1]
    with pytest.raises(ValueError, match="None of the 1 pairs is usable"):
        minimal_pair_inputs(tokenizer, [pairs[2]])


def test_gender_swap_pairs_and_patching_inputs(smollm):
    pairs = gender_swap_pairs()
    groups = gender_swap_groups()
    # 6 occupation templates (20 x 20 terms), 2 trait and 1 activity template with a gendered first word
    assert len(groups) == 9 and "trait-t1" not in groups
    assert len(pairs) == 6 * 2 * 20 * 20 + 2 * 2 * 10 * 10 + 1 * 2 * 10 * 10
    nurse = next(p for p in pairs if p.id == "gender-swap-occupation-t0-nurse-carpenter")
    assert (nurse.clean, nurse.corrupted, nurse.positive, nurse.negative) == (
        "The nurse walked into the room and",
        "The carpenter walked into the room and",
        " she",
        " he",
    )
    assert any(p.clean_term == "carpenter" and p.positive == " he" for p in pairs)  # both orientations
    inputs = patching_inputs(smollm.tokenizer, [p for p in pairs if p.group == "occupation-t0"])
    assert len(inputs.pairs) + len(inputs.dropped["length_mismatch"]) == 800
    assert inputs.dropped["length_mismatch"] and torch.equal(inputs.clean.lengths, inputs.corrupted.lengths)
    she, he = (smollm.tokenizer(word, add_special_tokens=False)["input_ids"][0] for word in (" she", " he"))
    assert {(int(a), int(b)) for a, b in zip(inputs.positive_ids, inputs.negative_ids)} == {(she, he), (he, she)}
    with pytest.raises(ValueError, match="Unknown group"):
        gender_swap_pairs(groups=["occupation-t9"])


@pytest.mark.slow
def test_crows_pairs_minimal_pairs_on_the_embedded_model(smollm):
    from lens_bias.data import crows_pairs_contrast, load_crows_pairs

    pairs = crows_pairs_contrast(load_crows_pairs())
    inputs = minimal_pair_inputs(smollm.tokenizer, pairs)
    assert len(inputs.pairs) + sum(map(len, inputs.dropped.values())) == 1508
    assert len(inputs.pairs) > 500  # most one-word swaps keep the token length
    poor = next(i for i, p in enumerate(inputs.pairs) if p.positive.startswith("The poor are really ignorant"))
    start = int(inputs.clean.positions["continuation"][poor])
    assert smollm.tokenizer.decode(inputs.clean.tokens[poor, start]) == " are"
