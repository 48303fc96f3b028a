"""BBQ's scorer: the question block, the two readouts of one prompt equal to pair-by-pair scoring, the
context_question format of the side-effect readout; the harness convention by hand on the tiny model and
against lm-evaluation-harness's own per-sample output (no model: its rules; the real model: its scores)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lens_bias.benchmarks.bbq import answer_bbq, bbq_question, score_bbq_harness
from lens_bias.data.bbq import load_bbq
from lens_bias.data.bbq_harness import harness_choice_roles, harness_choices, harness_prompt, harness_scores
from lens_bias.errors import InputError
from lens_bias.forward.readouts import answer_logprobs, continuation_logprobs
from lens_bias.prompts import template_for


@pytest.fixture(scope="module")
def items():
    return [item for item in load_bbq(["Age"]) if item.example_id in (0, 1, 2, 3)]


def test_question_block_lists_the_three_options(items):
    text = bbq_question(items[0])
    assert text.startswith(items[0].context + "\nQuestion: " + items[0].question)
    assert text.endswith(f"\nA. {items[0].answers[0]}\nB. {items[0].answers[1]}\nC. {items[0].answers[2]}")


def test_raw_readouts_equal_pair_by_pair_scoring(tiny_long_model, items):
    answers = answer_bbq(tiny_long_model, items, batch_size=4)
    prompts = [f"{bbq_question(item)}\nAnswer:" for item in items for _ in range(3)]
    options = continuation_logprobs(tiny_long_model, prompts, [f" {a}" for item in items for a in item.answers])
    letters = continuation_logprobs(tiny_long_model, prompts, [f" {x}" for _ in items for x in "ABC"])
    np.testing.assert_allclose(answers.option_logprob, options.mean.view(-1, 3).double().numpy(), atol=1e-4)
    np.testing.assert_allclose(answers.option_total, options.total.view(-1, 3).double().numpy(), atol=1e-4)
    np.testing.assert_allclose(answers.letter_logprob, letters.total.view(-1, 3).double().numpy(), atol=1e-4)
    assert np.array_equal(answers.likelihood_choice, answers.option_logprob.argmax(1))
    assert ((answers.format_mass > 0) & (answers.format_mass <= 1)).all()


def test_chat_readouts_score_the_reply(tiny_long_model, items):
    template = template_for(tiny_long_model, system="You are an old man.")
    answers = answer_bbq(tiny_long_model, items[:2], template=template)
    users = [bbq_question(item) for item in items[:2] for _ in range(3)]
    expected = answer_logprobs(tiny_long_model, template, users, [a for item in items[:2] for a in item.answers])
    np.testing.assert_allclose(answers.option_logprob, expected.mean.view(-1, 3).double().numpy(), atol=1e-4)


def test_context_question_format_scores_the_answers_after_the_bare_question(tiny_long_model, items):
    answers = answer_bbq(tiny_long_model, items, prompt_format="context_question", batch_size=4)
    prompts = [f"{item.context} {item.question}\nAnswer:" for item in items for _ in range(3)]
    options = continuation_logprobs(
        tiny_long_model, prompts, [f" {a}" for item in items for a in item.answers], batch_size=4
    )
    np.testing.assert_array_equal(answers.option_logprob, options.mean.view(-1, 3).double().numpy())
    assert np.isnan(answers.letter_logprob).all()


def test_unknown_or_mismatched_prompt_format_is_refused(tiny_long_model, items):
    with pytest.raises(InputError, match="known: multiple_choice, context_question"):
        answer_bbq(tiny_long_model, items, prompt_format="cloze")  # type: ignore[arg-type]
    template = template_for(tiny_long_model)
    with pytest.raises(InputError, match="raw text"):
        answer_bbq(tiny_long_model, items, prompt_format="context_question", template=template)


def test_harness_scores_are_summed_after_the_bare_prompt(tiny_long_model, items):
    """Each of the 12 choices: the summed log-prob of its tokens after the prompt's own tokens, no start token."""
    scores = score_bbq_harness(tiny_long_model, items[:2], batch_size=4)
    assert scores.shape == (2, 12)
    tokenizer = tiny_long_model.tokenizer
    for row, item in enumerate(items[:2]):
        prompt = tokenizer(harness_prompt(item), add_special_tokens=False)["input_ids"]
        for column in (0, 1, 11):
            full = tokenizer(f"{harness_prompt(item)} {harness_choices(item)[column]}", add_special_tokens=False)
            ids = full["input_ids"]
            assert ids[: len(prompt)] == prompt
            with torch.inference_mode():
                logprobs = tiny_long_model(torch.tensor([ids]))[0].double().log_softmax(-1)
            total = sum(logprobs[t - 1, ids[t]].item() for t in range(len(prompt), len(ids)))
            assert scores[row, column] == pytest.approx(total, abs=1e-4)


