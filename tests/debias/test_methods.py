"""Debiasing methods: registered by name, fitted once, saved, reused while the key holds; the steering multiplier."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lens_bias.debias.methods import (
    REGISTRY,
    AlignEZ,
    FitContext,
    HeadAblation,
    LoraFinetune,
    RedTeam,
    Steering,
    from_options,
    method,
    reuse_or_fit,
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
    with pytest.warns(UserWarning, match=r"another configuration \(it differs in k\)"):
        changed, _, _ = reuse_or_fit(tmp_path, "heads", {"k": 2, "layers": (1, 2)}, fit)
    assert len(fits) == 2 and changed[0].describe() != first[0].describe()
    (tmp_path / "heads" / "fit.json").unlink()  # a damaged fit: a warning saying why, and a refit
    with pytest.warns(UserWarning, match=r"saved debiasing fit .*heads is damaged"):
        reuse_or_fit(tmp_path, "heads", {"k": 2, "layers": (1, 2)}, fit)
    assert len(fits) == 3


def test_steering_candidate_picks_the_multiplier_closest_to_unbiased(tiny_model, tmp_path):
    config = Steering("gender", layers=(1, 2), multipliers=(-3.0, -1.0, 1.0), n_pairs=8, n_test=8, n_calibration=6)
    context = FitContext(tmp_path, batch_size=8)
    candidate = config.fit(tiny_model, context)
    (steer,) = candidate.interventions
    assert isinstance(steer, AddVector) and steer.start is None and list(steer.layers) == [candidate.details["layer"]]
    steered = candidate.details["calibration"]["steered"]
    assert steer.multiplier == min((-3.0, -1.0, 1.0), key=lambda m: abs(steered[str(m)]))
    # the calibration is what preference_measure gives on the training pairs under that steering
    from lens_bias.data.contrast_splits import contrast_split

    pairs = contrast_split("gender", n_train=8, n_test=8, seed=0).train[:6]
    measured = preference_measure(tiny_model, pairs, batch_size=8)([steer])
    assert measured == pytest.approx(steered[str(steer.multiplier)], abs=1e-4)
    again = config.fit(tiny_model, context)
    assert torch.equal(again.interventions[0].vector.directions, steer.vector.directions)  # reused, not refitted
    with pytest.raises(InputError, match="must be non-zero"):
        Steering("gender", layers=(1,), multipliers=(1.0, 0.0))


def test_redteam_sizes_both_vectors_by_its_pairs(tiny_model, tmp_path):
    """--n-pairs / --quick shrink the refusal vector's pairs too, not only the bias vector's."""
    config = RedTeam("gender", layers=(1, 2), n_pairs=6, n_test=4)
    candidate = config.fit(tiny_model, FitContext(tmp_path, batch_size=8))
    bias, refusal = (candidate.details[k]["data"] for k in ("bias", "refusal"))
    assert (bias["n_train"], refusal["n_train"], refusal["n_test"]) == (6, 6, 4)
    assert [type(i) for i in candidate.interventions] == [AddVector, AddVector]


def test_head_ablation_candidate_from_a_saved_selection(tiny_model, tmp_path):
    path = save_intervention(HeadScaling(((1, 0), (2, 1)), 0.0), tmp_path / "selected_heads", {})
    candidate = HeadAblation(heads_file=path, scale=0.5).fit(tiny_model, FitContext(tmp_path))
    assert candidate.interventions == (HeadScaling(((1, 0), (2, 1)), 0.5),)
    with pytest.raises(InputError, match=r"experiments\.biasscope"):
        HeadAblation(heads_file=tmp_path / "missing.json")
    vector = SteeringVector("v", (1,), torch.ones(1, tiny_model.cfg.d_model), torch.ones(1))
    other = save_intervention(AddVector(vector, 1.0), tmp_path / "vector", {})
    with pytest.raises(InputError, match="not a head scaling"):
        HeadAblation(heads_file=other).fit(tiny_model, FitContext(tmp_path))
    with pytest.raises(InputError, match="Unknown BiasInject attribute"):
        HeadAblation(attribute="astrology")


def test_head_ablation_candidate_fits_the_recurring_heads(tiny_model, tmp_path, monkeypatch):
    from lens_bias.debias.methods import heads

    def run(top: list[tuple[int, int]]) -> SimpleNamespace:
        scores = torch.zeros(tiny_model.cfg.n_layers, tiny_model.cfg.n_heads)
        for rank, (layer, head) in enumerate(top):
            scores[layer, head] = 2.0 - rank
        return SimpleNamespace(scores=SimpleNamespace(heads=lambda method: scores), adversarial="Italy")

    runs = [run([(1, 0), (2, 1)]), run([(1, 0), (3, 2)])]
    calls = []
    monkeypatch.setattr(heads, "injection_runs", lambda *args, **kwargs: calls.append(kwargs) or runs)
    config = HeadAblation(seeds=(0, 1), steps=3, k=2, min_runs=2)
    candidate = config.fit(tiny_model, FitContext(tmp_path))
    assert candidate.details["heads"] == [[1, 0]] and candidate.interventions == (HeadScaling(((1, 0),), 0.0),)
    assert candidate.artefacts[0].endswith("biasscope-reckless_driving/0.json") and calls[0]["steps"] == 3
    again = replace(config, scale=0.5).fit(tiny_model, FitContext(tmp_path))
    assert len(calls) == 1 and again.interventions == (HeadScaling(((1, 0),), 0.5),)  # reused, rescaled


def test_finetune_candidate_is_a_new_checkpoint_identified_by_its_fit(tiny_llama_dir, tmp_path):
    torch.set_num_threads(1)  # tiny training ops wait on busy cores otherwise (see lens_bias.debias.lora)
    context = FitContext(tmp_path, source=str(tiny_llama_dir))
    candidate = LoraFinetune(max_steps=1).fit(None, context)  # type: ignore[arg-type]  # a new checkpoint
    assert candidate.interventions == () and candidate.model is not None and candidate.family == "fine-tuning"
    record = candidate.describe()["model"]
    assert record["kind"] == "hf-folder" and record["source"].endswith("lora") and len(record["revision"]) == 16
    again = LoraFinetune(max_steps=1).fit(None, context)  # type: ignore[arg-type]
    assert again.details["reused"] and again.describe()["model"]["revision"] == record["revision"]
    longer = LoraFinetune(max_steps=2).fit(None, context)  # type: ignore[arg-type]  # another fit: other scoring cells
    assert not longer.details["reused"] and longer.describe()["model"]["revision"] != record["revision"]


def test_alignez_candidate_boosts_and_removes_at_the_most_aligned_layers(tiny_long_model, tmp_path, monkeypatch):
    from lens_bias.debias import alignez
    from lens_bias.debias.methods import alignez as alignez_method
    from lens_bias.directions import Subspace
    from lens_bias.interventions import SubspaceEdit

    def degenerate(model, template, prompts, **kwargs):  # the tiny model's text: every pair falls back to templates
        return [SimpleNamespace(text="yes " * 12) for _ in prompts]

    monkeypatch.setattr(alignez, "generate", degenerate)
    fits = []
    subspace = alignez.alignez_subspace  # counted: a reused candidate does not read activations again
    monkeypatch.setattr(alignez_method, "alignez_subspace", lambda *a, **k: fits.append(1) or subspace(*a, **k))
    config = AlignEZ(layers=(0, 1, 2, 3), strength=7.0, top_layers=2)
    candidate = config.fit(tiny_long_model, FitContext(tmp_path))
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
    again = config.fit(tiny_long_model, FitContext(tmp_path))
    assert len(fits) == 1 and again.details == candidate.details
    assert isinstance(again.interventions[0].subspace, Subspace)
    with pytest.raises(InputError, match="top_layers must be between 1 and the 4"):
        AlignEZ(layers=(0, 1, 2, 3), top_layers=5).fit(tiny_long_model, FitContext(tmp_path))


def test_methods_are_registered_by_name_and_built_from_options(tmp_path):
    assert sorted(REGISTRY) == ["alignez_ccs", "alignez_svd", "circuit_edges", "heads", "lora", "redteam", "steering"]
    assert method("alignez_ccs")().direction == "ccs"
    with pytest.raises(
        InputError, match="Unknown debiasing method 'prayer'; known: alignez_ccs, alignez_svd, circuit_edges, heads"
    ):
        method("prayer")
    options = {"steer_bias_types": ("gender", "race"), "layers": (1, 2), "steer_multipliers": (-1.0, 1.0), "k": 3}
    configs = from_options(["steering", "heads", "alignez_svd"], options)
    assert [type(c).__name__ for c in configs] == ["Steering", "Steering", "HeadAblation", "AlignEZ"]
    assert [c.bias_type for c in configs[:2]] == ["gender", "race"] and configs[0].layers == (1, 2)
    assert configs[0].multipliers == (-1.0, 1.0) and configs[2].k == 3 and configs[3].layers is None
    with pytest.raises(InputError, match=r"multipliers \(--steer-multipliers\) must be non-zero"):
        from_options(["steering"], {"steer_multipliers": (1.0, 0.0)})
    with pytest.raises(InputError, match="--steer-bias-types is empty"):
        from_options(["steering"], {"steer_bias_types": ()})
    with pytest.raises(InputError, match="Unknown bias type 'astrology'"):
        from_options(["redteam"], {"redteam_bias_type": "astrology"})
    with pytest.raises(InputError, match="No debiasing methods"):
        from_options([], {})


def test_a_registered_toy_method_is_fitted_by_name(tiny_model, tmp_path):
    from lens_bias.debias.methods import Candidate, MethodConfig, register

    @register("toy_halve_heads")
    @dataclass(frozen=True)
    class HalveHeads(MethodConfig):
        heads: tuple[tuple[int, int], ...] = ((0, 0),)
        scale: float = field(default=0.5, metadata={"option": "head_scale"})

        def fit(self, model, context):
            return Candidate(f"heads x{self.scale:g}", "head ablation", (HeadScaling(self.heads, self.scale),))

    try:
        (config,) = from_options(["toy_halve_heads"], {"head_scale": 0.25})
        candidate = config.fit(tiny_model, FitContext(tmp_path))
        assert candidate.interventions == (HeadScaling(((0, 0),), 0.25),) and candidate.name == "heads x0.25"
    finally:
        del REGISTRY["toy_halve_heads"]


def test_circuit_edges_candidate_ablates_the_fitted_edges_and_is_reused(tiny_model, tmp_path):
    from lens_bias.circuits.ablation import EdgeAblation

    config = method("circuit_edges")(n_pairs=3, min_gap=-100.0, k=7, control_edges=40)
    context = FitContext(folder=tmp_path, batch_size=8)
    candidate = config.fit(tiny_model, context)
    (ablation,) = candidate.interventions
    assert isinstance(ablation, EdgeAblation) and len(ablation.edges) == 7 and candidate.family == "circuit ablation"
    details = candidate.details
    assert details["contrast"] == "gender_swap" and details["pairs"]["used"] == 6  # 3 fit on, 3 held out
    assert details["control_circuit"]["excluded_edges"] == 40 and details["control_pairs"]["used"] == 6
    held = details["held_out"]  # the gaps of the 3 held-out pairs of each, without and with the cut
    assert held["contrast"]["n_pairs"] == held["control"]["n_pairs"] == 3
    assert held["contrast"]["before"] != held["contrast"]["after"]
    assert "minus gender_definitional top 40" in candidate.name
    with pytest.raises(InputError, match="exceed the model's 479 edges"):
        method("circuit_edges")(k=7).check(tiny_model)  # the default 1,000 control edges: before any fit
    again = config.fit(tiny_model, context)
    assert again.artefacts == candidate.artefacts and again.interventions[0].edges.equal(ablation.edges)
    plain = method("circuit_edges")(n_pairs=3, min_gap=-100.0, k=7, control=None).fit(tiny_model, context)
    assert (
        plain.artefacts != candidate.artefacts and "control_circuit" not in plain.details
    )  # another fit, its own file
    for bad in ({"contrast": "stereoset:age"}, {"control": "gender_swap"}, {"control_edges": -1}):
        with pytest.raises(InputError):
            method("circuit_edges")(**bad)
    options = {"circuit_control": None, "circuit_k": 9, "circuit_contrast": "stereoset:gender"}
    (configured,) = from_options(["circuit_edges"], options)
    assert (configured.control, configured.k, configured.contrast) == (None, 9, "stereoset:gender")
