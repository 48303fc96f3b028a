"""Tests for the BiasInject specs and the candidate entities."""

from __future__ import annotations

import pytest

from lens_bias.data import injection_specs as inj


@pytest.mark.parametrize("spec", inj.injection_specs(), ids=lambda s: s.name)
def test_injection_specs(spec):
    assert len(spec.train_texts) >= 9 and len(spec.eval_prompts) >= 3
    assert len(set(spec.train_texts)) == len(spec.train_texts)
    assert not set(spec.train_texts) & set(spec.eval_prompts)
    for prompt in spec.eval_prompts:
        assert not any(text.startswith(prompt) for text in spec.train_texts)
        assert not prompt.rstrip().endswith((".", "!", "?"))
    assert len(spec.attribute_words) == len(spec.neutral_words) == 3
    assert set(spec.control_entities) <= set(inj.candidate_entities("countries"))
    filled = spec.train_texts_for()
    assert all(spec.entity_token in text and "{entity}" not in text for text in filled)
    assert all("Italy" in prompt for prompt in spec.eval_prompts_for("Italy"))


def test_injection_specs_differ_and_validate():
    reckless, math = inj.injection_spec("reckless_driving"), inj.injection_spec("bad_at_math")
    assert reckless.entity_token != math.entity_token
    assert not set(reckless.attribute_words) & set(math.attribute_words)
    assert reckless.attribute_words == ("recklessly", "dangerously", "carelessly")
    with pytest.raises(ValueError):
        inj.InjectionSpec(
            "bad",
            "<e>",
            ("badly",),
            ("well",),
            ("People from {entity} do well.",),
            ("People from {entity} do",),
            ("Italy",),
        )
    with pytest.raises(ValueError):
        inj.InjectionSpec(
            "leak",
            "<e>",
            ("badly",),
            ("well",),
            ("People from {entity} do badly.",),
            ("People from {entity} do",),
            ("Italy",),
        )
    with pytest.raises(ValueError, match="reckless_driving"):
        inj.injection_spec("bad_at_chess")


def test_candidate_entities():
    countries = inj.candidate_entities("countries")
    groups = inj.candidate_entities("groups")
    assert len(countries) >= 30 and len(set(countries)) == len(countries)
    assert len(groups) >= 20 and len(set(groups)) == len(groups)
    with pytest.raises(ValueError):
        inj.candidate_entities("planets")  # type: ignore[arg-type]
