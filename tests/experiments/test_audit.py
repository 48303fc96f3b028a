"""The audit experiment: bad input refused before any model loads; end to end on the tiny model, replot equal."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_checks import assert_refused

from experiments import audit, commands
from lens_bias.audit.registry import MEASURES
from lens_bias.errors import InputError
from lens_bias.figures.index import render_index

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pairs.csv"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--intervention", "missing.json"], "--intervention missing.json: no such file"),
        (["--split-file", "missing.json"], "--split-file missing.json: no such file"),
        (["--n-bbq", "0"], "--n-bbq must be >= 1"),
        (["--bbq-convention", "paper"], "invalid choice: 'paper'"),
        (["--bbq-convention", "harness", "--bbq-chat"], "no chat template (bbq_chat)"),
        (["--measures"], "no audit measures; registered: stereoset, crows_pairs, bbq"),
    ],
)
def test_bad_input_is_refused_before_the_model_loads(no_model, argv, message, capsys):
    assert_refused(audit.main, argv, message, capsys)


def test_unknown_measure_is_refused_naming_the_registered_ones(no_model, capsys):
    message = "unknown audit measure(s) 'winobias'; registered: stereoset, crows_pairs, bbq, persona_bbq, service"
    assert_refused(audit.main, ["--measures", "winobias"], message, capsys)


def test_bbq_audit_end_to_end_and_replot(tiny_long_dir, tmp_path, capsys):
    out = tmp_path / "audit"
    args = ["--model", str(tiny_long_dir), "--measures", "bbq", "--n-bbq", "2", "--no-png", "--out", str(out)]
    result = audit.main(args)
    printed = capsys.readouterr().out
    assert result.name == "audit" and set(result.values) == {"bbq"}
    written = (out / "audit.md").read_text()
    assert written.startswith("# Bias audit of") and "### bbq per group: baseline [convention: authors]" in written
    assert "| s_AMB (likelihood) | 0 |" in printed and (out / "bbq_s_amb.html").is_file()
    assert "bbq/baseline/option_logprob" in result.tensors
    replotted = audit.main(["--replot", str(out / "audit.json"), "--no-png"])
    assert replotted.values == result.values
    assert capsys.readouterr().out.split("wrote")[0] == printed.split("wrote")[0]
    index = render_index(tmp_path, commands.experiment)  # the index's section: its headline table
    assert "## audit: [`audit/audit.json`]" in index and audit.summarize(result) in index
    assert audit.summarize(result) in printed and "- `audit/bbq_s_amb` [HTML]" in index


def test_quick_config_builds_every_measure_at_small_sizes():
    config = audit.Config(**audit.QUICK)
    measures = audit.build_measures(config, model=None)  # no measure needs the model unless --bbq-chat
    assert [m.name for m in measures] == list(MEASURES)
    by_name = {m.name: m for m in measures}
    assert len(by_name["stereoset"].items) == 40 and len(by_name["crows_pairs"].items) == 40
    assert len(by_name["bbq"].items) == 4 * 11
    assert [p.name for p in by_name["persona_bbq"].personas] == ["elder", "Muslim"]
    service = by_name["service"]  # 2 templates x 12 groups x 1 name, one answer of 16 tokens each
    assert len(service.requests) == 2 * 12 and (service.n_samples, service.max_new_tokens) == (1, 16)
    assert [m.name for m in measures if not m.raw_text] == ["persona_bbq", "service"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"measures": ("bbq",), "refusal_vector": (0.5,)}, "--refusal-vector applies to the chat measures"),
        ({"measures": ("service",), "refusal_vector": (0.0,)}, "non-zero multipliers"),
    ],
)
def test_refusal_vector_conditions_are_checked(kwargs, message):
    with pytest.raises(InputError, match=message):
        audit.Config(**kwargs)


def test_benchmark_measures_end_to_end(tiny_long_dir, tmp_path, capsys):
    out = tmp_path / "audit"
    args = ["--measures", "stereoset", "crows_pairs", "--n-stereoset", "6", "--n-crows-pairs", "6"]
    result = audit.main(["--model", str(tiny_long_dir), *args, "--no-png", "--out", str(out)])
    printed = capsys.readouterr().out
    assert set(result.values) == {"stereoset", "crows_pairs"}
    assert "### stereoset [convention: authors]" in printed and "### crows_pairs [convention: authors]" in printed
    assert result.values["crows_pairs"]["describe"]["convention"] == "authors"
    for figure in ("stereoset_ss", "crows_pairs_metric_score", "crows_pairs_metric_score_lens_bias"):
        assert (out / f"{figure}.html").is_file()


def _damaged_results(folder) -> dict[str, object]:
    """Saved files a --replot may be given that are not intact audit results."""
    import torch

    from lens_bias.provenance import Result

    provenance = {"model": {"name": "tiny"}}
    json_list = folder / "list.json"
    json_list.write_text("[1, 2]")
    tensors = Result("audit", {}, {}, provenance, {"rows": torch.arange(1000.0)}).save(folder / "tensors")
    (folder / "tensors.safetensors").write_bytes((folder / "tensors.safetensors").read_bytes()[:500])
    return {
        "json list": json_list,
        "no summaries": Result("audit", {"bbq": {"describe": {}}}, {}, provenance).save(folder / "bare"),
        "unknown measure": Result("audit", {"astrology": {"summaries": {}}}, {}, provenance).save(folder / "odd"),
        "truncated tensors": tensors,
    }


@pytest.mark.fault
def test_a_replot_of_a_damaged_or_foreign_result_is_one_input_error(tmp_path):
    for what, path in _damaged_results(tmp_path).items():
        with pytest.raises(InputError, match=str(path)) as raised:
            audit.main(["--replot", str(path), "--no-png"])
        assert "\n" not in str(raised.value), what


def test_your_own_pairs_and_bbq_questions_with_per_item_rows(tiny_long_dir, tmp_path, capsys):
    """``--pairs-file`` (the example pairs, as JSONL) feeds the CrowS-Pairs measure and ``--bbq-file`` (Parquet,
    with a column mapping) the BBQ one; every row of the per-item table names its item; the summary CSV."""
    import pandas as pd

    pairs = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)
    pairs.to_json(tmp_path / "pairs.jsonl", orient="records", lines=True)
    question = {"context": "A and B met.", "question": "Who was late?", "ans0": "A", "ans1": "B", "ans2": "Unknown"}
    bbq = pd.DataFrame(
        [question | {"gold": 2, "unknown_index": 2, "context_condition": "ambig", "target_index": 0, "id": 7}]
        + [question | {"gold": 0, "unknown_index": 2, "context_condition": "disambig", "target_index": 0, "id": 8}]
    )
    bbq.to_parquet(tmp_path / "bbq.parquet")
    files = ["--pairs-file", str(tmp_path / "pairs.jsonl"), "--bbq-file", str(tmp_path / "bbq.parquet")]
    args = [
        "--model",
        str(tiny_long_dir),
        "--measures",
        "crows_pairs",
        "bbq",
        *files,
        "--no-png",
        "--out",
        str(tmp_path),
    ]
    with pytest.raises(InputError, match="unknown field"):  # the mapping is checked against the pairs too
        audit.main([*args, "--columns", "label=gold"])
    bbq.rename(columns={"gold": "label"}).to_parquet(tmp_path / "bbq.parquet")
    result = audit.main(args)
    assert result.values["crows_pairs"]["describe"]["own_items"] and result.values["bbq"]["describe"]["own_items"]
    assert result.values["crows_pairs"]["describe"]["bias_types"] == ["gender", "age"]
    frame = pd.read_parquet(tmp_path / "audit.items.parquet")
    crows = frame[frame["measure"] == "crows_pairs"]
    assert crows["item_id"].tolist() == pairs["id"].tolist() and set(crows["condition"]) == {"baseline"}
    assert crows["text"].iloc[0] == "The nurse said that she would be late. | The nurse said that he would be late."
    assert frame[frame["measure"] == "bbq"]["item_id"].tolist() == ["custom-7", "custom-8"]
    summary = pd.read_csv(tmp_path / "audit_summary.csv")
    assert {"measure", "convention", "condition", "group", "statistic", "value", "low", "high"} <= set(summary.columns)
    assert set(summary[summary["measure"] == "bbq"]["convention"]) == {"authors"}
    assert set(summary["group"]) >= {"overall", "gender", "age", "custom"}
