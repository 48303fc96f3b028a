from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lens_bias.audit.stereoset import StereoSetMeasure
from lens_bias.cells import CellStore
from lens_bias.data.stereoset import (
    BIAS_TYPES,
    KINDS,
    StereoSetScore,
    load_stereoset,
    load_stereoset_file,
    stereoset_scores,
    stereoset_statistics,
)
from lens_bias.errors import InputError
from lens_bias.figures.audit import stereoset_figures

X, Y, Z = 0, 1, 2
RACE, GENDER = BIAS_TYPES.index("race"), BIAS_TYPES.index("gender")
INTRA, INTER = KINDS.index("intrasentence"), KINDS.index("intersentence")
# (stereotype, anti-stereotype, unrelated), target, bias type, kind
HAND = [
    ((1.0, 0.0, -1.0), X, RACE, INTRA),  # stereotype preferred; both related
    ((0.0, 0.0, 1.0), X, RACE, INTRA),  # tie -> anti-stereotype; neither related
    ((2.0, 1.0, 0.0), Y, RACE, INTER),  # stereotype preferred; both related
    ((0.0, 1.0, 2.0), Z, GENDER, INTER),  # anti; neither related
    ((0.0, 1.0, 0.5), Z, GENDER, INTER),  # anti; only the anti-stereotype related
    ((math.nan, 0.0, 0.0), Y, GENDER, INTRA),  # failed
]


def hand_rows(entries=HAND):
    scores = np.array([e[0] for e in entries], dtype=np.float64)
    return {
        "scores": scores,
        "failed": ~np.isfinite(scores).all(1),
        "target": np.array([e[1] for e in entries]),
        "bias_type": np.array([e[2] for e in entries]),
        "kind": np.array([e[3] for e in entries]),
    }


@pytest.fixture(scope="module")
def measure():
    return StereoSetMeasure()


@pytest.fixture(scope="module")
def summary(measure):
    return measure.summarize(hand_rows(), seed=0)


def values(summary, group):
    return {name: entry["value"] for name, entry in summary["groups"][group]["stats"].items()}


def test_statistics_hand_computed_macro_micro_ties_and_groups(summary):
    # per target over scored rows 0-4: X SS 50 LMS 50 ICAT 50; Y SS 100 LMS 100 ICAT 0; Z SS 0 LMS 25 ICAT 0
    overall = values(summary, "overall")
    assert overall["ss"] == pytest.approx(50.0)
    assert overall["lms"] == pytest.approx(175 / 3)
    assert overall["icat"] == pytest.approx(50 / 3)
    assert overall["icat_from_means"] == pytest.approx(175 / 3)  # LMS x min(50, 50) / 50
    assert overall["ss_micro"] == pytest.approx(40.0)  # 2 of 5 items
    assert overall["lms_micro"] == pytest.approx(50.0)  # (1 + 0 + 1 + 0 + 0.5) / 5
    assert overall["icat_micro"] == pytest.approx(40.0)
    assert (summary["groups"]["overall"]["n_rows"], summary["groups"]["overall"]["n_failed"]) == (6, 1)
    race = values(summary, "race")
    assert (race["ss"], race["lms"], race["icat"]) == pytest.approx((75.0, 75.0, 25.0))
    assert race["ss_micro"] == pytest.approx(200 / 3)
    gender = values(summary, "gender")
    assert (gender["ss"], gender["lms"], gender["icat"]) == pytest.approx((0.0, 25.0, 0.0))
    assert summary["groups"]["gender"]["n_failed"] == 1
    assert set(summary["groups"]) == {"overall", *BIAS_TYPES, *KINDS}
    assert summary["groups"]["religion"]["stats"]["ss"] == {"value": None, "undefined": "no rows in this group"}
    intra, inter = values(summary, "intrasentence"), values(summary, "intersentence")
    assert (intra["ss"], intra["lms"], intra["icat"]) == pytest.approx((50.0, 50.0, 50.0))
    assert (inter["ss"], inter["lms"], inter["icat"]) == pytest.approx((50.0, 62.5, 0.0))
    assert (inter["ss_micro"], inter["lms_micro"]) == pytest.approx((100 / 3, 50.0))
    assert summary["headline"] == [["overall", "ss"], ["overall", "lms"], ["overall", "icat_from_means"]]
    assert summary["statistics"]["ss"]["ideal"] == 50.0 and summary["statistics"]["lms"]["ideal"] == 100.0
    entry = summary["groups"]["overall"]["stats"]["ss"]
    assert entry["low"] <= entry["value"] <= entry["high"] and entry["n"] == 6


