"""PatchResult: views (mean, labels) and JSON."""

from __future__ import annotations

import json

import pytest

from lens_bias.patching import logit_diff_metric, patch
from lens_bias.provenance import to_jsonable

from .reference import METRIC, make_pairs


def test_result_views_and_json(tiny_model):
    clean, corrupted = make_pairs([5, 5], swap_at=[2, 2], seed=8)
    result = patch(tiny_model, clean, corrupted, METRIC, target="z_pos", layers=[0, -1])
    assert result.layers == [0, tiny_model.cfg.n_layers - 1]
    assert result.mean().shape == (2, 5, tiny_model.cfg.n_heads)
    labels = result.position_labels()
    assert len(labels) == len(set(labels)) == 5 and labels[2].endswith("(varies)")  # tokens vary across pairs
    single = patch(tiny_model, clean[0:1], corrupted[0:1], logit_diff_metric(5, 7), target="resid_pre")
    assert single.position_labels()[2].count("/") >= 1  # the swapped token: clean/corrupted
    assert result.head_labels() == ["H0", "H1", "H2", "H3"]
    data = json.loads(json.dumps(to_jsonable(result.to_dict())))
    assert data["target"] == "z_pos" and len(data["scores"]) == 2 and data["direction"] == "denoising"
    assert data["clean_metric"] == pytest.approx(result.clean_metric.tolist())
