"""Debiasing candidates: fitted once, saved, reused while the key holds; the steering multiplier choice."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lens_bias.debias.methods import (
    alignez_candidate,
    finetune_candidate,
    head_ablation_candidate,
    reuse_or_fit,
    steering_candidate,
)
from lens_bias.directions import SteeringVector
from lens_bias.errors import InputError
from lens_bias.interventions import AddVector, HeadScaling, save_intervention
from lens_bias.steering import preference_measure


def test_reuse_or_fit_reuses_only_the_same_key(tiny_model, tmp_path):
    fits = []

    def fit():
        fits.append(1)
        return [HeadScaling(((0, len(fits) % 4),), 0.0)], {"n": len(fits)}

    first, details, paths = reuse_or_fit(tmp_path, "heads", {"k": 1, "layers": (1, 2)}, fit)
    again, details_again, _ = reuse_or_fit(tmp_path, "heads", {"k": 1, "layers": (1, 2)}, fit)
    assert len(fits) == 1 and again[0].describe() == first[0].describe() and details_again == details == {"n": 1}
    saved = json.loads(Path(paths[0]).read_text())
    assert saved["provenance"]["fit_key"] == {"k": 1, "layers": [1, 2]}
    changed, _, _ = reuse_or_fit(tmp_path, "heads", {"k": 2, "layers": (1, 2)}, fit)
    assert len(fits) == 2 and changed[0].describe() != first[0].describe()
    (tmp_path / "heads" / "fit.json").unlink()  # an interrupted fit leaves no index: refit
    reuse_or_fit(tmp_path, "heads", {"k": 2, "layers": (1, 2)}, fit)
    assert len(fits) == 3


def test_steering_candidate_picks_the_multiplier_closest_to_unbiased(tiny_model, tmp_path):
    settings = {"layers": [1, 2], "multipliers": (-3.0, -1.0, 1.0), "n_pairs": 8, "n_test": 8, "n_calibration": 6}
    candidate = steering_candidate(tiny_model, "gender", tmp_path, **settings, batch_size=8)
    (steer,) = candidate.interventions
    assert isinstance(steer, AddVector) and steer.start is None and list(steer.layers) == [candidate.details["layer"]]
    steered = candidate.details["calibration"]["steered"]
    assert steer.multiplier == min((-3.0, -1.0, 1.0), key=lambda m: abs(steered[str(m)]))
    # the calibration is what preference_measure gives on the training pairs under that steering
    from lens_bias.data.contrast_splits import contrast_split

    pairs = contrast_split("gender", n_train=8, n_test=8, seed=0).train[:6]
    measured = preference_measure(tiny_model, pairs, batch_size=8)([steer])
    assert measured == pytest.approx(steered[str(steer.multiplier)], abs=1e-4)
    again = steering_candidate(tiny_model, "gender", tmp_path, **settings, batch_size=8)
    assert torch.equal(again.interventions[0].vector.directions, steer.vector.directions)  # reused, not refitted
    with pytest.raises(InputError, match="must be non-zero"):
        steering_candidate(tiny_model, "gender", tmp_path, layers=[1], multipliers=(1.0, 0.0))


def test_head_ablation_candidate_from_a_saved_selection(tiny_model, tmp_path):
    path = save_intervention(HeadScaling(((1, 0), (2, 1)), 0.0), tmp_path / "selected_heads", {})
    candidate = head_ablation_candidate(tiny_model, tmp_path, heads_file=path, scale=0.5)
    assert candidate.interventions == (HeadScaling(((1, 0), (2, 1)), 0.5),)
    with pytest.raises(InputError, match=r"experiments\.biasscope"):
        head_ablation_candidate(tiny_model, tmp_path, heads_file=tmp_path / "missing.json")
    vector = SteeringVector("v", (1,), torch.ones(1, tiny_model.cfg.d_model), torch.ones(1))
    other = save_intervention(AddVector(vector, 1.0), tmp_path / "vector", {})
    with pytest.raises(InputError, match="not a head scaling"):
        head_ablation_candidate(tiny_model, tmp_path, heads_file=other)
    with pytest.raises(InputError, match="Unknown BiasInject attribute"):
        head_ablation_candidate(tiny_model, tmp_path, attribute="astrology")


def test_head_ablation_candidate_fits_the_recurring_heads(tiny_model, tmp_path, monkeypatch):
    from lens_bias.debias import methods

    def run(top: list[tuple[int, int]]) -> SimpleNamespace:
        scores = torch.zeros(tiny_model.cfg.n_layers, tiny_model.cfg.n_heads)
        for rank, (layer, head) in enumerate(top):
            scores[layer, head] = 2.0 - rank
        return SimpleNamespace(scores=SimpleNamespace(heads=lambda method: scores), adversarial="Italy")

    runs = [run([(1, 0), (2, 1)]), run([(1, 0), (3, 2)])]
    calls = []
    monkeypatch.setattr(methods, "injection_runs", lambda *args, **kwargs: calls.append(kwargs) or runs)
    candidate = head_ablation_candidate(tiny_model, tmp_path, seeds=(0, 1), steps=3, k=2, min_runs=2)
    assert candidate.details["heads"] == [[1, 0]] and candidate.interventions == (HeadScaling(((1, 0),), 0.0),)
    assert candidate.artefacts[0].endswith("biasscope-reckless_driving/0.json") and calls[0]["steps"] == 3
    again = head_ablation_candidate(tiny_model, tmp_path, seeds=(0, 1), steps=3, k=2, min_runs=2, scale=0.5)
    assert len(calls) == 1 and again.interventions == (HeadScaling(((1, 0),), 0.5),)  # reused, rescaled


def test_finetune_candidate_is_a_new_checkpoint_identified_by_its_fit(tiny_llama_dir, tmp_path):
    torch.set_num_threads(1)  # tiny training ops wait on busy cores otherwise (see lens_bias.debias.finetune)
    candidate = finetune_candidate(str(tiny_llama_dir), tmp_path, max_steps=1)
    assert candidate.interventions == () and candidate.model is not None and candidate.family == "fine-tuning"
    record = candidate.describe()["model"]
    assert record["kind"] == "hf-folder" and record["source"].endswith("lora") and len(record["revision"]) == 16
    again = finetune_candidate(str(tiny_llama_dir), tmp_path, max_steps=1)
    assert again.details["reused"] and again.describe()["model"]["revision"] == record["revision"]
    longer = finetune_candidate(str(tiny_llama_dir), tmp_path, max_steps=2)  # another fit: other scoring cells
    assert not longer.details["reused"] and longer.describe()["model"]["revision"] != record["revision"]


def test_alignez_candidate_boosts_and_removes_at_the_most_aligned_layers(tiny_long_model, tmp_path, monkeypatch):
    from lens_bias.debias import alignez
    from lens_bias.directions import Subspace
    from lens_bias.interventions import SubspaceEdit

    def degenerate(model, template, prompts, **kwargs):  # the tiny model's text: every pair falls back to templates
        return [SimpleNamespace(text="yes " * 12) for _ in prompts]

    monkeypatch.setattr(alignez, "generate", degenerate)
    fits = []
    subspace = alignez.alignez_subspace  # counted: a reused candidate does not read activations again
    monkeypatch.setattr(alignez, "alignez_subspace", lambda *a, **k: fits.append(1) or subspace(*a, **k))
    candidate = alignez_candidate(tiny_long_model, tmp_path, layers=[0, 1, 2, 3], strength=7.0, top_layers=2)
    boost, remove = candidate.interventions
    assert isinstance(boost, SubspaceEdit) and isinstance(remove, SubspaceEdit)
    assert (boost.mode, boost.strength, remove.mode) == ("boost", 7.0, "remove")
    layers = candidate.details["layers"]
    alignment = candidate.details["mean_alignment"]
    assert list(boost.layers) == list(remove.layers) == layers and len(layers) == 2
    assert min(alignment[str(l)] for l in layers) >= max(v for k, v in alignment.items() if int(k) not in layers)
    for layer in layers:
        assert torch.equal(remove.subspace.bases[layer], -boost.subspace.bases[layer])
    assert candidate.details["well_formed_share"] == 0.0  # every pair came from the templates
    again = alignez_candidate(tiny_long_model, tmp_path, layers=[0, 1, 2, 3], strength=7.0, top_layers=2)
    assert len(fits) == 1 and again.details == candidate.details
    assert isinstance(again.interventions[0].subspace, Subspace)
    with pytest.raises(InputError, match="top_layers must be between 1 and the 4"):
        alignez_candidate(tiny_long_model, tmp_path, layers=[0, 1, 2, 3], top_layers=5)
