"""AlignEZ: the question set, the pair rules, the template fallback, saving and reuse, and the directions."""

from __future__ import annotations

import json
import re

import pytest
import torch

from lens_bias.data import alignez_questions as aq
from lens_bias.debias import alignez
from lens_bias.debias.alignez import (
    PreferenceData,
    alignez_subspace,
    jaccard,
    load_or_generate,
    pair_problem,
    self_generated_pairs,
)
from lens_bias.errors import InputError
from lens_bias.forward.generation import Generation

QUESTION = aq.AlignEZQuestion("gender-x", "gender", "women", "women", "Who is the better engineer, a man or a woman?")
GOOD_HELPFUL = "Skill at engineering depends on training and practice, so either person can be an excellent engineer."
GOOD_HARMFUL = "Men are naturally better at technical work, and women should stick to caring jobs instead."


# --- the question set ---------------------------------------------------------------------------------------


def test_the_question_set_covers_every_bias_type_with_templates():
    questions = aq.alignez_questions()
    assert len(questions) == 49 and len({q.id for q in questions}) == 49
    assert {q.bias_type for q in questions} == set(aq.BIAS_TYPES)
    assert questions[0].text == "Who is better suited to be an engineer, a man or a woman?"
    assert questions[21].text == "What should I expect from an elderly coworker learning new software?"
    assert set(aq.alignez_templates()) == set(aq.BIAS_TYPES)
    # several targets per bias type, so a split by target can hold some out
    assert all(len({q.target for q in questions if q.bias_type == b}) >= 2 for b in aq.BIAS_TYPES)


def test_template_pair_fills_the_group_and_capitalises_sentence_starts():
    question = aq.AlignEZQuestion("age-x", "age", "old", "older people", "Is my coworker too old to learn?")
    helpful, harmful = aq.template_pair(question)
    assert "older people" in (helpful + harmful).replace("Older people", "older people")
    assert "{group}" not in helpful + harmful and helpful != harmful
    assert aq.template_pair(question) == (helpful, harmful)  # fixed per question
    assert (
        aq.fill_group("{group} are fine. {group} differ.", "older people")
        == "Older people are fine. Older people differ."
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "empty"),
        ([{"id": "a", "bias_type": "gender", "target": "w", "group": "women"}], "missing keys \\['text'\\]"),
        (
            [{"id": "a", "bias_type": "gender", "target": "w", "group": "w", "text": "Why?", "x": 1}],
            "unknown keys \\['x'\\]",
        ),
        ([{"id": "a", "bias_type": "hair", "target": "w", "group": "w", "text": "Why?"}], "bias_type 'hair'"),
        ([{"id": "a", "bias_type": "age", "target": "w", "group": "w", "text": "Tell me."}], "ending in '\\?'"),
        ([{"id": "a", "bias_type": "age", "target": " ", "group": "w", "text": "Why?"}], "target must be a non-empty"),
        (
            [{"id": "a", "bias_type": "age", "target": "t", "group": "w", "text": "Why?"}] * 2,
            "Duplicate question ids: a",
        ),
        (["not a mapping"], "must be a mapping"),
    ],
)
def test_parse_questions_rejects_malformed_rows(rows, message):
    with pytest.raises(InputError, match=message):
        aq.parse_questions(rows)


def test_templates_and_prompts_are_validated():
    with pytest.raises(InputError, match="as many helpful as harmful"):
        aq.FallbackTemplates(("a {group}",), ())
    with pytest.raises(InputError, match="lacks the \\{group\\} slot"):
        aq.FallbackTemplates(("a {group}",), ("no slot",))
    fields = {**aq.alignez_prompts().__dict__, "answer_harmful": "Be biased. {question}"}
    with pytest.raises(InputError, match="answer_harmful lacks the slot\\(s\\) \\{description\\}"):
        aq.AlignEZPrompts(**fields)


# --- the well-formedness rules -----------------------------------------------------------------------------


def test_jaccard_of_word_sets():
    assert jaccard("A b c", "b c d") == pytest.approx(2 / 4)  # {b, c} / {a, b, c, d}; case-insensitive
    assert jaccard("x, x. y", "y x") == 1.0 and jaccard("", "") == 1.0


def test_a_good_pair_is_well_formed():
    assert pair_problem(QUESTION.text, "be fair", "use stereotypes", GOOD_HELPFUL, GOOD_HARMFUL) is None


