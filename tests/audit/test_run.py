"""run_audit: one baseline, each condition against it (paired), resumable cells, the headline table."""

from __future__ import annotations

import pytest
import torch

from lens_bias.audit.bbq import BBQMeasure
from lens_bias.audit.run import BASELINE, group_tables, markdown_table, rows_as_tensors, run_audit
from lens_bias.directions import SteeringVector
from lens_bias.errors import InputError
from lens_bias.interventions import AddVector


@pytest.fixture(scope="module")
def steer(tiny_long_model):
    torch.manual_seed(0)
    vector = SteeringVector("noise", (1,), torch.randn(1, tiny_long_model.cfg.d_model) * 4, torch.ones(1))
    return AddVector(vector, 1.0, start=None)


def test_conditions_are_compared_with_one_baseline(tiny_long_model, steer, tmp_path):
    measure = BBQMeasure(categories=["Age"], n=6, seed=0)
    values, rows = run_audit(tiny_long_model, [measure], {"noise": [steer]}, cells=tmp_path, batch_size=8)
    entry = values["bbq"]
    assert list(entry["summaries"]) == [BASELINE, "noise"] and list(entry["changes"]) == ["noise"]
    assert not (rows["bbq"][BASELINE]["option_logprob"] == rows["bbq"]["noise"]["option_logprob"]).all()
    base = entry["summaries"][BASELINE]["groups"]["overall"]["stats"]["accuracy_ambig"]["value"]
    after = entry["summaries"]["noise"]["groups"]["overall"]["stats"]["accuracy_ambig"]["value"]
    change = entry["changes"]["noise"]["groups"]["overall"]["stats"]["accuracy_ambig"]
    assert change["value"] == pytest.approx(after - base)
    table = markdown_table(values)
    assert "### bbq [convention: authors]" in table
    assert "| statistic [convention: authors] | ideal | baseline | noise | change: noise |" in table
    assert "s_AMB (likelihood)" in table
    assert all(line.count(" | ") == 4 for line in table.splitlines() if line.startswith("| s_")), "one cell per column"
    assert set(rows_as_tensors(rows)) >= {"bbq/baseline/option_logprob", "bbq/noise/failed"}
    groups = group_tables(values).splitlines()
    assert groups[0] == "### bbq per group: baseline [convention: authors]"
    assert "### bbq per group: noise [convention: authors]" in groups
    age = next(line for line in groups if line.startswith("| Age |")).split(" | ")
    assert age[1] == "6 (0)" and len(age) == 2 + 5, "n rows (failed), then the five overall headline statistics"
    s_amb = entry["summaries"][BASELINE]["groups"]["Age"]["stats"]["s_amb"]
    assert age[2] == (
        f"undefined ({s_amb['undefined']})"
        if s_amb["value"] is None
        else f"{s_amb['value']:.3f} [{s_amb['low']:.3f}, {s_amb['high']:.3f}]"
    )
    # resumed: a second run reuses every cell and gives the same values
    again, _ = run_audit(tiny_long_model, [measure], {"noise": [steer]}, cells=tmp_path, batch_size=8)
    assert again == values


def test_bad_conditions_are_refused(tiny_long_model, steer):
    measure = BBQMeasure(categories=["Age"], n=2)
    with pytest.raises(InputError, match="name of the unintervened run"):
        run_audit(tiny_long_model, [measure], {BASELINE: [steer]})
    with pytest.raises(InputError, match="at least one intervention"):
        run_audit(tiny_long_model, [measure], {"empty": []})
    with pytest.raises(InputError, match="No measures"):
        run_audit(tiny_long_model, [], {})
    at_answer = AddVector(steer.vector, 1.0, start="instruction_end")
    with pytest.raises(InputError, match="the audit measures bbq score raw text"):
        run_audit(tiny_long_model, [measure], {"late": [at_answer]})


def test_a_condition_can_be_limited_to_some_measures(tiny_long_model, steer):
    bbq = BBQMeasure(categories=["Age"], n=2)
    values, _ = run_audit(tiny_long_model, [bbq], {"noise": [steer]}, only={"noise": []})
    assert list(values["bbq"]["summaries"]) == [BASELINE] and values["bbq"]["changes"] == {}
    assert "change: noise" not in markdown_table(values)
    with pytest.raises(InputError, match="not given"):
        run_audit(tiny_long_model, [bbq], {}, only={"other": ["bbq"]})


def test_group_tables_escape_pipes_and_say_why_a_value_is_undefined():
    estimate = {"value": 0.25, "low": 0.1, "high": 0.4, "n": 8, "level": 0.95}
    summary = {
        "headline": [["overall", "tb"], ["none", "tb"]],
        "statistics": {"tb": {"label": "mean |TB|", "ideal": 0.0}},
        "groups": {
            "overall": {"n_rows": 16, "n_failed": 1, "stats": {"tb": estimate}},
            "kid": {"n_rows": 8, "n_failed": 1, "stats": {"tb": estimate}},
            "none": {"n_rows": 8, "n_failed": 0, "stats": {"tb": {"value": None, "undefined": "no |rows|"}}},
        },
    }
    lines = group_tables({"persona_bbq": {"summaries": {BASELINE: summary}, "changes": {}}}).splitlines()
    assert lines[:4] == [
        "### persona_bbq per group: baseline",
        "",
        "| group | n rows (failed) | mean \\|TB\\| |",
        "|---|---|---|",
    ]
    assert lines[4:6] == ["| kid | 8 (1) | 0.250 [0.100, 0.400] |", "| none | 8 (0) | undefined (no \\|rows\\|) |"]


def test_your_own_sentence_pairs_from_a_dataset_with_per_item_rows(tiny_long_model, steer):
    from pathlib import Path

    import datasets
    import pandas as pd

    from lens_bias.audit.crows_pairs import CrowsPairsMeasure
    from lens_bias.audit.run import audit_items, summary_frame
    from lens_bias.data import load_pairs
    from lens_bias.data.tables import pairs_as_sentences

    example = pd.read_csv(Path(__file__).resolve().parents[2] / "examples" / "pairs.csv", dtype=str)
    own = pairs_as_sentences(load_pairs(datasets.Dataset.from_pandas(example)))
    measure = CrowsPairsMeasure(items=own, convention="lens_bias")  # the headline of the whole-sentence sums
    values, rows = run_audit(tiny_long_model, [measure], {"noise": [steer]})
    frame = pd.DataFrame(audit_items([measure], rows))
    assert frame.groupby("condition")["item_id"].apply(list).to_dict() == {
        BASELINE: example["id"].tolist(),
        "noise": example["id"].tolist(),
    }
    assert set(frame["group"]) == {"gender", "age"} and {"whole_0", "whole_1", "failed"} <= set(frame.columns)
    more = frame["whole_0"] > frame["whole_1"]
    overall = values["crows_pairs"]["summaries"][BASELINE]["groups"]["overall"]["stats"]["metric_score"]["value"]
    assert overall == pytest.approx(100 * more[frame["condition"] == BASELINE].mean())
    summary = summary_frame(values)
    assert set(summary["condition"]) == {BASELINE, "noise", "change: noise"}