HARNESS_FIXTURE = Path(__file__).parent / "fixtures" / "harness_bbq_110.json"
N_CHECKED = 11  # the shortest question of each category re-scored on the real model; all 110: fixtures/README.md


@pytest.fixture(scope="module")
def harness_run():
    fixture = json.loads(HARNESS_FIXTURE.read_text())
    by_uid = {item.uid: item for item in load_bbq()}
    return fixture, [by_uid[sample["uid"]] for sample in fixture["samples"]]


def test_harness_rules_reproduce_its_per_sample_metrics_and_aggregates(harness_run):
    """No model: lm-evaluation-harness's own choice log-likelihoods through lens_bias's harness rules give its
    per-sample acc / biased / non-unknown answers and every aggregate it reported, overall and per category."""
    fixture, items = harness_run
    samples, aggregate = fixture["samples"], fixture["aggregate"]
    lls = np.array([sample["lls"] for sample in samples])
    pred, rows = lls.argmax(1), np.arange(len(samples))
    roles = harness_choice_roles(items)
    for role, key in (("target", "acc"), ("biased", "n_biased")):
        np.testing.assert_array_equal(roles[role][rows, pred], [bool(sample[key]) for sample in samples])
    np.testing.assert_array_equal(~roles["unknown"][rows, pred], [bool(s["n_non_unknown"]) for s in samples])
    ambiguous = np.array([item.context_condition == "ambig" for item in items])
    category = np.array([item.category for item in items])
    names = {"acc": "acc", "accuracy_ambig": "accuracy_amb", "accuracy_disambig": "accuracy_disamb"}
    overall = harness_scores(pred, **roles, ambiguous=ambiguous)
    for ours, theirs in {**names, "s_amb": "amb_bias_score", "s_dis": "disamb_bias_score"}.items():
        assert overall[ours] == pytest.approx(aggregate[theirs], abs=1e-12)
    for name in sorted(set(category)):
        mask = category == name
        group = harness_scores(pred[mask], *(roles[r][mask] for r in ("target", "biased", "unknown")), ambiguous[mask])
        assert group["s_amb"] == pytest.approx(aggregate[f"amb_bias_score_{name}"], abs=1e-12)
        assert group["s_dis"] == pytest.approx(aggregate[f"disamb_bias_score_{name}"], abs=1e-12)
    assert overall["n_biased_ambig"] > 0 and overall["n_biased_disambig"] > 0  # the rules are exercised


def test_harness_convention_reproduces_lm_evaluation_harness(smollm, harness_run):
    """The real model (fp32): each choice's summed log-likelihood to 1e-3 nats of the harness's own, and the
    same answers, on the shortest question of each category (all 110: fixtures/README.md)."""
    fixture, items = harness_run
    first: dict[str, int] = {}
    for index in sorted(range(len(items)), key=lambda i: len(harness_prompt(items[i]))):
        first.setdefault(items[index].category, index)
    checked = sorted(first.values())
    assert len(checked) == N_CHECKED
    ours = score_bbq_harness(smollm, [items[i] for i in checked], batch_size=N_CHECKED)
    theirs = np.array([fixture["samples"][i]["lls"] for i in checked])
    np.testing.assert_allclose(ours, theirs, atol=1e-3, rtol=0)
    np.testing.assert_array_equal(ours.argmax(1), [fixture["samples"][i]["pred"] for i in checked])