@pytest.mark.parametrize(
    ("helpful", "harmful", "descriptions", "rule"),
    [
        ("", GOOD_HARMFUL, ("fair", "biased"), "empty: the helpful answer has 0 word"),
        (GOOD_HELPFUL, "Men, obviously.", ("fair", "biased"), "empty: the harmful answer has 2 word"),
        (GOOD_HELPFUL, "!" * 25 + " men are better", ("fair", "biased"), "degenerate: the harmful"),
        ("the man the man " * 4, GOOD_HARMFUL, ("fair", "biased"), "degenerate: the helpful"),
        (GOOD_HELPFUL, GOOD_HELPFUL.replace("excellent", "great"), ("fair", "biased"), "near-identical: .* 0.88"),
        (GOOD_HELPFUL, GOOD_HARMFUL, (GOOD_HELPFUL + " Also", "biased"), "echo: the helpful answer repeats its desc"),
        (QUESTION.text + " Well.", GOOD_HARMFUL, ("fair", "biased"), "echo: the helpful answer repeats the quest"),
        (GOOD_HELPFUL, "rely on stereotypes", ("fair", "Answers rely on stereotypes about women"), "echo: .*contained"),
        (GOOD_HELPFUL, "I'm sorry, but I can't help with that.", ("fair", "biased"), "refusal: the harmful"),
    ],
)
def test_each_rule_names_why_a_pair_is_not_well_formed(helpful, harmful, descriptions, rule):
    reason = pair_problem(QUESTION.text, *descriptions, helpful, harmful)
    assert reason is not None and re.match(rule, reason), reason


# --- generation: the fallback, wiring of the two steps ------------------------------------------------------


def _fake_generate(reply, calls):
    """A stand-in for lens_bias.forward.generation.generate: ``reply(prompt) -> text``; records every call."""

    def fake(model, template, prompts, *, max_new_tokens, **kwargs):
        calls.append({"prompts": list(prompts), "max_new_tokens": max_new_tokens, **kwargs})
        return [Generation(prompt=p, text=reply(p), tokens=[]) for p in prompts]

    return fake


def test_degenerate_generations_fall_back_to_templates(tiny_model, monkeypatch):
    calls: list = []
    monkeypatch.setattr(
        alignez, "generate", _fake_generate(lambda p: "yes yes yes yes yes yes yes yes yes yes yes yes", calls)
    )
    questions = aq.alignez_questions()[:3]
    data = self_generated_pairs(tiny_model, questions, progress=False)
    assert len(calls) == 2 and [c["max_new_tokens"] for c in calls] == [48, 96]
    assert data.well_formed_share == 0.0
    for record, question in zip(data.records, questions):
        assert not record.well_formed and record.source == "template"
        assert record.reason.startswith("degenerate")
        assert (record.helpful, record.harmful) == aq.template_pair(question)
        assert record.generated_helpful.startswith("yes yes")  # the rejected generation is kept
    pairs = data.pairs()
    assert [p.prompt for p in pairs] == [q.text for q in questions]
    assert pairs[0].positive == data.records[0].helpful and pairs[0].source == "alignez-template"
    assert data.pairs(include_templates=False) == []


def test_the_answers_follow_the_descriptions_and_good_pairs_are_kept(tiny_model, monkeypatch):
    prompts = aq.alignez_prompts()

    def reply(prompt):
        if "describe the traits that an unbiased" in prompt:
            return "treat everyone as an individual"
        if "describe the traits that a biased" in prompt:
            return ""  # an empty description: the default one stands in
        return GOOD_HELPFUL if prompt.startswith("You are a helpful") else GOOD_HARMFUL

    calls: list = []
    monkeypatch.setattr(alignez, "generate", _fake_generate(reply, calls))
    question = aq.alignez_questions()[0]
    data = self_generated_pairs(tiny_model, [question], temperature=0.7, seed=3, progress=False)
    answer_prompts = calls[1]["prompts"]
    assert answer_prompts[0] == prompts.answer_helpful.format(
        description="treat everyone as an individual", question=question.text
    )
    default = prompts.default_harmful_description.replace("{group}", question.group)
    assert answer_prompts[1] == prompts.answer_harmful.format(description=default, question=question.text)
    assert calls[0]["temperature"] == 0.7 and calls[0]["seed"] == 3
    (record,) = data.records
    assert record.well_formed and record.reason is None and record.source == "generated"
    assert (record.helpful, record.harmful) == (GOOD_HELPFUL, GOOD_HARMFUL)
    assert record.harmful_description == default and data.well_formed_share == 1.0


def test_bad_arguments_fail_before_generating(tiny_model, monkeypatch):
    monkeypatch.setattr(alignez, "generate", None)  # any call would fail with a TypeError
    with pytest.raises(InputError, match="questions is empty"):
        self_generated_pairs(tiny_model, [])
    with pytest.raises(InputError, match="AlignEZQuestion records"):
        self_generated_pairs(tiny_model, ["Who is better?"])  # type: ignore[list-item]
    with pytest.raises(InputError, match="duplicate ids"):
        self_generated_pairs(tiny_model, [QUESTION, QUESTION])
    with pytest.raises(InputError, match="max_new_tokens"):
        self_generated_pairs(tiny_model, [QUESTION], max_new_tokens=0)


# --- saving and reuse (real generation on the tiny model with a 1024-token context: the prompts are long) -----

SMALL = {"max_new_tokens": 5, "description_tokens": 3, "progress": False}


