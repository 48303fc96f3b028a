"""EAP and EAP-IG: one step of EAP-IG is EAP, more steps change the scores, the model is left as it was."""

from __future__ import annotations

import pytest
import torch
from patching.reference import METRIC, make_pairs

from lens_bias.circuits.scores import edge_scores
from lens_bias.errors import InputError


def test_one_step_of_eap_ig_is_eap(tiny_gqa_model):
    clean, corrupted = make_pairs([6, 8], [2, 3])
    hooks_before = sum(len(point.fwd_hooks) for point in tiny_gqa_model.hook_dict.values())
    eap = edge_scores(tiny_gqa_model, clean, corrupted, METRIC, method="eap")
    one = edge_scores(tiny_gqa_model, clean, corrupted, METRIC, method="eap_ig", steps=1)
    four = edge_scores(tiny_gqa_model, clean, corrupted, METRIC, method="eap_ig", steps=4)
    assert eap.scores.shape == (21, 37) and eap.scores.abs().max() > 0
    assert not eap.scores[~eap.graph.valid].any()
    torch.testing.assert_close(one.scores, eap.scores, atol=1e-7, rtol=1e-5)
    assert not torch.allclose(four.scores, eap.scores, atol=1e-6)
    torch.testing.assert_close(eap.clean_metric, METRIC(tiny_gqa_model(clean.tokens), clean))
    assert sum(len(point.fwd_hooks) for point in tiny_gqa_model.hook_dict.values()) == hooks_before
    assert not tiny_gqa_model.cfg.use_split_qkv_input
    top = eap.top(3)
    assert eap.scores[top[:, 0], top[:, 1]].abs().tolist() == sorted(eap.scores.abs().flatten().tolist())[::-1][:3]


def test_bad_settings(tiny_model):
    clean, corrupted = make_pairs([5, 5], [1, 2])
    with pytest.raises(InputError, match="method"):
        edge_scores(tiny_model, clean, corrupted, METRIC, method="acdc")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="steps"):
        edge_scores(tiny_model, clean, corrupted, METRIC, method="eap_ig", steps=0)


def test_a_metric_that_fails_mid_run_leaves_the_model_as_it_was(tiny_gqa_model):
    """A failing run leaves exactly the hooks that were there, and the graph mode's flags off (TransformerLens
    #156 / #1636: hooks left behind, or the user's own removed)."""
    clean, corrupted = make_pairs([6, 8], [2, 3])
    tiny_gqa_model.blocks[0].hook_resid_pre.add_hook(lambda x, hook: x)  # the user's own hook: it must stay

    def broken(logits, batch):
        raise RuntimeError("metric failed")

    hooks_before = {name: len(point.fwd_hooks) for name, point in tiny_gqa_model.hook_dict.items()}
    assert hooks_before["blocks.0.hook_resid_pre"] == 1
    try:
        for method in ("eap", "eap_ig"):
            with pytest.raises(RuntimeError, match="metric failed"):
                edge_scores(tiny_gqa_model, clean, corrupted, broken, method=method)
            assert {name: len(p.fwd_hooks) for name, p in tiny_gqa_model.hook_dict.items()} == hooks_before
            assert not tiny_gqa_model.cfg.use_split_qkv_input and not tiny_gqa_model.cfg.use_hook_mlp_in
    finally:
        tiny_gqa_model.blocks[0].hook_resid_pre.remove_hooks()
