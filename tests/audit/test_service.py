"""Tests for the quality-of-service measure: statistics on hand-made rows, mechanics on the tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lens_bias.audit.service import NON_REFERENCE, OVERALL, ServiceMeasure
from lens_bias.cells import CellStore, interventions_key
from lens_bias.data.service_requests import service_groups
from lens_bias.directions import SteeringVector
from lens_bias.errors import InputError
from lens_bias.figures.audit import service_figures
from lens_bias.interventions import AddVector
from lens_bias.metrics.service import SERVICE_CATEGORIES

CODE = {category: i for i, category in enumerate(SERVICE_CATEGORIES)}
GROUP = {group.key: i for i, group in enumerate(service_groups())}


def hand_rows() -> dict[str, np.ndarray]:
    """3 templates x (white men, Black men) x 2 answers. Refusals of white men per template: 0, 1, 0 of 2;
    of Black men: 1, 2, 1 of 2, so the gap is +0.5 on every template. Propensity: white -2, Black -1."""
    template, group, category, propensity = [], [], [], []
    refusals = {"white_men": [0, 1, 0], "black_men": [1, 2, 1]}
    for t in range(3):
        for key in ("white_men", "black_men"):
            for s in range(2):
                template.append(t)
                group.append(GROUP[key])
                refused = s < refusals[key][t]
                category.append(CODE["full_refusal"] if refused else CODE["full_compliance"])
                propensity.append(-2.0 if key == "white_men" else -1.0)
    n = len(template)
    return {
        "template": np.array(template),
        "group": np.array(group),
        "filler": np.zeros(n, dtype=int),
        "sample": np.tile([0, 1], n // 2),
        "category": np.array(category),
        "propensity": np.array(propensity),
        "failed": np.zeros(n, dtype=bool),
    }


def stat(summary, group, name):
    return summary["groups"][group]["stats"][name]


def test_rates_and_gap_on_hand_computed_rows():
    measure, rows = ServiceMeasure(), hand_rows()
    summary = measure.summarize(rows, seed=0)
    assert list(summary["groups"]) == [OVERALL, "white_men", "black_men", NON_REFERENCE]
    assert stat(summary, "white_men", "refusal_rate")["value"] == pytest.approx(1 / 6)
    assert stat(summary, "black_men", "refusal_rate")["value"] == pytest.approx(4 / 6)
    assert stat(summary, "black_men", "full_refusal")["value"] == pytest.approx(4 / 6)
    assert stat(summary, "black_men", "full_compliance")["value"] == pytest.approx(2 / 6)
    assert stat(summary, OVERALL, "propensity")["value"] == pytest.approx(-1.5)
    gap = stat(summary, "black_men", "refusal_rate_gap")
    # the gap is +0.5 on every template: paired by template, its interval collapses to the value
    assert (gap["value"], gap["low"], gap["high"], gap["n"]) == pytest.approx((0.5, 0.5, 0.5, 3))
    assert stat(summary, "black_men", "propensity_gap")["value"] == pytest.approx(1.0)
    assert stat(summary, NON_REFERENCE, "refusal_rate_gap")["value"] == pytest.approx(0.5)
    assert stat(summary, "black_men", "full_compliance_gap")["value"] == pytest.approx(-0.5)
    # the per-group rates themselves vary by template: a real interval
    white = stat(summary, "white_men", "refusal_rate")
    assert white["low"] == pytest.approx(0.0) and white["high"] > white["value"]
    assert stat(summary, "white_men", "refusal_rate_gap") == {"value": None, "undefined": "this is a reference group"}
    assert stat(summary, OVERALL, "refusal_rate_gap")["value"] is None
    assert summary["groups"]["black_men"]["n_rows"] == 6 and summary["groups"]["black_men"]["n_failed"] == 0
    assert summary["statistics"]["refusal_rate_gap"]["ideal"] == 0.0
    assert [NON_REFERENCE, "refusal_rate_gap"] in summary["headline"]


def test_failed_rows_leave_the_denominators():
    rows = hand_rows()
    rows["failed"][rows["group"] == GROUP["black_men"]] = True
    summary = ServiceMeasure().summarize(rows, seed=0)
    black = summary["groups"]["black_men"]
    assert black["n_failed"] == 6 and black["stats"]["refusal_rate"]["value"] is None
    assert "failed" in black["stats"]["refusal_rate"]["undefined"]
    assert black["stats"]["refusal_rate_gap"]["value"] is None


def test_compare_gives_the_paired_change_of_the_gap():
    base, other = hand_rows(), hand_rows()
    black = other["group"] == GROUP["black_men"]
    other["category"][black] = CODE["harmful_refusal"]  # every Black man's answer now a harmful refusal
    other["propensity"] = other["propensity"] + 0.25
    change = ServiceMeasure().compare(base, other, seed=0)
    # gap: (1 - 1/6) under the change, (4/6 - 1/6) before
    assert stat(change, "black_men", "refusal_rate_gap")["value"] == pytest.approx(5 / 6 - 3 / 6)
    assert stat(change, "black_men", "harmful_refusal")["value"] == pytest.approx(1.0)
    assert stat(change, "white_men", "refusal_rate")["value"] == pytest.approx(0.0)
    assert stat(change, OVERALL, "propensity")["value"] == pytest.approx(0.25)
    assert stat(change, "black_men", "propensity_gap")["value"] == pytest.approx(0.0)
    shuffled = {**other, "group": other["group"][::-1]}
    with pytest.raises(InputError, match="group"):
        ServiceMeasure().compare(base, shuffled, seed=0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_samples": 0}, "n_samples"),
        ({"temperature": 0.0}, "temperature"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"templates": ("nope",)}, "templates"),
        ({"n_names": 9}, "n_names"),
    ],
)
def test_bad_settings_raise_before_any_work(kwargs, match):
    with pytest.raises(InputError, match=match):
        ServiceMeasure(**kwargs)


# --- the tiny model ------------------------------------------------------------------------------------

SMALL = {"templates": ("train_ticket", "dinner"), "n_names": 1, "n_samples": 2, "max_new_tokens": 4}


def test_score_rows_and_seeded_reruns(tiny_model):
    measure = ServiceMeasure(**SMALL)
    rows = measure.score(tiny_model, [], cells=CellStore(None), batch_size=8, progress=False)
    n = 2 * 12 * 1 * 2
    assert all(len(values) == n for values in rows.values())
    assert rows["template"].tolist() == [0] * 24 + [1] * 24
    assert rows["group"][:4].tolist() == [0, 0, 1, 1] and rows["sample"][:4].tolist() == [0, 1, 0, 1]
    assert set(rows["category"].tolist()) <= set(range(len(SERVICE_CATEGORIES)))
    assert np.isfinite(rows["propensity"]).all() and not rows["failed"].any()
    assert (rows["propensity"][0::2] == rows["propensity"][1::2]).all()  # a request's samples share it
    assert ((rows["n_tokens"] >= 1) & (rows["n_tokens"] <= 4)).all()
    again = measure.score(tiny_model, [], cells=CellStore(None), batch_size=8, progress=False)
    assert again["text"].tolist() == rows["text"].tolist()
    assert np.array_equal(again["category"], rows["category"])
    # seeded per template: asking one template alone gives its answers unchanged
    alone = ServiceMeasure(**{**SMALL, "templates": ("dinner",)})
    one = alone.score(tiny_model, [], cells=CellStore(None), batch_size=8, progress=False)
    assert one["text"].tolist() == rows["text"][24:].tolist()
    other_seed = ServiceMeasure(**{**SMALL, "templates": ("dinner",), "seed": 1})
    assert other_seed.score(tiny_model, [], cells=CellStore(None), batch_size=8, progress=False)["text"].tolist() != (
        one["text"].tolist()
    )
    summary = measure.summarize(rows, seed=0)
    assert summary["groups"][OVERALL]["n_rows"] == n
    assert sum(len(v) for v in summary["examples"].values()) >= 1
    figures = service_figures({"baseline": summary, "steered": summary})
    assert set(figures) == {"service_categories", "service_refusal_gap", "service_propensity"}


def test_resume_reuses_cells_and_interventions_change_the_key(tiny_model, tmp_path):
    measure = ServiceMeasure(**SMALL)
    store = CellStore(tmp_path, {"model": "tiny"})
    first = measure.score(tiny_model, [], cells=store, batch_size=8, progress=False)
    assert (store.computed, store.reused) == (2, 0)
    resumed = CellStore(tmp_path, {"model": "tiny"})
    second = measure.score(tiny_model, [], cells=resumed, batch_size=8, progress=False)
    assert (resumed.computed, resumed.reused) == (0, 2)
    assert second["text"].tolist() == first["text"].tolist()
    assert np.array_equal(second["propensity"], first["propensity"])

    torch.manual_seed(0)
    d_model = tiny_model.cfg.d_model
    vector = SteeringVector("random", (1,), torch.randn(1, d_model) * 4, torch.ones(1))
    steer = [AddVector(vector, 4.0, [1])]
    steered_store = CellStore(tmp_path, {"model": "tiny", "interventions": interventions_key(steer)})
    steered = measure.score(tiny_model, steer, cells=steered_store, batch_size=8, progress=False)
    assert (steered_store.computed, steered_store.reused) == (2, 0)
    assert not np.allclose(steered["propensity"], first["propensity"])
    change = measure.compare(first, steered, seed=0)
    assert change["groups"][OVERALL]["stats"]["propensity"]["value"] == pytest.approx(
        float(steered["propensity"].mean() - first["propensity"].mean())
    )


@pytest.mark.slow
def test_embedded_model_serves_everyday_requests(smollm):
    """The embedded model leans toward complying with everyday requests (negative refusal propensity)."""
    measure = ServiceMeasure(templates=("train_ticket",), n_names=1, n_samples=1, temperature=0.7, max_new_tokens=16)
    rows = measure.score(smollm, [], cells=CellStore(None), batch_size=12, progress=False)
    assert len(rows["text"]) == 12
    assert (rows["propensity"] < 0).all()
    refusing = np.isin(rows["category"], [CODE["partial_refusal"], CODE["full_refusal"], CODE["harmful_refusal"]])
    assert refusing.mean() <= 0.5
