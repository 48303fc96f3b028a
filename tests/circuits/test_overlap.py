"""Overlap of circuits: Jaccard, its chance level, split halves (seeded, disjoint, complete), a contrast of
repeated pairs is perfectly stable (split-half Jaccard 1), the contrasts' matrix, a second checkpoint, and circuits
saved by another study of the same model (only that model's, only edge scores)."""

from __future__ import annotations

import pytest
import torch
from patching.reference import make_pairs

from lens_bias.circuits.graph import Graph
from lens_bias.circuits.overlap import (
    chance_jaccard,
    compare_checkpoints,
    compare_contrasts,
    compare_saved,
    jaccard,
    saved_circuits,
    split_half_jaccard,
    split_halves,
)
from lens_bias.circuits.scores import edge_scores
from lens_bias.errors import InputError
from lens_bias.patching import PatchingInputs


def _inputs(lengths: list[int], swaps: list[int], seed: int = 0) -> PatchingInputs:
    clean, corrupted = make_pairs(lengths, swaps, seed=seed)
    n = len(lengths)
    return PatchingInputs([], clean, corrupted, torch.arange(5, 5 + n), torch.arange(20, 20 + n), {})


def test_jaccard_and_its_chance_level():
    a, b = torch.tensor([[True, True], [False, False]]), torch.tensor([[False, True], [True, False]])
    assert jaccard(a, b) == pytest.approx(1 / 3) and jaccard(a, a) == 1.0 and jaccard(~a & a, ~a & a) == 0.0
    assert chance_jaccard(1, 2) == pytest.approx(0.5)  # the same edge half of the time
    assert chance_jaccard(5, 5) == pytest.approx(1.0)
    draws = [torch.randperm(40, generator=torch.Generator().manual_seed(s))[:8] for s in range(4000)]
    masks = [torch.zeros(40, dtype=torch.bool).index_fill_(0, d, True).reshape(4, 10) for d in draws]
    simulated = sum(jaccard(masks[i], masks[i + 1]) for i in range(0, 4000, 2)) / 2000
    assert chance_jaccard(8, 40) == pytest.approx(simulated, abs=0.01)
    with pytest.raises(InputError):
        chance_jaccard(0, 40)


def test_split_halves_are_seeded_disjoint_and_complete():
    inputs = _inputs([4, 5, 6, 7, 8], [1, 2, 3, 1, 2])
    first, second = split_halves(inputs, seed=3)
    again = split_halves(inputs, seed=3)
    assert first.clean.texts == again[0].clean.texts and len(first.clean) == 2 and len(second.clean) == 3
    assert sorted(first.clean.texts + second.clean.texts) == sorted(inputs.clean.texts)
    for half in (first, second):  # rows stay paired: ids and positions follow their prompts
        rows = [inputs.clean.texts.index(text) for text in half.clean.texts]
        assert half.positive_ids.tolist() == inputs.positive_ids[rows].tolist()
        assert half.corrupted.tokens.equal(inputs.corrupted.tokens[rows])
        assert half.clean.positions["last"].tolist() == inputs.clean.positions["last"][rows].tolist()
    with pytest.raises(InputError, match="at least 2 pairs"):
        split_halves(_inputs([4], [1]), seed=0)


def test_repeated_pairs_are_stable_and_the_contrast_matrix(tiny_model):
    one = _inputs([6], [2], seed=4)
    repeated = PatchingInputs(
        [],
        *(
            type(b)(b.tokens.repeat(2, 1), b.lengths.repeat(2), {"last": b.positions["last"].repeat(2)}, b.texts * 2)
            for b in (one.clean, one.corrupted)
        ),
        one.positive_ids.repeat(2),
        one.negative_ids.repeat(2),
        {},
    )
    assert split_half_jaccard(tiny_model, repeated, 30) == pytest.approx(1.0)  # two halves, the same pair
    other = _inputs([6, 7, 5, 6], [1, 2, 3, 4], seed=5)
    scores = {
        name: edge_scores(tiny_model, inputs.clean, inputs.corrupted, inputs.metric()).scores
        for name, inputs in (("repeated", repeated), ("other", other))
    }
    values, matrix = compare_contrasts(tiny_model, scores, {"repeated": repeated, "other": other}, 30)
    assert values["names"] == ["repeated", "other"] and values["n_edges"] == 30
    assert matrix[0, 0] == pytest.approx(1.0) and 0 <= matrix[1, 1] <= 1
    assert matrix[0, 1] == matrix[1, 0] < 1
    assert values["chance"] == pytest.approx(chance_jaccard(30, Graph.of(tiny_model).n_edges))
    _, plain = compare_contrasts(tiny_model, scores, {}, 30, split_half=False)
    assert plain.diagonal().tolist() == [1.0, 1.0] and plain[0, 1] == matrix[0, 1]