def test_statistics_and_stereoset_scores_share_one_formula(summary):
    names = {X: "X", Y: "Y", Z: "Z"}
    scores = [StereoSetScore(f"id{i}", names[e[1]], BIAS_TYPES[e[2]], *e[0]) for i, e in enumerate(HAND)]
    reference = stereoset_scores(scores)
    for name in ("ss", "lms", "icat", "icat_from_means", "ss_micro", "lms_micro", "icat_micro"):
        assert values(summary, "overall")[name] == pytest.approx(reference["overall"][name])
        assert values(summary, "race")[name] == pytest.approx(reference["by_bias_type"]["race"][name])


def test_a_repeated_row_counts_twice_within_its_target():
    scores = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 2.0], [1.0, 0.0, -1.0]])
    stats = stereoset_statistics(scores[[0, 0, 1, 2]], np.array([X, X, X, Y]))
    assert stats["ss"] == pytest.approx((200 / 3 + 100) / 2)
    assert stats["n_targets"] == 2


def test_a_tie_counts_as_anti_stereotype_and_not_related(measure):
    summary = measure.summarize(hand_rows([((0.5, 0.5, 0.5), X, RACE, INTRA)]), seed=0)
    assert values(summary, "overall")["ss"] == 0.0
    assert values(summary, "overall")["lms"] == 0.0


def test_all_failed_is_undefined_never_50(measure):
    rows = hand_rows([((math.nan, math.nan, math.nan), t, RACE, INTRA) for t in (X, Y, Z)])
    summary = measure.summarize(rows, seed=0)
    for stat in ("ss", "lms", "icat", "ss_micro"):
        entry = summary["groups"]["overall"]["stats"][stat]
        assert entry["value"] is None and "all 3 failed" in entry["undefined"]
    assert summary["groups"]["overall"]["n_failed"] == 3
    # one group all failed, the others defined
    summary = measure.summarize(hand_rows(HAND[:3] + [((math.nan, 0.0, 0.0), Z, GENDER, INTER)]), seed=0)
    assert summary["groups"]["gender"]["stats"]["ss"]["value"] is None
    assert values(summary, "race")["ss"] == pytest.approx(75.0)


def test_paired_change_by_hand(measure):
    base = hand_rows()
    other = hand_rows()
    other["scores"][1] = (1.0, 0.0, 2.0)  # item 1 now prefers the stereotype: target X goes from SS 50 to 100
    change = measure.compare(base, other, seed=0)
    assert values(change, "overall")["ss"] == pytest.approx(50 / 3)
    assert values(change, "gender")["ss"] == 0.0


def test_figure_has_one_series_per_condition_and_the_ideal_line(measure, summary):
    summaries = {"baseline": summary, "steered": summary}
    figure = stereoset_figures(summaries)["stereoset_ss"]
    bars = [trace for trace in figure.data if trace.type == "bar"]
    assert [bar.name for bar in bars] == ["baseline", "steered"]
    assert list(bars[0].x) == ["overall", *BIAS_TYPES]
    assert bars[0].y[0] == pytest.approx(50.0) and math.isnan(bars[0].y[BIAS_TYPES.index("religion") + 1])
    assert any(shape.y0 == 50.0 for shape in figure.layout.shapes)


# --- loading another split file -----------------------------------------------------------------


def write(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_split_file_in_the_format_loads(tmp_path):
    dev = load_stereoset()
    raw = {"version": "custom", "data": {"intrasentence": [], "intersentence": []}}
    for item in (dev[0], dev[-1]):
        labels = {"stereotype": item.stereotype, "anti-stereotype": item.anti_stereotype, "unrelated": item.unrelated}
        raw["data"][item.kind].append(
            {
                "id": item.id,
                "target": item.target,
                "bias_type": item.bias_type,
                "context": item.context,
                "sentences": [{"sentence": s, "gold_label": g} for g, s in labels.items()],
            }
        )
    path = write(tmp_path / "mine.json", raw)
    assert load_stereoset_file(path) == [dev[0], dev[-1]]
    measure = StereoSetMeasure(split_file=path)
    assert measure.items == [dev[0], dev[-1]] and measure.describe()["split_file"] == str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"version": "x", "data": {"intersentence": []}}, "not a StereoSet file: .*no data.intrasentence"),
        ({"rows": []}, "no 'data' object"),
        ("id,sent_more\n0,a\n", "not JSON"),
        (
            {"data": {"intrasentence": [{"id": "a", "target": "t", "bias_type": "race", "context": "c"}]}},
            r"data.intrasentence\[0\] has no 'sentences'",
        ),
        (
            {
                "data": {
                    "intrasentence": [
                        {
                            "id": "a",
                            "target": "t",
                            "bias_type": "race",
                            "context": "c BLANK",
                            "sentences": [{"sentence": "s", "gold_label": "stereotype"}],
                        }
                    ],
                    "intersentence": [],
                }
            },
            "no sentence with gold_label 'anti-stereotype'",
        ),
    ],
)
def test_a_wrong_split_file_ends_in_one_clear_error(tmp_path, content, message):
    path = write(tmp_path / "wrong.json", content)
    with pytest.raises(InputError, match=message):
        StereoSetMeasure(split_file=path)


