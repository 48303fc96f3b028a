"""experiments.biasscope: the config is checked before any model loads, the layer and k against the model
before any training; the whole pipeline on the embedded model (slow)."""

from __future__ import annotations

import pytest

from experiments import biasscope, cli
from lens_bias.data.injection_specs import injection_specs
from lens_bias.errors import InputError
from lens_bias.localize import study


def test_the_attributes_are_the_injection_specs():
    """The experiment spells its choices out (it imports no library module at its top: --help speed)."""
    assert tuple(sorted(spec.name for spec in injection_specs())) == biasscope.ATTRIBUTES


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--seeds", "0", "1", "--min-runs", "3"], "more than the 2 runs"),
        (["--seeds", "1", "1"], "each seed once"),
    ],
)
def test_bad_config_is_refused_before_any_model_loads(no_model, argv, message):
    with pytest.raises(InputError, match=message):
        biasscope.main(argv)


def test_config_defaults_and_quick():
    config, _ = cli.parse(biasscope.Config, [])
    assert (config.seeds, config.n_templates, config.n_crows_pairs, config.min_runs) == ((0, 1, 2), None, 80, None)
    config, _ = cli.parse(biasscope.Config, ["--quick", "--seeds", "4"], quick=biasscope.QUICK)
    assert (config.seeds, config.steps, config.min_runs) == ((4,), 12, 1)
    assert config.study().spec.name == "reckless_driving"
    assert cli.parse(biasscope.Config, ["--n-crows-pairs", "all", "--n-stereoset", "all"])[0].n_crows_pairs is None
    with pytest.raises(InputError, match="at least one seed"):
        biasscope.Config(seeds=())


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--destructive-layer", "99"], "Layer 99 is outside the model"),
        (["--k", "17"], "more than the model's 16 heads"),
    ],
)
def test_model_dependent_checks_come_before_any_training(tiny_llama_dir, monkeypatch, tmp_path, argv, message):
    def injection_runs(*args, **kwargs):
        raise AssertionError("training started before the layer was checked")

    monkeypatch.setattr(study, "injection_runs", injection_runs)
    with pytest.raises(InputError, match=message):
        biasscope.main(["--model", str(tiny_llama_dir), "--device", "cpu", "--out", str(tmp_path), *argv])


@pytest.mark.slow
def test_biasscope_experiment_on_the_embedded_model(tmp_path):
    """The whole pipeline at its smallest (one 5-step injection, 2 random draws): plumbing and figures; the
    method's behaviour is tested in tests/localize and test_inject."""
    result = biasscope.main(
        [
            "--quick",
            "--seeds",
            "0",
            "--steps",
            "5",
            "--n-random",
            "2",
            "--n-crows-pairs",
            "8",
            "--n-stereoset",
            "8",
            "--n-neutral",
            "8",
            "--n-bbq-disambig",
            "4",
            "--n-lms",
            "8",
            "--n-templates",
            "2",
            "--no-png",
            "--out",
            str(tmp_path),
        ]
    )
    assert len(result.values["selected_heads"]) == 5
    assert set(result.values["bias_reduction"]) == {
        "injected entity",
        "real countries",
        "CrowS-Pairs nationality",
        "StereoSet race",
    }
    for stem in ("head_scores_patching", "head_scores_dla", "topk_overlap", "bias_reduction", "side_effects"):
        assert (tmp_path / f"{stem}.html").exists()
    assert (tmp_path / "selected_heads.json").exists()
    assert result.config["seeds"] == [0] and result.config["n_templates"] == 2
    frame = result.to_frame()  # per item: each set's bias score under each condition, then the side effects
    ablation = frame[frame["evaluation_set"].notna()]
    assert set(ablation["evaluation_set"]) == set(result.values["bias_reduction"])
    draws = {"random heads (draw 1)", "random heads (draw 2)"}
    assert set(ablation["condition"]) == {"baseline", "selected heads", *draws}
    stereoset = ablation[(ablation["evaluation_set"] == "StereoSet race") & (ablation["condition"] == "baseline")]
    baseline = result.values["bias_reduction"]["StereoSet race"]["baseline"]
    assert len(stereoset) == 8 and stereoset["bias_score"].mean() == pytest.approx(baseline["value"])
    assert "selected heads" in set(frame[frame["evaluation_set"].isna()]["condition"])  # side-effect readouts
    (circuit,) = result.values["injected_circuits"]  # the injected bias's top 1,000 edges, pruned
    assert circuit["seed"] == 0 and 0 < circuit["pruned_edges"] <= 1000 and circuit["n_heads"] == 270
    hits = [tuple(head) for head in circuit["selected_in_circuit"]]
    assert hits == [
        tuple(h) for h in result.values["selected_heads"] if tuple(h) in map(tuple, circuit["circuit_heads"])
    ]
    assert circuit["chance"] == len(circuit["circuit_heads"]) / 270 and 0 < circuit["p_value"] <= 1
    assert result.tensors["seed0/circuit_scores"].shape == (301, 481)  # every edge's EAP score