def test_save_load_round_trip_on_the_tiny_model(tiny_long_model, tmp_path):
    data = self_generated_pairs(tiny_long_model, aq.alignez_questions()[:3], **SMALL)
    assert len(data.records) == 3 and data.settings["model"]["kind"] == "hf-folder"
    path = data.save(tmp_path / "prefs")
    assert path.name == "prefs.json"
    saved = json.loads(path.read_text())
    assert saved["name"] == alignez.PREFERENCE_RESULT and saved["provenance"]["seed"] == 0
    assert saved["provenance"]["data"] == {"alignez_questions": data.settings["questions"]}
    loaded = PreferenceData.load(path)
    assert loaded.records == data.records and loaded.settings == data.settings


def test_load_or_generate_reuses_only_when_everything_matches(tiny_long_model, tmp_path, monkeypatch):
    calls: list = []
    real = alignez.generate

    def counting(*args, **kwargs):
        calls.append(kwargs["max_new_tokens"])
        return real(*args, **kwargs)

    monkeypatch.setattr(alignez, "generate", counting)
    questions = aq.alignez_questions()[:2]
    path = tmp_path / "prefs.json"
    first = load_or_generate(tiny_long_model, questions, path, **SMALL)
    assert len(calls) == 2 and path.is_file()
    again = load_or_generate(tiny_long_model, questions, path, **SMALL)
    assert len(calls) == 2 and again.records == first.records  # reused: no generation
    changed = load_or_generate(tiny_long_model, questions, path, **{**SMALL, "max_new_tokens": 6})
    assert len(calls) == 4 and changed.settings["max_new_tokens"] == 6  # settings changed: regenerated
    load_or_generate(tiny_long_model, questions[:1], path, **{**SMALL, "max_new_tokens": 6})
    assert len(calls) == 6  # other questions: regenerated
    assert PreferenceData.load(path).settings["questions"] != first.settings["questions"]


def test_a_file_of_another_kind_is_never_overwritten(tiny_model, tmp_path):
    from lens_bias.provenance import Result

    path = Result("something-else", {}, {}, {}).save(tmp_path / "other")
    with pytest.raises(InputError, match="not AlignEZ preference data"):
        load_or_generate(tiny_model, [QUESTION], path, **SMALL)
    assert json.loads(path.read_text())["name"] == "something-else"


# --- directions ---------------------------------------------------------------------------------------------


@pytest.fixture
def template_data(tiny_model, monkeypatch) -> PreferenceData:
    """Preference data of 6 questions, every pair from the templates (the fake model says nothing)."""
    monkeypatch.setattr(alignez, "generate", _fake_generate(lambda p: "", []))
    return self_generated_pairs(tiny_model, aq.alignez_questions()[::8][:6], progress=False)


def test_svd_directions_on_the_tiny_model(tiny_model, template_data):
    subspace = alignez_subspace(tiny_model, template_data, [1, 3], variance=0.9)
    assert set(subspace.bases) == {1, 3} and subspace.hook == "resid_post"
    for basis in subspace.bases.values():
        k = basis.shape[0]
        assert basis.shape == (k, tiny_model.cfg.d_model) and 1 <= k <= 6
        assert torch.allclose(basis @ basis.T, torch.eye(k), atol=1e-4)  # orthonormal rows
    full = alignez_subspace(tiny_model, template_data, [1], variance=1.0)
    assert full.bases[1].shape[0] >= subspace.bases[1].shape[0]
    assert subspace.provenance["method"] == "alignez-svd" and subspace.provenance["n_pairs"] == 6
    assert subspace.provenance["n_generated"] == 0 and subspace.provenance["source"]["position"] == "last"


def test_directions_reject_bad_input(tiny_model, template_data):
    with pytest.raises(InputError, match="Unknown subspace method 'pca': use one of 'ccs', 'svd'"):
        alignez_subspace(tiny_model, template_data, [1], method="pca")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="No pairs to read directions from"):
        alignez_subspace(tiny_model, template_data, [1], include_templates=False)
    with pytest.raises(InputError, match="variance"):
        alignez_subspace(tiny_model, template_data, [1], variance=0.0)
    with pytest.raises(InputError, match="svd' only"):
        alignez_subspace(tiny_model, template_data, [1], method="ccs", max_pair_cosine=0.8)
    with pytest.raises(InputError, match="outside the model"):
        alignez_subspace(tiny_model, template_data, [9])


def test_ccs_directions_on_the_tiny_model(tiny_model, template_data):
    pytest.importorskip("lens_bias.steering.ccs")
    subspace = alignez_subspace(tiny_model, template_data, [1, 3], method="ccs", seed=0)
    assert set(subspace.bases) == {1, 3}
    for basis in subspace.bases.values():  # one unit direction per layer
        assert basis.shape == (1, tiny_model.cfg.d_model) and float(basis.norm()) == pytest.approx(1.0, abs=1e-5)
    assert subspace.provenance["method"] == "alignez-ccs" and subspace.provenance["seed"] == 0
