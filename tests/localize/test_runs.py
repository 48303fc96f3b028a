"""BiasGym's per-seed loop: each seed is a resumable cell, and the run rebuilt from a saved cell equals the
run computed in place (entity, elicitations, matches, scores, and the injected model's logits)."""

from __future__ import annotations

import pytest
import torch

from lens_bias.cells import CellStore
from lens_bias.errors import InputError
from lens_bias.localize import injection_runs, selected_heads

from .tiny import TINY_SPEC


def test_seeds_are_cells_and_a_rebuilt_run_equals_the_computed_one(tiny_model, tmp_path):
    settings = {"steps": 3, "n_templates": 2, "batch_size": 8}
    store = CellStore(tmp_path, {"model": "tiny"})
    computed = injection_runs(tiny_model, TINY_SPEC, [0, 1], cells=store, **settings)
    assert store.computed == 2 and len(list(tmp_path.glob("*.safetensors"))) == 2
    again = CellStore(tmp_path, {"model": "tiny"})
    rebuilt = injection_runs(tiny_model, TINY_SPEC, [0, 1], cells=again, **settings)
    assert (again.computed, again.reused) == (0, 2)
    tokens = tiny_model.to_tokens("My friend from Italy drives")
    for a, b in zip(computed, rebuilt):
        assert a.record() == b.record() and a.adversarial == b.adversarial
        torch.testing.assert_close(b.entity.embedding, a.entity.embedding, rtol=0, atol=0)
        torch.testing.assert_close(b.scores.patching_heads, a.scores.patching_heads, rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(b.injected(tokens), a.injected(tokens), rtol=0, atol=0)
    assert selected_heads(rebuilt, 3).heads == selected_heads(computed, 3).heads
    # another number of steps is another cell
    injection_runs(tiny_model, TINY_SPEC, [0], cells=again, **{**settings, "steps": 4})
    assert again.computed == 1


def test_seeds_must_be_distinct(tiny_model):
    with pytest.raises(InputError, match="each once"):
        injection_runs(tiny_model, TINY_SPEC, [1, 1])
