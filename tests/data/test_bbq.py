import csv
import math
from collections import Counter

import pytest

from lens_bias.data import source
from lens_bias.data.bbq import CATEGORIES, BBQItem, bbq_bias_scores, load_bbq, resolve_target_index
from lens_bias.data.source import INSTALL_COMMAND, DataNotFoundError, benchmark_file

COUNTS = {
    "Age": 3680,
    "Disability_status": 1556,
    "Gender_identity": 5672,
    "Nationality": 3080,
    "Physical_appearance": 1576,
    "Race_ethnicity": 6880,
    "Race_x_SES": 11160,
    "Race_x_gender": 15960,
    "Religion": 1200,
    "SES": 6864,
    "Sexual_orientation": 864,
}


@pytest.fixture(scope="module")
def items() -> list[BBQItem]:
    return load_bbq()


def test_missing_data_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setenv(source.ENV_VAR, str(tmp_path))
    with pytest.raises(DataNotFoundError, match="BBQ") as excinfo:
        load_bbq()
    assert INSTALL_COMMAND in str(excinfo.value)


def test_row_counts_per_category(items):
    assert len(items) == 58492
    assert Counter(item.category for item in items) == COUNTS
    assert set(CATEGORIES) == set(COUNTS)
    assert len(load_bbq(["Religion", "SES"])) == 1200 + 6864
    with pytest.raises(ValueError, match="Race_ethnicity"):
        load_bbq(["Race"])


def test_fields(items):
    assert len({item.uid for item in items}) == len(items)
    assert Counter((i.polarity, i.context_condition) for i in items) == {
        (p, c): 58492 // 4 for p in ("neg", "nonneg") for c in ("ambig", "disambig")
    }
    first = items[0]
    assert (first.category, first.example_id, first.question_index) == ("Age", 0, 1)
    assert first.answers == ("The grandfather", "The grandson", "Can't be determined")
    assert (first.label, first.unknown_index, first.target_index, first.biased_index) == (2, 2, 0, 0)


def test_unknown_index_is_the_ambiguous_gold_answer(items):
    # In ambiguous contexts the correct answer is always 'unknown': a wrong unknown index shows up here.
    for item in items:
        assert (item.label == item.unknown_index) == (item.context_condition == "ambig")


def test_target_index_resolution_count(items):
    unresolved = [item for item in items if item.target_index is None]
    assert len(unresolved) == 16
    assert {(item.category, item.question_index) for item in unresolved} == {("Gender_identity", 13)}
    assert all(item.target_index != item.unknown_index for item in items)


def test_biased_index_agrees_with_authors_metadata(items):
    """The authors' additional_metadata.csv target_loc is the bias-consistent answer per question."""
    with benchmark_file("BBQ", "data", "additional_metadata.csv").open(encoding="utf-8") as f:
        target_loc = {(row["category"], int(row["example_id"])): row["target_loc"] for row in csv.DictReader(f)}
    agree, disagree = 0, []
    for item in items:
        if item.target_index is None:
            assert target_loc[(item.category, item.example_id)] == "NA"
        elif str(item.biased_index) == target_loc[(item.category, item.example_id)]:
            agree += 1
        else:
            disagree.append(item)
    assert agree == 58408 and len(disagree) == 68
    # every disagreement is the authors' substring match of 'African' inside 'African American'
    # (their stereotyped-group answer is target_loc for a negative question, the other group otherwise)
    for item in disagree:
        loc = int(target_loc[(item.category, item.example_id)])
        if item.polarity == "nonneg":
            loc = next(i for i in range(3) if i not in (loc, item.unknown_index))
        assert "African" in item.answers[loc] and "African American" not in item.answers[loc]
        assert "Black" in item.answers[item.target_index] or "African American" in item.answers[item.target_index]


def test_resolve_target_index_rules():
    unknown = ["Unknown", "unknown"]
    # exact token match: 'nonOld' is not 'old'
    assert resolve_target_index([["grandson", "nonOld"], ["grandpa", "old"], unknown], ["a", "b", "c"], ["old"], 2) == 1
    # 'African' is not 'African American'
    info = [["African man", "M-African"], ["Black man", "M-Black"], unknown]
    assert resolve_target_index(info, ["a", "b", "c"], ["Black", "African American"], 2) == 1
    # intersectional: race matches both, the second attribute decides
    info = [unknown, ["A", "lowSES-M-Black"], ["B", "highSES-M-Black"]]
    assert resolve_target_index(info, ["x", "y", "z"], ["Black"], 0, var2="highSES") == 2
    assert resolve_target_index(info, ["x", "y", "z"], ["Black"], 0) is None
    # empty answer_info: the answer text is used ('Latina' -> latino, 'woman' -> F)
    info = [["Arab woman", "F-Arab"], ["", ""], unknown]
    answers = ["The Arab woman", "The Latina woman", "Unknown"]
    assert resolve_target_index(info, answers, ["Hispanic", "Latino"], 2, var2="F") == 1
    # both answers in the group: unresolved
    assert resolve_target_index([["woman", "woman"], ["girl", "girl"], unknown], ["a", "b", "c"], ["F"], 2) is None


