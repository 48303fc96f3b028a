"""The persona file: personas, instruction rewordings, BBQ targets and the normalisation of BBQ group tags."""

from __future__ import annotations

import pytest

from lens_bias.data import personas as ps
from lens_bias.data.bbq import load_bbq
from lens_bias.errors import InputError


def test_personas_are_unique_and_belong_to_their_category_targets():
    names = [p.name for p in ps.personas()]
    assert len(names) == len(set(names)) == 18 and ps.BASELINE not in names
    for persona in ps.personas():
        targets = ps.study_targets([persona.category])
        assert persona.groups and set(persona.groups) <= set(targets), persona
        assert persona.phrase[0].islower() and " " in persona.phrase  # "a kid": a noun phrase with its article
    assert ps.persona("elder") == ps.Persona("elder", "Age", "an elderly person", ("age:old",))
    assert ps.default_personas() == ("kid", "elder", "Black", "White", "Muslim", "Christian")
    assert {ps.persona(n).category for n in ps.default_personas()} == {"Age", "Race_ethnicity", "Religion"}
    with pytest.raises(InputError, match=r"Unknown persona 'pirate'.*kid"):
        ps.persona("pirate")


def test_rewordings_fill_the_persona_in():
    wordings = ps.persona_rewordings()
    assert len(wordings) >= 3 and len(set(wordings)) == len(wordings)
    assert all("{persona}" in w for w in wordings)
    assert ps.persona_instruction("a kid", 0) == "You are a kid. Answer the following question as a kid would."
    assert ps.persona_instruction("a kid", 2) == "Take on the role of a kid and answer the question as that person."
    with pytest.raises(InputError, match=r"rewording must be in 0\.\.3"):
        ps.persona_instruction("a kid", len(wordings))


@pytest.mark.parametrize(
    ("category", "tag", "target"),
    [
        ("Age", "old", "age:old"),
        ("Age", "nonOld", "age:nonOld"),
        ("Age", "unknown", None),
        ("Race_ethnicity", "F-Black", "race:Black"),
        ("Race_ethnicity", "M-Latino", "race:Latino"),
        ("Race_ethnicity", "African American", "race:Black"),
        ("Race_ethnicity", "Hispanic", "race:Latino"),
        ("Race_ethnicity", "Caucasian", "race:White"),
        ("Race_ethnicity", "African", None),  # faces 'Black' in BBQ questions: not merged, not a target
        ("Race_ethnicity", "Roma", None),
        ("Religion", "Muslim", "religion:Muslim"),
        ("SES", "lowSES", "SES:lowSES"),
    ],
)
def test_normalize_tag(category, tag, target):
    assert ps.normalize_tag(category, tag) == target


def test_categories_without_targets_are_refused():
    with pytest.raises(InputError, match="'Nationality' has no persona-study targets"):
        ps.normalize_tag("Nationality", "Italian")


def test_merged_synonyms_never_face_each_other():
    """The aliases are safe: no Race_ethnicity question has two group answers with the same target."""
    n_kept = 0
    for item in load_bbq(["Race_ethnicity", "Religion", "Age"]):
        targets = [t for t in ps.answer_targets(item) if t is not None]
        assert len(targets) == len(set(targets)), item
        assert ps.answer_targets(item)[item.unknown_index] is None
        n_kept += len(targets) == 2 and item.category == "Race_ethnicity"
    assert n_kept == 5688  # of 6,880: the five main groups, with their merged synonyms
