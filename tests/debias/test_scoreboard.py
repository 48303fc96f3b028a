"""The scoreboard: bias removed as distance to the ideal closed (paired), the Pareto front, one evaluation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lens_bias.audit.base import RowMeasure, Statistic, value_of
from lens_bias.audit.crows_pairs import CrowsPairsMeasure
from lens_bias.debias.methods import Candidate
from lens_bias.debias.scoreboard import (
    BASELINE,
    bias_removed,
    distance_to_ideal,
    evaluate,
    markdown_table,
)
from lens_bias.directions import SteeringVector
from lens_bias.errors import InputError
from lens_bias.figures.debias import pareto_figures
from lens_bias.interventions import AddVector, HeadScaling
from lens_bias.side_effects import SideEffectConfig
from lens_bias.stats import pareto_front


class Share(RowMeasure):
    """A one-statistic measure: 100 x the mean of ``x`` (ideal 50), like SS or the CrowS-Pairs score."""

    name = "share"
    raw_text = True

    def groups(self, rows):
        return {"overall": np.arange(len(rows["x"]))}

    def statistics(self):
        return [Statistic("pct", "percent", lambda rows, i: 100 * rows["x"][i].mean(), lambda r, i: "-", 50.0)]


def _rows(x):
    x = np.asarray(x, dtype=float)
    return {"x": x, "failed": np.zeros(len(x), bool)}


def test_bias_removed_is_the_distance_to_the_ideal_closed():
    base = _rows([1] * 7 + [0] * 3)  # 70: 20 from the ideal
    closer = _rows([1] * 5 + [0] * 5)  # 50: all 20 closed
    overshoot = _rows([1] * 2 + [0] * 8)  # 20: 30 from the ideal on the other side, 10 worse
    entry = bias_removed(Share(), "pct", base, closer, seed=0)
    assert entry["value"] == pytest.approx(20.0) and entry["low"] <= 20.0 <= entry["high"]
    assert bias_removed(Share(), "pct", base, overshoot, seed=0)["value"] == pytest.approx(-10.0)
    assert bias_removed(Share(), "pct", base, base, seed=0)["value"] == 0.0
    assert distance_to_ideal(Share().statistics()[0]).compute(base, np.arange(10)) == pytest.approx(20.0)
    with pytest.raises(InputError, match="no statistic 'ss'"):
        bias_removed(Share(), "ss", base, closer, seed=0)
    no_ideal = Statistic("n", "count", lambda rows, i: float(len(i)), lambda r, i: "-", None)
    with pytest.raises(InputError, match="no ideal"):
        distance_to_ideal(no_ideal)


def test_pareto_front():
    points = [(1.0, -0.1), (2.0, -0.3), (0.5, -0.2), (2.0, -0.3), (math.nan, 0.0), (-1.0, 0.0)]
    # (0.5, -0.2) is beaten by (1, -0.1); the duplicate (2, -0.3) points do not beat each other; NaN is never on it
    assert pareto_front(points) == [True, True, False, True, False, True]


@pytest.fixture(scope="module")
def scored(tiny_long_model):
    torch.manual_seed(0)
    noise = SteeringVector("noise", (1,), torch.randn(1, tiny_long_model.cfg.d_model) * 4, torch.ones(1))
    candidates = [
        Candidate("identity", "steering", (AddVector(noise, 0.0, start=None),)),
        Candidate("noise", "steering", (AddVector(noise, 1.0, start=None),)),
        Candidate("heads", "head ablation", (HeadScaling(((0, 0), (1, 1)), 0.0),)),
        Candidate("same checkpoint", "fine-tuning", model=tiny_long_model),
    ]
    measures = [CrowsPairsMeasure(n=12, seed=0)]
    retention = SideEffectConfig(n_neutral=4, n_bbq=4, n_stereoset=4, n_knowledge=4, batch_size=8)
    values = evaluate(
        tiny_long_model,
        candidates,
        measures,
        retention,
        bias_statistics=[("crows_pairs", "metric_score")],
        batch_size=8,
    )
    return values


def test_evaluate_scores_every_method_against_one_baseline(scored):
    methods = scored["methods"]
    assert list(methods) == ["identity", "noise", "heads", "same checkpoint"]
    for name in ("identity", "same checkpoint"):  # no change: nothing removed, nothing lost
        assert methods[name]["bias"]["crows_pairs.metric_score"]["removed"]["value"] == 0.0
        # up to float order: the baseline's sentences share their prefixes, an intervention's run one per row
        assert all(abs(effect["delta"]["value"]) < 1e-6 for effect in methods[name]["retention"].values())
    assert methods["noise"]["retention"]["neutral_logprob"]["delta"]["value"] != 0.0
    assert set(scored["retention_readouts"]) >= {"neutral_logprob", "knowledge_accuracy"}
    items = pd.DataFrame(scored["items"])  # per item: every measure's row and retention readout, per method
    assert set(items["condition"]) == {"no intervention", "identity", "noise", "heads", "same checkpoint"}
    crows = items[(items["measure"] == "crows_pairs") & (items["condition"] == "identity")]
    assert len(crows) == 12 and crows["item_id"].is_unique
    retention = items[(items["measure"] == "retention") & (items["condition"] == "heads")]
    assert retention.groupby("readout").size().to_dict() == {"bbq": 4, "knowledge": 4, "neutral": 4, "stereoset": 4}
    base = value_of(scored["baseline"]["bias"]["crows_pairs.metric_score"])
    after = value_of(methods["noise"]["bias"]["crows_pairs.metric_score"]["value"])
    removed = methods["noise"]["bias"]["crows_pairs.metric_score"]["removed"]["value"]
    assert base is not None and after is not None
    assert removed == pytest.approx(abs(base.value - 50) - abs(after.value - 50))
    assert methods["same checkpoint"]["describe"]["model"]["n_layers"] == 4
    table = markdown_table(scored)
    assert f"| {BASELINE} (value) |" in table and "| noise | " in table
    n_readouts = len(scored["retention_readouts"])
    assert [line.count(" | ") for line in table.splitlines() if line.startswith("| heads")] == [1, n_readouts]
    (figure,) = pareto_figures(scored).values()
    assert [trace.name for trace in figure.data] == list(methods)
    with pytest.raises(InputError, match="No retention readout"):
        pareto_figures(scored, retention="nope")


def test_evaluate_refuses_bad_input_before_scoring(tiny_long_model):
    measures = [CrowsPairsMeasure(n=2)]
    retention = SideEffectConfig(n_neutral=2, n_bbq=2, n_stereoset=2, n_knowledge=2)
    vector = SteeringVector("v", (1,), torch.ones(1, tiny_long_model.cfg.d_model), torch.ones(1))
    late = Candidate("late", "steering", (AddVector(vector, 1.0, start="instruction_end"),))
    with pytest.raises(InputError, match="No methods"):
        evaluate(tiny_long_model, [], measures, retention)
    with pytest.raises(InputError, match="unique"):
        evaluate(tiny_long_model, [late, late], measures, retention)
    with pytest.raises(InputError, match="needs the measure bbq"):
        evaluate(tiny_long_model, [late], measures, retention, bias_statistics=[("bbq", "s_amb")])
    with pytest.raises(InputError, match="crows_pairs, the retention readouts score raw text"):
        evaluate(tiny_long_model, [late], measures, retention, bias_statistics=[("crows_pairs", "metric_score")])
    outside = Candidate("outside", "head ablation", (HeadScaling(((9, 0),), 0.0),))
    with pytest.raises(InputError, match="outside the model"):
        evaluate(tiny_long_model, [outside], measures, retention, bias_statistics=[("crows_pairs", "metric_score")])
