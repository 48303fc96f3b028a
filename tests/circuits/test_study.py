"""The circuit study on the tiny model: resumed from its cells, the exact sample (top and random edges), the
curve ending at the full graph (faithfulness 1, completeness 0), the random baseline, and the figures and
summary of its result."""

from __future__ import annotations

import torch
from patching.reference import make_pairs

from lens_bias.cells import CellStore
from lens_bias.circuits.study import circuit_study
from lens_bias.figures.circuits import contrast_summary, contrast_view, diagram, faithfulness_curve
from lens_bias.patching import PatchingInputs
from lens_bias.provenance import Result


def test_study_resumes_and_its_figures(tiny_gqa_model, tmp_path):
    clean, corrupted = make_pairs([6, 8, 7], [2, 3, 1], seed=2)
    inputs = PatchingInputs([], clean, corrupted, torch.tensor([5, 6, 7]), torch.tensor([8, 9, 10]), {})
    settings = {"method": "eap", "sizes": (5, 10_000), "n_random": 2, "n_edges": 6, "batch_size": 6}
    values, tensors = circuit_study(tiny_gqa_model, inputs, cells=CellStore(tmp_path), **settings)  # type: ignore[arg-type]
    store = CellStore(tmp_path)
    _, tensors_again = circuit_study(tiny_gqa_model, inputs, cells=store, **settings)  # type: ignore[arg-type]
    assert values["timing"]["cells_computed"] == store.reused > 1 and store.computed == 0
    for name in ("exact_effects", "faithfulness", "random_faithfulness", "completeness"):
        assert torch.equal(tensors[name], tensors_again[name])
    n_edges = values["graph"]["n_edges"]
    assert [row["size"] for row in values["curve"]] == [5, n_edges]
    full = values["curve"][-1]
    assert abs(full["faithfulness"] - 1) < 1e-3 and abs(full["completeness"]) < 1e-3
    assert abs(full["random_mean"] - 1) < 1e-3  # every edge, drawn at random, is still every edge
    edges = tensors["exact_edges"]
    assert edges.shape == (6, 2) and len({tuple(e) for e in edges.tolist()}) == 6
    top3 = tensors["scores"].abs().flatten().topk(3).values
    torch.testing.assert_close(tensors["scores"][edges[:3, 0], edges[:3, 1]].abs(), top3)
    assert tensors["exact_effects"].shape == (6, 3) and tensors["random_faithfulness"].shape == (2, 2)
    result = Result(
        "circuits",
        {"pairs": {"c": {"candidates": 6}}, "contrasts": {"c": values}},
        {"pair_ids": {"c": ["a", "b", "c"]}},
        {},
        {f"c.{name}": tensor for name, tensor in tensors.items()},
    )
    view = contrast_view(result, "c")
    assert view.tensors.keys() == tensors.keys() and view.config["pair_ids"] == ["a", "b", "c"]
    assert len(faithfulness_curve(view).data) == 6  # three series, each a band and a line
    assert len(diagram(view, n_edges=n_edges).data) == values["curve"][-1]["pruned_size"] + 1
    assert contrast_summary(view)[0].startswith("c: 6 candidate pairs, 3 kept")
