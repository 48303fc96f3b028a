"""Side effects: the same capability readouts with and without an intervention, on the same items; a
destructive intervention must be flagged, a no-op must not; the knowledge readout credits a strictly highest
right answer by mean per-token log-probability."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lens_bias.data import stereoset_scores
from lens_bias.forward.readouts import LogProbs, continuation_logprobs
from lens_bias.interventions import AddVector, HeadScaling, load_intervention, save_intervention
from lens_bias.provenance import Result
from lens_bias.side_effects import (
    Items,
    SideEffectConfig,
    capability_scores,
    compare,
    knowledge_correct,
    side_effects,
)
from lens_bias.stats import bootstrap_mean

SMALL = SideEffectConfig(n_neutral=8, n_bbq=6, n_stereoset=8, n_knowledge=8, seed=0)


@pytest.fixture(scope="module")
def tiny_model(tiny_long_model):
    return tiny_long_model


@pytest.fixture(scope="module")
def tiny_baseline(tiny_model):
    return capability_scores(tiny_model, (), SMALL)


def test_items_are_a_fixed_seeded_subsample():
    items = Items.draw(SMALL)
    assert (len(items.neutral), len(items.bbq), len(items.stereoset)) == (8, 6, 8)
    assert all(item.context_condition == "disambig" for item in items.bbq)
    assert Items.draw(SMALL).fingerprints() == items.fingerprints()
    other = Items.draw(SideEffectConfig(n_neutral=8, n_bbq=6, n_stereoset=8, n_knowledge=8, seed=1))
    assert other.fingerprints()["side_effects_bbq"] != items.fingerprints()["side_effects_bbq"]
    assert len(items.knowledge) == 8 and len({item.domain for item in items.knowledge}) > 1
    assert other.fingerprints()["side_effects_knowledge"] != items.fingerprints()["side_effects_knowledge"]
    assert len(Items.draw(SideEffectConfig()).knowledge) == 208  # None: every question
    for kwargs in ({"n_bbq": 1}, {"n_stereoset": 0}, {"n_neutral": 1}, {"n_knowledge": 1}):
        with pytest.raises(ValueError):
            SideEffectConfig(**kwargs)


def test_capability_scores_follow_their_definitions(tiny_model, tiny_baseline):
    items = Items.draw(SMALL)
    scores = tiny_baseline
    assert scores.neutral.shape == (8,) and scores.bbq_correct.shape == (6,) and scores.related.shape == (8,)
    expected = continuation_logprobs(tiny_model, [""], [items.neutral[3]]).mean
    assert scores.neutral[3] == pytest.approx(float(expected[0]), abs=1e-5)
    item = items.bbq[2]
    answers = continuation_logprobs(
        tiny_model, [f"{item.context} {item.question}\nAnswer:"] * 3, [f" {a}" for a in item.answers]
    ).mean
    assert scores.bbq_correct[2] == float(int(answers.argmax()) == item.label)
    row = scores.stereoset[5]
    assert scores.related[5] == ((row.stereotype > row.unrelated) + (row.anti_stereotype > row.unrelated)) / 2
    assert scores.knowledge_correct.shape == (8,)
    for i, question in enumerate(items.knowledge):
        options = continuation_logprobs(tiny_model, [question.prompt] * 4, list(question.continuations)).mean
        assert scores.knowledge_correct[i] == float(options[0] > options[1:].max())


def test_knowledge_is_correct_only_when_the_right_answer_is_strictly_highest():
    scores = np.array(
        [
            [-1.0, -2.0, -3.0, -4.0],  # right answer highest
            [-2.0, -1.0, -3.0, -4.0],  # a distractor highest
            [-1.0, -1.0, -3.0, -4.0],  # tie with a distractor: wrong
            [-5.0, -5.0, -5.0, -5.0],  # every option alike: wrong
            [-1.0, -1.5, -1.0001, -9.0],
        ]
    )
    assert knowledge_correct(scores).tolist() == [1.0, 0.0, 0.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="option_scores must be"):
        knowledge_correct(np.zeros((3, 1)))  # no distractor


def test_knowledge_options_are_ranked_by_mean_not_summed_logprob(tiny_model, monkeypatch):
    import lens_bias.side_effects

    config = SideEffectConfig(n_neutral=2, n_bbq=2, n_stereoset=2, n_knowledge=2)
    items = Items.draw(config)
    # a one-token right answer (-2) against a two-token distractor (-1.5 per token, -3 in all): the sum
    # prefers the right answer, the mean the distractor; the second item is the other way round
    total = torch.tensor([-2.0, -3.0, -9.0, -9.0, -4.0, -3.0, -9.0, -9.0])
    n_tokens = torch.tensor([1, 2, 1, 1, 2, 1, 1, 1])
    calls = []

    def fake(model, template, users, answers, **kwargs):
        calls.append((template, list(users), [list(a) for a in answers]))
        return LogProbs(total=total, mean=total / n_tokens, n_tokens=n_tokens)

    monkeypatch.setattr(lens_bias.side_effects, "shared_prompt_logprobs", fake)
    scores = capability_scores(tiny_model, (), config, items=items)
    assert scores.knowledge_correct.tolist() == [0.0, 1.0]
    assert calls == [(None, [q.prompt for q in items.knowledge], [list(q.continuations) for q in items.knowledge])]


def test_a_no_op_intervention_changes_nothing_and_the_lms_is_stereosets(tiny_model, tiny_baseline):
    report = side_effects(tiny_model, [HeadScaling(((0, 1), (2, 2)), scale=1.0)], SMALL, baseline=tiny_baseline)
    assert report.harmed() == []
    assert report.interventions == [HeadScaling(((0, 1), (2, 2)), scale=1.0).describe()]
    assert [effect.name for effect in report.effects] == [
        "neutral_logprob",
        "bbq_disambig_accuracy",
        "stereoset_lms",
        "knowledge_accuracy",
    ]
    assert report.effects[-1].unit == "share correct (chance 1/4)" and report.details["n"]["knowledge"] == 8
    # the baseline's sentences share their prefixes (lens_bias.forward.shared_prefix), an intervention's run one per
    # row: the same numbers up to the order of float sums
    for effect in report.effects:
        assert abs(effect.delta.value) < 1e-6 and effect.baseline.value == pytest.approx(effect.intervened.value)
    lms = next(e for e in report.effects if e.name == "stereoset_lms")
    assert lms.baseline.value == pytest.approx(stereoset_scores(tiny_baseline.stereoset)["overall"]["lms"])
    assert report.details["stereoset"]["baseline"]["n_scored"] == 8
    knowledge = next(e for e in report.effects if e.name == "knowledge_accuracy")  # a share: Wilson, Bonett-Price
    assert knowledge.delta.low < 0.0 < knowledge.delta.high and knowledge.baseline.low < knowledge.baseline.high
    rows = [row for row in report.items if row["readout"] == "knowledge"]
    assert [row["condition"] for row in rows] == ["baseline"] * 8 + ["intervened"] * 8
    assert sum(row["score"] for row in rows[:8]) / 8 == pytest.approx(knowledge.baseline.value)


def test_saved_interventions_are_loaded_by_kind(tiny_model, tiny_baseline, tmp_path):
    scaling = HeadScaling(((1, 0), (1, 1), (1, 2), (1, 3)), scale=0.0)
    path = save_intervention(scaling, tmp_path / "ablation", provenance={})
    assert load_intervention(path) == scaling
    from_file = side_effects(tiny_model, [path], SMALL, baseline=tiny_baseline)
    from_object = side_effects(tiny_model, [scaling], SMALL, baseline=tiny_baseline)
    assert from_file.to_dict() == from_object.to_dict()
    Result("something", values={}, config={"intervention": {"kind": "mystery"}}, provenance={}).save(tmp_path / "x")
    with pytest.raises(ValueError, match="known saved intervention"):
        load_intervention(tmp_path / "x.json")
    with pytest.raises(ValueError, match="No interventions"):
        side_effects(tiny_model, [], SMALL)


def test_saved_steering_intervention_round_trips_and_runs(tiny_model, tiny_baseline, tmp_path):
    from lens_bias.directions import SteeringVector

    directions = torch.randn(2, tiny_model.cfg.d_model, generator=torch.Generator().manual_seed(0))
    vector = SteeringVector("test", (1, 2), directions, torch.tensor([3.0, 4.0]), "resid_post", {"dataset": "test"})
    steer = AddVector(vector, 2.5, [2], start=None)
    loaded = load_intervention(save_intervention(steer, tmp_path / "steer", provenance=vector.provenance))
    assert isinstance(loaded, AddVector) and loaded.describe() == steer.describe()
    assert torch.equal(loaded.vector.directions, directions) and loaded.vector.provenance == {"dataset": "test"}
    assert (loaded.multiplier, list(loaded.layers), loaded.start) == (2.5, [2], None)
    with pytest.raises(ValueError, match="start=None"):  # raw-text readouts have no instruction end
        side_effects(tiny_model, [AddVector(vector, 2.5, [2])], SMALL, baseline=tiny_baseline)
    from_file = side_effects(tiny_model, [tmp_path / "steer.json"], SMALL, baseline=tiny_baseline)
    assert from_file.to_dict() == side_effects(tiny_model, [steer], SMALL, baseline=tiny_baseline).to_dict()


def test_a_vector_of_another_model_is_refused_before_the_baseline(tiny_model, tmp_path, monkeypatch):
    import lens_bias.side_effects
    from lens_bias.directions import SteeringVector
    from lens_bias.errors import InputError

    def baseline_ran(*args, **kwargs):
        raise AssertionError("the baseline was scored before the interventions were checked")

    monkeypatch.setattr(lens_bias.side_effects, "capability_scores", baseline_ran)
    foreign = SteeringVector("smollm_gender", (2,), torch.ones(1, 576), torch.ones(1))  # the embedded model's width
    path = save_intervention(AddVector(foreign, 1.0, start=None), tmp_path / "foreign", provenance={})
    for intervention in (AddVector(foreign, 1.0, start=None), path):
        with pytest.raises(InputError, match=r"'smollm_gender' has width 576, but .* has d_model 64"):
            side_effects(tiny_model, [intervention], SMALL)
    with pytest.raises(InputError, match=r"outside the model"):
        side_effects(tiny_model, [HeadScaling(((0, 99),))], SMALL)


def test_scores_of_different_items_are_not_compared(tiny_model, tiny_baseline):
    other = capability_scores(
        tiny_model, (), SideEffectConfig(n_neutral=8, n_bbq=6, n_stereoset=8, n_knowledge=8, seed=1)
    )
    with pytest.raises(ValueError, match="different items"):
        compare(tiny_baseline, other)


@pytest.mark.slow
def test_real_model_destructive_ablation_is_detected(smollm):
    config = SideEffectConfig(n_neutral=16, n_bbq=4, n_stereoset=8, n_knowledge=16, seed=0)
    baseline = capability_scores(smollm, (), config)
    destroy = HeadScaling(tuple((1, h) for h in range(smollm.cfg.n_heads)), scale=0.0)
    report = side_effects(smollm, [destroy], config, baseline=baseline)
    neutral = next(e for e in report.effects if e.name == "neutral_logprob")
    print(f"\nablating every head of layer 1: {[(e.name, str(e.delta)) for e in report.effects]}")
    assert "neutral_logprob" in report.harmed()
    assert neutral.delta.high < -1.0  # nats per token: fluency collapses
    assert np.isfinite([e.delta.value for e in report.effects]).all()


@pytest.mark.slow
def test_real_model_answers_the_knowledge_questions_above_chance(smollm):
    # measured on all 208 questions (fp32): 0.84 [0.78, 0.88]; this seeded 80 keeps the test short
    config = SideEffectConfig(n_neutral=2, n_bbq=2, n_stereoset=2, n_knowledge=80, seed=0)
    accuracy = bootstrap_mean(capability_scores(smollm, (), config).knowledge_correct, seed=0)
    print(f"\nknowledge accuracy of the embedded model on 80 questions: {accuracy}")
    assert accuracy.low > 0.25  # chance is 1/4
