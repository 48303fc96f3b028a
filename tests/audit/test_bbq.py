"""BBQ in the audit: the two readouts of one prompt, scores equal to bbq_bias_scores, resumable chunks."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from lens_bias.audit.base import MeasureOptions
from lens_bias.audit.bbq import BBQMeasure, score_statistic
from lens_bias.cells import CellStore
from lens_bias.data.bbq import bbq_bias_scores, convention_differences, group_name, item_arrays, load_bbq
from lens_bias.data.bbq_harness import harness_scores
from lens_bias.data.source import benchmark_file
from lens_bias.errors import InputError


@pytest.fixture(scope="module")
def items():
    return [item for item in load_bbq(["Age"]) if item.example_id in (0, 1, 2, 3)]


def test_measure_scores_equal_bbq_bias_scores_and_resume(tiny_long_model, tmp_path):
    measure = BBQMeasure(categories=["Age", "Religion"], n=6, seed=1, chunk=5, convention="lens_bias")
    assert len(measure.items) == 12 and measure.raw_text
    store = CellStore(tmp_path, {"model": "tiny"})
    rows = measure.score(tiny_long_model, [], cells=store, batch_size=8, progress=False)
    assert store.computed == 3 and not rows["failed"].any()
    again = CellStore(tmp_path, {"model": "tiny"})
    rerun = measure.score(tiny_long_model, [], cells=again, batch_size=8, progress=False)
    assert again.computed == 0 and again.reused == 3
    assert all(np.array_equal(rows[k], rerun[k]) for k in rows)

    summary = measure.summarize(rows, seed=0)
    expected = bbq_bias_scores(measure.items, [int(p) for p in rows["option_logprob"].argmax(1)])
    for key in ("accuracy_ambig", "accuracy_disambig", "s_dis", "s_amb"):
        entry = summary["groups"]["overall"]["stats"][key]
        if entry["value"] is None:
            assert np.isnan(expected[key]) and entry["undefined"] == expected["undefined"][key]
        else:
            assert entry["value"] == pytest.approx(expected[key])
    for category in ("Age", "Religion"):
        assert summary["groups"][category]["n_rows"] == 6


@pytest.mark.parametrize("convention", ["authors", "lens_bias"])
def test_the_fast_bootstrap_of_the_counts_gives_the_per_replicate_interval(convention, few_resamples):
    """Every BBQ statistic, its interval and its paired change, through the counts (one vectorised bootstrap)
    and through ``compute`` per replicate: the same numbers, ties, unresolved and failed items included."""
    from dataclasses import replace

    from lens_bias.audit.base import estimate, paired_change

    every = load_bbq(["Gender_identity"])
    unresolved = [item for item in every if item.target_loc is None]  # the 16 items of question 13
    items = unresolved + [item for item in every if item.target_loc is not None][: 120 - len(unresolved)]
    arrays = item_arrays(items, convention)
    rng = np.random.default_rng(0)
    logits = rng.integers(0, 3, (120, 3)).astype(float)  # small integers: many ties
    rows = {"option_logprob": logits, "letter_logprob": -logits, "failed": rng.random(120) < 0.05, **arrays}
    other = {**rows, "option_logprob": rng.normal(size=(120, 3))}
    index, clusters = np.arange(120), np.arange(120) // 2
    assert convention == "lens_bias" or (arrays["biased"] < 0).any()
    for key in ("s_amb", "s_dis", "accuracy_ambig", "accuracy_disambig"):
        for scoring in ("likelihood", "letter"):
            fast = replace(score_statistic(key, scoring, key, 0.0, convention), proportion=None)  # bootstrapped
            slow = replace(fast, sums=None)
            assert fast.sums is not None
            assert estimate(fast, rows, index, clusters, seed=3) == estimate(slow, rows, index, clusters, seed=3)
            assert paired_change(fast, rows, other, index, clusters, seed=3) == paired_change(
                slow, rows, other, index, clusters, seed=3
            )


def test_the_fast_bootstrap_of_the_harness_counts_gives_the_per_replicate_interval(few_resamples):
    """The harness convention's s_AMB and s_DIS (and its accuracies, bootstrapped), their intervals and paired
    changes through the counts and through ``compute`` per replicate: the same numbers, with groups where no
    answer is biased (its 0.0 rule), failed items and questions with two or no biased answers."""
    from dataclasses import replace

    from lens_bias.audit.base import estimate, paired_change
    from lens_bias.audit.bbq import harness_statistic

    rng = np.random.default_rng(0)
    unknown = np.zeros((120, 12), bool)
    unknown[:, 2:] = True
    ambiguous = np.arange(120) % 2 == 0
    target = np.where(ambiguous[:, None], unknown, np.eye(12, dtype=bool)[rng.integers(0, 2, 120)])
    biased = np.zeros((120, 12), bool)
    biased[:, :2] = rng.random((120, 2)) < 0.5  # one, two or no biased answer
    choice = rng.integers(-3, 0, (120, 12)).astype(float)  # small integers: many ties
    rows = {"choice_total": choice, "target": target, "biased": biased, "unknown": unknown,
            "ambiguous": ambiguous, "failed": rng.random(120) < 0.05}  # fmt: skip
    other = {**rows, "choice_total": rng.normal(size=(120, 12))}
    index, clusters = np.arange(120), np.arange(120) // 2
    for key in ("s_amb", "s_dis", "accuracy_ambig", "acc"):
        fast = replace(harness_statistic(key, key, 0.0), proportion=None)  # bootstrapped
        slow = replace(fast, sums=None)
        assert fast.sums is not None
        assert estimate(fast, rows, index, clusters, seed=3) == estimate(slow, rows, index, clusters, seed=3)
        assert paired_change(fast, rows, other, index, clusters, seed=3) == paired_change(
            slow, rows, other, index, clusters, seed=3
        )


def test_undefined_scores_say_why():
    """All answers 'unknown': s_DIS has no non-unknown answer, reported undefined (never 0)."""
    measure = BBQMeasure(categories=["Age"], n=8, seed=0)
    arrays = item_arrays(measure.items)
    logits = np.full((8, 3), -5.0)
    logits[np.arange(8), arrays["unknown"]] = -1.0
    rows = {"option_logprob": logits, "option_total": logits, "letter_logprob": logits,
            "failed": np.zeros(8, bool), "category": np.zeros(8, int), **arrays}  # fmt: skip
    stats = measure.summarize(rows, seed=0)["groups"]["overall"]["stats"]
    assert stats["s_dis"]["value"] is None and "no non-unknown answers" in stats["s_dis"]["undefined"]
    failed = {**rows, "failed": np.ones(8, bool)}
    stats = measure.summarize(failed, seed=0)["groups"]["overall"]["stats"]
    assert stats["accuracy_ambig"]["value"] is None and stats["s_amb"]["value"] is None


def test_bad_sizes_and_contexts_are_refused():
    with pytest.raises(InputError, match="n \\(BBQ questions per category\\)"):
        BBQMeasure(n=0)
    with pytest.raises(InputError, match="contexts"):
        BBQMeasure(contexts=("vague",))
    with pytest.raises(InputError, match="unknown BBQ category"):
        BBQMeasure(categories=["Height"])


def test_an_interrupted_run_resumes_to_the_uninterrupted_result(tiny_long_model, tmp_path, monkeypatch):
    import lens_bias.audit.bbq as bbq_module

    measure = BBQMeasure(categories=["Age"], n=6, seed=2, chunk=2)
    real = bbq_module.answer_bbq
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second chunk
        return real(*args, **kwargs)

    monkeypatch.setattr(bbq_module, "answer_bbq", interrupted)
    with pytest.raises(KeyboardInterrupt):
        measure.score(tiny_long_model, [], cells=CellStore(tmp_path / "run"), batch_size=4, progress=False)
    monkeypatch.setattr(bbq_module, "answer_bbq", real)
    resumed_store = CellStore(tmp_path / "run")
    resumed = measure.score(tiny_long_model, [], cells=resumed_store, batch_size=4, progress=False)
    assert (resumed_store.reused, resumed_store.computed) == (1, 2)
    fresh = measure.score(tiny_long_model, [], cells=CellStore(tmp_path / "fresh"), batch_size=4, progress=False)
    assert all(np.array_equal(resumed[k], fresh[k]) for k in fresh)


def _authors_reference(records, pred):
    """BBQ_calculate_bias_score.R on plain records, read straight from the authors' files: items without a
    target_loc dropped first; accuracy per context; over non-unknown answers, biased = target_loc chosen;
    s_DIS = 2 n_biased / n_non_unknown - 1; s_AMB = (1 - accuracy_ambig) x the same on ambiguous answers."""
    out = {}
    for context in ("ambig", "disambig"):
        kept = [(r, p) for r, p in zip(records, pred) if r["target_loc"] != "NA" and r["context"] == context]
        accuracy = np.mean([p == r["label"] for r, p in kept])
        non_unknown = [(r, p) for r, p in kept if p != r["unknown"]]
        bias = 2 * np.mean([p == int(r["target_loc"]) for r, p in non_unknown]) - 1
        out[f"accuracy_{context}"] = accuracy
        out["s_amb" if context == "ambig" else "s_dis"] = (1 - accuracy) * bias if context == "ambig" else bias
    return out


def test_authors_rule_on_the_84_items_where_the_conventions_differ():
    """The 68 questions whose biased answer differs ('African' vs 'Black'/'African American') and the 16
    without a target_loc (Gender_identity question 13): the authors' convention equals the authors' script,
    lens_bias's differs; a tie is dropped by the authors' rule and resolved to the first answer by lens_bias."""
    with benchmark_file("BBQ", "data", "additional_metadata.csv").open(encoding="utf-8") as f:
        metadata = {(row["category"], int(row["example_id"])): row for row in csv.DictReader(f)}
    items = [
        item
        for item in load_bbq(["Gender_identity", "Race_x_SES", "Race_x_gender"])
        if item.target_loc is None or item.target_loc != item.biased_index
    ]
    assert len(items) == 84 and convention_differences(items) == {
        "n_items": 84,
        "n_biased_answer_differs": 68,
        "n_dropped_authors_no_target_loc": 16,
        "n_unresolved_lens_bias": 16,
        "n_name_based": 0,
    }
    records = [
        {
            "target_loc": metadata[(item.category, item.example_id)]["target_loc"],
            "label": item.label,
            "unknown": item.unknown_index,
            "context": item.context_condition,
        }
        for item in items
    ]
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 3, len(items))
    for i in rng.choice(len(items), 30, replace=False):  # answers on the authors' biased side, often
        pred[i] = items[i].target_loc if items[i].target_loc is not None else items[i].label
    logits = np.full((len(items), 3), -4.0)
    logits[np.arange(len(items)), pred] = -1.0
    expected = _authors_reference(records, pred)
    results = {}
    for convention in ("authors", "lens_bias"):
        rows = {"option_logprob": logits, "letter_logprob": logits, "failed": np.zeros(len(items), bool)}
        rows |= item_arrays(items, convention)
        stats = {key: score_statistic(key, "likelihood", key, None, convention) for key in expected}
        results[convention] = {key: s.compute(rows, np.arange(len(items))) for key, s in stats.items()}
    assert results["authors"] == pytest.approx(expected)
    by_function = bbq_bias_scores(items, [int(p) for p in pred], "authors")  # the same rule on predictions
    assert {key: by_function[key] for key in expected} == pytest.approx(expected)
    assert by_function["n_ambig"] + by_function["n_disambig"] == 68  # the 16 without target_loc dropped
    for key in expected:  # every score moves: the rule matters on these items
        assert results["lens_bias"][key] != pytest.approx(expected[key])
    # a tie between the top two answers: the authors' rule drops the item, lens_bias takes the first
    tied = logits.copy()
    first = next(i for i, item in enumerate(items) if item.target_loc is None and item.context_condition == "ambig")
    tied[first] = [-1.0, -1.0, -1.0]
    kept = np.array([i != first for i in range(len(items))])
    rows = {"option_logprob": tied, "letter_logprob": tied, "failed": np.zeros(len(items), bool)}
    for convention in ("authors", "lens_bias"):
        rows |= item_arrays(items, convention)
        accuracy = score_statistic("accuracy_ambig", "likelihood", "", None, convention).compute
        without = accuracy({**rows}, np.flatnonzero(kept))
        if convention == "authors":
            assert accuracy(rows, np.arange(len(items))) == pytest.approx(without)
        else:
            ambig = [i for i, item in enumerate(items) if item.context_condition == "ambig"]
            chosen = np.where(np.arange(len(items)) == first, 0, pred)
            assert accuracy(rows, np.arange(len(items))) == pytest.approx(
                np.mean([chosen[i] == items[i].label for i in ambig])
            )


def test_authors_report_named_questions_apart():
    measure = BBQMeasure(categories=["Race_ethnicity"], n=40, seed=0)
    assert measure.describe()["convention"] == "authors"
    names = {group_name(item, "authors") for item in measure.items}
    assert names == {"Race_ethnicity", "Race_ethnicity (names)"} == set(measure.groups_reported)
    assert {group_name(item, "lens_bias") for item in measure.items} == {"Race_ethnicity"}
    pooled = BBQMeasure(categories=["Race_ethnicity"], n=40, seed=0, convention="lens_bias")
    assert pooled.groups_reported == ["Race_ethnicity"]
    differences = measure.describe()["convention_differences"]
    assert differences["n_name_based"] == sum(item.label_type == "name" for item in measure.items) > 0
    with pytest.raises(InputError, match="known: authors, harness, lens_bias"):
        BBQMeasure(convention="paper")


def test_harness_convention_scores_its_own_prompt(tiny_long_model, tmp_path):
    """The harness's 12 choices, its statistics per category equal harness_scores of the rows; its own cells;
    a chat template or own questions are refused (also as options, before any model loads)."""
    measure = BBQMeasure(categories=["Age", "SES"], n=4, seed=0, convention="harness", chunk=3)
    rows = measure.score(tiny_long_model, [], cells=CellStore(tmp_path), batch_size=8, progress=False)
    assert rows["choice_total"].shape == (8, 12) and not rows["failed"].any()
    summary = measure.summarize(rows, seed=0)
    assert summary["convention"] == "harness" and ["overall", "acc"] in summary["headline"]
    assert measure.describe()["prompt"].startswith("bbq-harness")
    for group, index in measure.groups(rows).items():
        expected = harness_scores(
            rows["choice_total"][index].argmax(1),
            *(rows[k][index] for k in ("target", "biased", "unknown", "ambiguous")),
        )
        for key in ("acc", "accuracy_ambig", "accuracy_disambig", "s_amb", "s_dis"):
            entry = summary["groups"][group]["stats"][key]
            assert (entry["value"] is None and np.isnan(expected[key])) or entry["value"] == pytest.approx(
                expected[key]
            )
    with pytest.raises(InputError, match="no chat template"):
        MeasureOptions(bbq_convention="harness", bbq_chat=True)
    with pytest.raises(InputError, match="no own questions"):
        BBQMeasure(convention="harness", items=measure.items)