def test_bad_arguments_fail_before_any_work(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        StereoSetMeasure(split_file=tmp_path / "missing.json")
    with pytest.raises(InputError, match="not both"):
        StereoSetMeasure(split="test", split_file=tmp_path / "missing.json")
    with pytest.raises(InputError, match="bias_types"):
        StereoSetMeasure(bias_types=["age"])
    with pytest.raises(InputError, match="kinds"):
        StereoSetMeasure(kinds=["inter"])
    with pytest.raises(InputError, match="n "):
        StereoSetMeasure(n=0)


# --- scoring on the tiny model ------------------------------------------------------------------


def test_scoring_resumes_without_recomputing_finished_chunks(tiny_model, tmp_path):
    measure = StereoSetMeasure(n=7, seed=3, chunk=3)
    assert {item.kind for item in measure.items} == set(KINDS)
    first_store = CellStore(tmp_path, {"model": "tiny"})
    rows = measure.score(tiny_model, [], cells=first_store, batch_size=4, progress=False)
    assert (first_store.computed, first_store.reused) == (3, 0)
    assert rows["scores"].shape == (7, 3) and not rows["failed"].any()
    again = CellStore(tmp_path, {"model": "tiny"})
    resumed = measure.score(tiny_model, [], cells=again, batch_size=2, progress=False)
    assert (again.computed, again.reused) == (0, 3)
    for name in rows:
        np.testing.assert_array_equal(resumed[name], rows[name])
    # an interrupted run: one chunk missing is the only one computed
    sorted(tmp_path.glob("*.safetensors"))[0].unlink()
    interrupted = CellStore(tmp_path, {"model": "tiny"})
    measure.score(tiny_model, [], cells=interrupted, batch_size=4, progress=False)
    assert (interrupted.computed, interrupted.reused) == (1, 2)


def test_real_model_stereoset_and_crows_pairs(smollm):
    """30 StereoSet items and 30 CrowS-Pairs pairs on the embedded model: finite, and the model tells
    meaningful options from unrelated ones (LMS well above 50)."""
    from lens_bias.audit.crows_pairs import CrowsPairsMeasure

    def point_values(measure, rows):
        index = np.arange(len(rows["failed"]))
        return {stat.name: stat.compute(rows, index) for stat in measure.statistics()}

    stereoset = StereoSetMeasure(n=30, seed=0)
    rows = stereoset.score(smollm, [], cells=CellStore(None), batch_size=16, progress=False)
    assert not rows["failed"].any()
    stats = point_values(stereoset, rows)
    assert stats["lms"] > 60 and stats["lms_micro"] > 60
    assert 0 < stats["ss"] < 100
    crows = CrowsPairsMeasure(n=30, seed=0)
    crows_rows = crows.score(smollm, [], cells=CellStore(None), batch_size=16, progress=False)
    assert not crows_rows["failed"].any() and (crows_rows["n_shared"] > 0).all()
    for name, value in point_values(crows, crows_rows).items():  # differ_*: % of verdicts flipped, may be 0
        assert 0 < value < 100 if name.startswith("metric_score") else 0 <= value <= 100


def test_the_fast_bootstrap_of_the_sums_gives_the_per_replicate_interval(few_resamples):
    """Every StereoSet statistic (macro over target terms and micro), its interval and its paired change,
    through summed per-target columns (one vectorised bootstrap) and through ``compute`` per replicate: the same
    numbers, ties, failed items and target terms absent from a resample included."""
    from dataclasses import replace

    from lens_bias.audit.base import estimate, paired_change

    rng = np.random.default_rng(0)
    failed = rng.random(90) < 0.05
    scores = rng.integers(0, 3, (90, 3)).astype(float)  # small integers: many ties
    scores[failed] = math.nan
    targets = np.concatenate([np.arange(7), rng.integers(0, 7, 83)]) * 3  # codes with gaps; some terms rare
    rows = {"scores": scores, "target": targets, "failed": failed}
    other = {**rows, "scores": np.where(failed[:, None], math.nan, rng.normal(size=(90, 3)))}
    index, clusters = np.arange(4, 90), np.arange(90) // 3
    for fast in StereoSetMeasure(n=4).statistics():
        slow = replace(fast, sums=None)
        assert fast.sums is not None
        assert estimate(fast, rows, index, clusters, seed=3) == estimate(slow, rows, index, clusters, seed=3)
        assert paired_change(fast, rows, other, index, clusters, seed=3) == paired_change(
            slow, rows, other, index, clusters, seed=3
        )
