"""The audit-measure registry: built-in names, a user's own measure as one registered class, clear refusals."""

from __future__ import annotations

import pytest

from lens_bias.audit import registry
from lens_bias.audit.base import MeasureOptions
from lens_bias.audit.crows_pairs import CrowsPairsMeasure
from lens_bias.errors import InputError


def test_built_in_measures_are_registered_in_order():
    assert list(registry.MEASURES) == ["stereoset", "crows_pairs", "bbq", "persona_bbq", "service"]


def test_a_users_measure_is_one_registered_class(monkeypatch):
    monkeypatch.setattr(registry, "MEASURES", dict(registry.MEASURES))

    @registry.register("tiny_crows")
    class TinyCrows(CrowsPairsMeasure):
        @classmethod
        def from_options(cls, options, model):
            return cls(n=options.sizes["tiny_crows"], seed=options.seed)

    (measure,) = registry.build_measures(["tiny_crows"], MeasureOptions(seed=1, sizes={"tiny_crows": 3}), None)
    assert isinstance(measure, TinyCrows) and len(measure.items) == 3
    with pytest.raises(InputError, match="already registered"):
        registry.register("tiny_crows")(TinyCrows)


def test_unknown_or_no_measures_are_refused_naming_the_registered_ones():
    with pytest.raises(InputError, match=r"unknown audit measure\(s\) 'winobias'; registered: stereoset, crows_pairs"):
        registry.check_measures(["winobias"])
    with pytest.raises(InputError, match="no audit measures"):
        registry.check_measures([])


def test_options_pick_the_settings_they_name():
    options = MeasureOptions.pick({"n_bbq": 4, "seed": 2, "model": "ignored"})
    assert (options.n_bbq, options.seed, options.n_stereoset) == (4, 2, None)