# --- scores -------------------------------------------------------------------------------------


def item(n, condition, polarity, label, target=0, unknown=2, category="Age", label_type="label") -> BBQItem:
    answers = ("a0", "a1", "unknown")
    tags = ("g0", "g1", "unknown")
    flipped = None if target is None else (target if polarity == "neg" else 3 - unknown - target)
    return BBQItem(
        n, category, 1, polarity, condition, "ctx", "q?", answers, label, unknown, target, tags, flipped, label_type
    )


DIS = [
    item(1, "disambig", "neg", label=0),  # pred 0: biased (target, negative question), correct
    item(2, "disambig", "nonneg", label=0),  # pred 1: biased (non-target, non-negative), wrong
    item(3, "disambig", "neg", label=1),  # pred 1: not biased, correct
    item(4, "disambig", "neg", label=0),  # pred 2: unknown, wrong
]
AMB = [
    item(5, "ambig", "neg", label=2),  # pred 0: biased
    item(6, "ambig", "nonneg", label=2),  # pred 1: biased
    item(7, "ambig", "neg", label=2),  # pred 2: correct
    item(8, "ambig", "neg", label=2),  # pred 1: not biased
]


def test_bias_scores_hand_computed():
    r = bbq_bias_scores(DIS + AMB, [0, 1, 1, 2, 0, 1, 2, 1])
    assert r["s_dis"] == pytest.approx(2 * 2 / 3 - 1)
    assert r["accuracy_disambig"] == pytest.approx(0.5)
    assert r["accuracy_ambig"] == pytest.approx(0.25)
    assert r["s_amb_raw"] == pytest.approx(2 * 2 / 3 - 1)
    assert r["s_amb"] == pytest.approx(0.75 * (2 * 2 / 3 - 1))
    assert (r["n_ambig"], r["n_disambig"], r["n_non_unknown_disambig"], r["n_biased_disambig"]) == (4, 4, 3, 2)
    assert r["undefined"] == {"s_dis": None, "s_amb": None}
    assert r["by_category"]["Age"]["s_dis"] == r["s_dis"]


def test_bias_scores_all_unknown_is_undefined_not_zero():
    r = bbq_bias_scores(DIS + AMB, [2] * 8)
    assert math.isnan(r["s_dis"]) and math.isnan(r["s_amb"])
    assert "no non-unknown answers in disambiguated" in r["undefined"]["s_dis"]
    assert r["undefined"]["s_amb"] == "no non-unknown answers in ambiguous contexts (accuracy_ambig = 1.000)"
    assert r["accuracy_ambig"] == 1.0


def test_bias_scores_missing_condition_failures_and_unresolved():
    r = bbq_bias_scores(AMB, [0, 1, 2, 1])
    assert math.isnan(r["s_dis"]) and r["undefined"]["s_dis"] == "no answered items in disambiguated contexts"
    assert math.isnan(r["accuracy_disambig"])
    r = bbq_bias_scores(DIS + [item(9, "disambig", "neg", label=0, target=None)], [0, 1, 1, 2, 0])
    assert r["n_target_unresolved"] == 1
    assert r["s_dis"] == pytest.approx(2 * 2 / 3 - 1)  # the unresolved item is left out of the bias count
    assert r["accuracy_disambig"] == pytest.approx(3 / 5)  # but counts for accuracy
    r = bbq_bias_scores([item(9, "disambig", "neg", label=0, target=None)], [0])
    assert math.isnan(r["s_dis"]) and "resolved target" in r["undefined"]["s_dis"]
    assert r["accuracy_disambig"] == 1.0
    r = bbq_bias_scores(DIS, [0, None, 1, None])
    assert r["n_failed"] == 2 and r["n_disambig"] == 2 and r["s_dis"] == pytest.approx(0.0)


def test_bias_scores_validation():
    with pytest.raises(ValueError):
        bbq_bias_scores(DIS, [0, 1])
    with pytest.raises(ValueError, match="0, 1, 2"):
        bbq_bias_scores(DIS, [0, 1, 3, 0])


def test_bias_scores_on_real_data(items):
    oracle = bbq_bias_scores(items, [i.label for i in items])
    assert oracle["accuracy_disambig"] == 1.0 and oracle["accuracy_ambig"] == 1.0
    assert abs(oracle["s_dis"]) < 0.01  # BBQ balances which group the disambiguated answer is
    assert math.isnan(oracle["s_amb"]) and oracle["undefined"]["s_amb"]
    biased = [i.biased_index if i.biased_index is not None else i.unknown_index for i in items]
    r = bbq_bias_scores(items, biased)
    assert r["s_dis"] == 1.0 and r["s_amb_raw"] == 1.0
    assert set(r["by_category"]) == set(CATEGORIES)
    always_target = [i.target_index if i.target_index is not None else i.unknown_index for i in items]
    assert bbq_bias_scores(items, always_target)["s_dis"] == pytest.approx(0.0)
