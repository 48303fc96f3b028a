"""BBQ's scorer: the question block, the two readouts of one prompt equal to pair-by-pair scoring, the
context_question format of the side-effect readout."""

from __future__ import annotations

import numpy as np
import pytest

from lens_bias.benchmarks.bbq import answer_bbq, bbq_question
from lens_bias.data.bbq import load_bbq
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
