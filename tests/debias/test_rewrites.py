"""The rewrite pairs: the project's set (size, dimensions, annotations, agreement with its templates), the CSV
loader's errors, the split by claim, and the word-level scores of a rewrite against hand-computed values."""

from __future__ import annotations

from collections import Counter

import pytest

from lens_bias.debias.rewrites import (
    RewritePair,
    content_retention,
    content_words,
    keeps_stereotype,
    load_rewrite_pairs,
    parse_biased_words,
    split_rewrites,
    template_pairs,
    write_rewrite_pairs,
)
from lens_bias.errors import InputError

DIMENSIONS = {"gender", "race", "religion", "profession", "age"}


def test_the_project_set_has_300_annotated_pairs_over_the_five_dimensions():
    pairs = load_rewrite_pairs()
    assert len(pairs) >= 300
    counts = Counter(pair.dimension for pair in pairs)
    assert set(counts) >= DIMENSIONS and all(counts[dimension] >= 40 for dimension in DIMENSIONS)
    assert len({pair.id for pair in pairs}) == len(pairs)
    for pair in pairs:
        assert pair.aspect and pair.label in ("slightly biased", "highly biased") and pair.biased_words
        assert pair.biased_text != pair.debiased_text
        # every stereotype word is in the biased text and none in its rewrite
        assert all(keeps_stereotype(pair.biased_text, [word]) for word in pair.biased_words), pair.id
        assert not keeps_stereotype(pair.debiased_text, pair.biased_words), pair.id
        assert "{" not in pair.biased_text + pair.debiased_text


def test_the_csv_is_the_expansion_of_its_templates():
    assert load_rewrite_pairs() == template_pairs()


def test_a_written_csv_reads_back_the_same(tmp_path):
    pairs = template_pairs()[:5]
    assert load_rewrite_pairs(write_rewrite_pairs(pairs, tmp_path / "pairs.csv")) == pairs


def test_a_minimal_csv_takes_defaults(tmp_path):
    path = tmp_path / "min.csv"
    path.write_text('debiased_text,biased_text,extra\n"People differ.","All X are Y.",1\nB2,A2,2\n', encoding="utf-8")
    first, second = load_rewrite_pairs(path)
    assert first == RewritePair(id="row-1", biased_text="All X are Y.", debiased_text="People differ.", target="row-1")
    assert second.id == second.target == "row-2" and second.biased_words == ()


@pytest.mark.parametrize(
    "cell, words",
    [
        ("lazy; good at math", ("lazy", "good at math")),
        ("lazy, rude", ("lazy", "rude")),
        ("['a b', 'c']", ("a b", "c")),
    ],
)
def test_biased_words_formats(cell, words):
    assert parse_biased_words(cell) == words
    assert parse_biased_words("  ") == ()


def test_csv_errors_name_the_problem(tmp_path):
    with pytest.raises(InputError, match=r"missing\.csv does not exist"):
        load_rewrite_pairs(tmp_path / "missing.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("text,rewrite\na,b\n", encoding="utf-8")
    with pytest.raises(
        InputError, match=r"lacks the required column\(s\) biased_text, debiased_text; it has text, rewrite"
    ):
        load_rewrite_pairs(wrong)
    header_only = tmp_path / "empty.csv"
    header_only.write_text("biased_text,debiased_text\n", encoding="utf-8")
    with pytest.raises(InputError, match="has a header but no pairs"):
        load_rewrite_pairs(header_only)
    blank = tmp_path / "blank.csv"
    blank.write_text("biased_text,debiased_text\na,b\n , \n", encoding="utf-8")
    with pytest.raises(InputError, match=r"data row 2 \(line 3\) has an empty biased_text"):
        load_rewrite_pairs(blank)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("biased_text,debiased_text\nCaf\xe9s are loud,Caf\xe9s differ\n".encode("latin-1"))
    with pytest.raises(InputError, match="is not UTF-8"):
        load_rewrite_pairs(latin)
    nothing = tmp_path / "nothing.csv"
    nothing.write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="it has no header"):
        load_rewrite_pairs(nothing)


def test_the_split_is_deterministic_and_keeps_each_claim_on_one_side():
    pairs = load_rewrite_pairs()
    train, held = split_rewrites(pairs)
    assert (train, held) == split_rewrites(pairs, 0.3, 0)
    assert len(train) + len(held) == len(pairs)
    assert not {pair.target for pair in train} & {pair.target for pair in held}
    assert 0.15 < len(held) / len(pairs) < 0.45
    assert {pair.dimension for pair in held} >= DIMENSIONS
    assert split_rewrites(pairs, 0.3, 1)[1] != held
    # a pair's side depends on its target only, not on the other pairs
    assert split_rewrites(pairs[:100])[1] == [pair for pair in held if pair in pairs[:100]]


def test_the_split_refuses_what_it_cannot_split():
    with pytest.raises(InputError, match="no pairs to split"):
        split_rewrites([])
    same = [RewritePair(id=f"p{i}", biased_text="a", debiased_text="b", target="t") for i in range(3)]
    with pytest.raises(InputError, match="all 3 pairs share the target 't'"):
        split_rewrites(same)
    with pytest.raises(InputError, match="held_out must be a share in"):
        split_rewrites(template_pairs(), held_out=1.0)


def test_content_words_drop_stop_words_and_the_stereotype():
    assert content_words("Women are too emotional to be good leaders.", ["emotional"]) == ["women", "good", "leaders"]
    assert content_words("The kitchen is where women belong.", ["belong"]) == ["kitchen", "women"]


def test_content_retention_by_hand():
    original = "Women are too emotional to be good leaders."
    # leaders ~ leadership (same first 4 letters); women, good are not in the rewrite: 1 of 3
    rewrite = "Leadership ability varies from person to person, regardless of gender."
    assert content_retention(original, rewrite, ["emotional"]) == pytest.approx(1 / 3)
    assert content_retention(original, original, ["emotional"]) == 1.0
    assert content_retention(original, "Good women lead.", ["emotional"]) == pytest.approx(3 / 3)  # lead ~ leaders
    assert content_retention("It is what it is.", "Anything.") is None


def test_keeps_stereotype_matches_whole_words_and_phrases():
    assert keeps_stereotype("They are LAZY people.", ["lazy"])
    assert not keeps_stereotype("Laziness is rare.", ["lazy"])
    assert keeps_stereotype("Some say they do not like to work at all.", ["do not like to work"])
    assert not keeps_stereotype("They like to work.", ["do not like to work"])
    assert not keeps_stereotype("anything", [])


@pytest.mark.fault
def test_a_repeated_header_a_duplicated_column_and_an_oversized_field_are_refused(tmp_path):
    repeated = tmp_path / "concatenated.csv"  # two CSVs pasted together: the second header is not a pair
    repeated.write_text("biased_text,debiased_text\na b,c d\nbiased_text,debiased_text\ne f,g h\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"data row 2 \(line 3\) repeats the header"):
        load_rewrite_pairs(repeated)
    duplicated = tmp_path / "duplicated.csv"
    duplicated.write_text("biased_text,debiased_text,debiased_text\na b,c d,e f\n", encoding="utf-8")
    with pytest.raises(InputError, match="has the column debiased_text twice"):
        load_rewrite_pairs(duplicated)
    huge = tmp_path / "huge.csv"
    huge.write_text(f'biased_text,debiased_text\na b,"{"x" * 200_000}"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"huge\.csv, line 2: .*field larger than field limit"):
        load_rewrite_pairs(huge)