def test_a_circuit_on_a_second_checkpoint(tiny_model, tiny_gqa_model):
    """The same weights give the same circuit (Jaccard 1); perturbed weights move it, and the metrics are the
    second checkpoint's; a checkpoint of another graph is refused before any scoring."""
    import copy

    inputs = {"pairs": _inputs([6, 7, 5, 6], [1, 2, 3, 4], seed=5)}
    scores = {name: edge_scores(tiny_model, i.clean, i.corrupted, i.metric()).scores for name, i in inputs.items()}
    same, tensors = compare_checkpoints(tiny_model, tiny_model, scores, inputs, 30, split_half={"pairs": 0.4})
    assert same["contrasts"]["pairs"]["jaccard"] == 1.0 and tensors["pairs.scores"].equal(scores["pairs"])
    assert same["split_half"] == {"pairs": 0.4} and same["n_edges"] == 30
    assert same["chance"] == pytest.approx(chance_jaccard(30, Graph.of(tiny_model).n_edges))

    tuned = copy.deepcopy(tiny_model)
    with torch.no_grad():
        for parameter in tuned.parameters():
            parameter.add_(
                0.5 * parameter.std() * torch.randn(parameter.shape, generator=torch.Generator().manual_seed(0))
            )
    moved, _ = compare_checkpoints(tiny_model, tuned, scores, inputs, 30)
    clean = edge_scores(tuned, inputs["pairs"].clean, inputs["pairs"].corrupted, inputs["pairs"].metric()).clean_metric
    assert 0.0 <= moved["contrasts"]["pairs"]["jaccard"] < 1.0
    assert moved["contrasts"]["pairs"]["clean_metric"] == pytest.approx(float(clean.mean()))
    with pytest.raises(InputError, match="graph"):
        compare_checkpoints(tiny_model, tiny_gqa_model, scores, inputs, 30)
    tuned.tokenizer = copy.deepcopy(tiny_model.tokenizer)
    tuned.tokenizer.add_tokens(["<a token the model's tokenizer lacks>"])
    with pytest.raises(InputError, match="tokenizers differ"):
        compare_checkpoints(tiny_model, tuned, scores, inputs, 30)


def test_circuits_saved_by_another_study_of_the_same_model(tiny_model):
    import dataclasses

    from lens_bias.models import attach_record, model_record
    from lens_bias.provenance import Result

    inputs = _inputs([6, 7, 5, 6], [1, 2, 3, 4], seed=5)
    scores = {"pairs": edge_scores(tiny_model, inputs.clean, inputs.corrupted, inputs.metric()).scores}
    original = model_record(tiny_model)
    record = dataclasses.replace(original, kind="gguf", source="a.gguf", sha256="ab" * 32)
    attach_record(tiny_model, record)
    try:
        other = torch.randn(scores["pairs"].shape, generator=torch.Generator().manual_seed(1))
        tensors = {"seed0/circuit_scores": scores["pairs"], "seed1/circuit_scores": other, "seed0/heads": torch.ones(3)}
        saved = Result("biasscope", {}, {}, {"model": record.to_dict()}, tensors)
        found = saved_circuits(tiny_model, saved)
        assert list(found) == ["seed0/circuit_scores", "seed1/circuit_scores"]  # edge scores only
        values, matrix = compare_saved(tiny_model, scores, found, 30)
        assert values["names"] == ["pairs"] and values["others"] == list(found) and matrix.shape == (1, 2)
        assert matrix[0, 0] == 1.0 and 0.0 <= matrix[0, 1] < 1.0  # its own circuit, and another one
        assert values["chance"] == pytest.approx(chance_jaccard(30, Graph.of(tiny_model).n_edges))
        elsewhere = {**record.to_dict(), "sha256": "cd" * 32}  # the same name and path, other weights
        with pytest.raises(InputError, match="not on this model's weights"):
            saved_circuits(tiny_model, dataclasses.replace(saved, provenance={"model": elsewhere}))
        with pytest.raises(InputError, match="holds no edge scores"):
            saved_circuits(tiny_model, dataclasses.replace(saved, tensors={"seed0/heads": torch.ones(3)}))
        unrecorded = {**record.to_dict(), "kind": "unrecorded", "sha256": None}  # such a record proves nothing
        with pytest.raises(InputError, match="not on this model's weights"):
            saved_circuits(tiny_model, dataclasses.replace(saved, provenance={"model": unrecorded}))
    finally:
        attach_record(tiny_model, original)  # the session's model, as it was
