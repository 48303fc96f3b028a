"""BBQ in the audit: the two readouts of one prompt, scores equal to bbq_bias_scores, resumable chunks."""

from __future__ import annotations

import numpy as np
import pytest

from lens_bias.audit.bbq import BBQMeasure
from lens_bias.cells import CellStore
from lens_bias.data.bbq import bbq_bias_scores, load_bbq
from lens_bias.errors import InputError


@pytest.fixture(scope="module")
def items():
    return [item for item in load_bbq(["Age"]) if item.example_id in (0, 1, 2, 3)]


def test_measure_scores_equal_bbq_bias_scores_and_resume(tiny_long_model, tmp_path):
    measure = BBQMeasure(categories=["Age", "Religion"], n=6, seed=1, chunk=5)
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


def test_undefined_scores_say_why():
    """All answers 'unknown': s_DIS has no non-unknown answer, reported undefined (never 0)."""
    measure = BBQMeasure(categories=["Age"], n=8, seed=0)
    from lens_bias.data.bbq import item_arrays

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
