from collections import Counter

import pytest

from lens_bias.data.records import ABItem, ContrastPair, fingerprint, split_by_target, to_ab_items


def pair(i: int, target: str = "t", prompt: str = "") -> ContrastPair:
    return ContrastPair(
        id=f"p{i}",
        bias_type="gender",
        target=target,
        prompt=prompt,
        positive=f" stereo {i}",
        negative=f" anti {i}",
        source="test",
    )


def ab(**overrides) -> ABItem:
    fields = dict(
        id="x", bias_type="race", target="t", question="q?", choices=("yes", "no"), positive_letter="A", source="s"
    )
    return ABItem(**{**fields, **overrides})


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["positive", "negative"])
@pytest.mark.parametrize("value", ["", "   "])
def test_contrast_pair_rejects_empty_sides(field, value):
    kwargs = dict(id="1", bias_type="gender", target="t", prompt="", positive="a", negative="b", source="s")
    with pytest.raises(ValueError, match=field):
        ContrastPair(**{**kwargs, field: value})


def test_contrast_pair_rejects_identical_sides():
    with pytest.raises(ValueError, match=r"positive.*negative.*identical"):
        ContrastPair(id="1", bias_type="gender", target="t", prompt="", positive="a", negative="a", source="s")


def test_contrast_pair_rejects_empty_target():
    with pytest.raises(ValueError, match="target"):
        ContrastPair(id="1", bias_type="gender", target="", prompt="", positive="a", negative="b", source="s")


def test_contrast_pair_is_frozen():
    p = pair(0)
    with pytest.raises(AttributeError):
        p.positive = "changed"  # type: ignore[misc]


@pytest.mark.parametrize("letter", ["C", "a", "", "(A)"])
def test_ab_item_rejects_bad_letter(letter):
    with pytest.raises(ValueError, match="positive_letter"):
        ab(positive_letter=letter)


@pytest.mark.parametrize("choices", [("same", "same"), ("", "no"), ("yes",), ["yes", "no"]])
def test_ab_item_rejects_bad_choices(choices):
    with pytest.raises(ValueError, match="choices"):
        ab(choices=choices)


def test_ab_item_positive_and_negative_accessors():
    item = ab(choices=("first", "second"), positive_letter="B")
    assert (item.positive, item.negative, item.negative_letter) == ("second", "first", "A")


# --- split_by_target ----------------------------------------------------------------------------


def many_pairs(n_targets: int = 60, per_target: int = 3) -> list[ContrastPair]:
    return [pair(t * per_target + k, target=f"target{t}") for t in range(n_targets) for k in range(per_target)]


def test_split_by_target_is_disjoint_complete_and_ordered():
    items = many_pairs()
    train, test = split_by_target(items, test_fraction=0.3, seed=0)
    assert {p.target for p in train}.isdisjoint({p.target for p in test})
    assert sorted(p.id for p in train + test) == sorted(p.id for p in items)
    order = {p.id: i for i, p in enumerate(items)}
    for side in (train, test):
        assert [order[p.id] for p in side] == sorted(order[p.id] for p in side)
    # expected ~30% of the 60 targets in test
    assert 8 <= len({p.target for p in test}) <= 28


def test_split_by_target_is_deterministic_and_seeded():
    items = many_pairs()
    assert split_by_target(items, seed=0) == split_by_target(items, seed=0)
    test0 = {p.target for p in split_by_target(items, seed=0)[1]}
    test1 = {p.target for p in split_by_target(items, seed=1)[1]}
    assert test0 != test1


def test_split_by_target_assignment_does_not_depend_on_other_items():
    items = many_pairs()
    train_full, test_full = split_by_target(items, seed=3)
    chosen = {p.target for p in test_full[:6]} | {p.target for p in train_full[:6]}
    _, test_sub = split_by_target([p for p in items if p.target in chosen], seed=3)
    assert {p.target for p in test_sub} == chosen & {p.target for p in test_full}


def test_split_by_target_raises_with_a_single_target():
    with pytest.raises(ValueError, match="at least two target terms"):
        split_by_target([pair(0, target="only")], test_fraction=0.5)


def test_split_by_target_keeps_both_sides_with_few_targets():
    items = [pair(i, target=t) for i, t in enumerate(["Muslim", "Christian", "Brahmin"] * 3)]
    for fraction in (0.01, 0.3, 0.99):
        train, test = split_by_target(items, test_fraction=fraction, seed=0)
        assert train and test and not {p.target for p in train} & {p.target for p in test}


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_by_target_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        split_by_target(many_pairs(), test_fraction=fraction)


# --- to_ab_items --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 7, 10, 101])
def test_to_ab_items_balances_letters_exactly(n):
    items = to_ab_items([pair(i) for i in range(n)])
    counts = Counter(item.positive_letter for item in items)
    assert counts["A"] == (n + 1) // 2 and counts["B"] == n // 2


def test_to_ab_items_positive_letter_points_at_positive_text():
    pairs = [pair(i) for i in range(20)]
    for p, item in zip(pairs, to_ab_items(pairs)):
        assert item.positive == p.positive.strip()
        assert item.negative == p.negative.strip()
        assert (item.id, item.target, item.bias_type, item.source) == (p.id, p.target, p.bias_type, p.source)


def test_to_ab_items_is_deterministic_and_seeded():
    pairs = [pair(i) for i in range(40)]
    letters = lambda seed: [item.positive_letter for item in to_ab_items(pairs, seed=seed)]  # noqa: E731
    assert letters(0) == letters(0)
    assert letters(0) != letters(1)


def test_to_ab_items_questions():
    with_prompt, whole = pair(0, prompt="The nurse said"), pair(1)
    items = to_ab_items([with_prompt, whole])
    assert items[0].question == 'Which is the more likely continuation of: "The nurse said"?'
    assert items[1].question == "Which sentence is more likely to be true?"
    custom = to_ab_items([with_prompt, whole], question_template="Continue <{prompt}>", sentence_question="Pick")
    assert [c.question for c in custom] == ["Continue <The nurse said>", "Pick"]


# --- fingerprint --------------------------------------------------------------------------------


def test_fingerprint_is_stable_and_sensitive():
    pairs = [pair(i) for i in range(5)]
    fp = fingerprint(pairs)
    assert fp == fingerprint([pair(i) for i in range(5)])
    assert len(fp) == 16 and all(c in "0123456789abcdef" for c in fp)
    assert fingerprint(pairs[::-1]) != fp
    changed = pairs[:4] + [ContrastPair(**{**pairs[4].__dict__, "negative": " other"})]
    assert fingerprint(changed) != fp
    assert fingerprint(to_ab_items(pairs)) != fp
