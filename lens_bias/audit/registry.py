"""The audit's measures by name: ``--measures`` of ``experiments.audit`` resolves through :data:`MEASURES`.

A measure class is registered with ``register("name")`` and builds itself from the audit's settings with
``from_options(options, model)`` (:class:`lens_bias.audit.base.MeasureOptions`: every size and choice of
the audit's flags; a measure reads the ones it needs, a user's own measure its entry of ``sizes``). A
user's own measure is one registered class that implements :class:`lens_bias.audit.base.Measure` (usually
a :class:`lens_bias.audit.base.RowMeasure`); its figures, if any, go in
:data:`lens_bias.figures.audit.DRAWERS`::

    @register("winobias")
    class WinoBiasMeasure(RowMeasure):
        name = "winobias"

        @classmethod
        def from_options(cls, options, model):
            return cls(n=options.sizes.get("winobias"), seed=options.seed)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lens_bias.audit.base import Measure, MeasureOptions
from lens_bias.audit.bbq import BBQMeasure
from lens_bias.audit.crows_pairs import CrowsPairsMeasure
from lens_bias.audit.persona import PersonaBBQMeasure
from lens_bias.audit.service import ServiceMeasure
from lens_bias.audit.stereoset import StereoSetMeasure
from lens_bias.errors import InputError
from lens_bias.models import AnyModel

MEASURES: dict[str, type[Measure]] = {}
"""Registered measure name -> its class."""


def register(name: str) -> Callable[[type[Measure]], type[Measure]]:
    """Class decorator: register a measure class (with ``from_options``) under ``name``."""

    def decorate(cls: type[Measure]) -> type[Measure]:
        if name in MEASURES:
            raise InputError(f"An audit measure named {name!r} is already registered; pick another name.")
        MEASURES[name] = cls
        return cls

    return decorate


def check_measures(names: Sequence[str]) -> None:
    """Raise InputError naming the registered measures when ``names`` is empty or names one not registered."""
    unknown = [name for name in names if name not in MEASURES]
    if unknown or not names:
        what = f"unknown audit measure(s) {', '.join(map(repr, unknown))}" if unknown else "no audit measures"
        raise InputError(f"{what}; registered: {', '.join(MEASURES)} (lens_bias.audit.registry.register adds one).")


def check_options(names: Sequence[str], settings: Mapping[str, Any]) -> None:
    """Before any model loads: :func:`check_measures` of ``names`` and :class:`MeasureOptions`' own checks of
    ``settings`` (an experiment's config as a dict)."""
    check_measures(names)
    MeasureOptions.pick(settings)


def build_measures(names: Sequence[str], options: MeasureOptions, model: AnyModel | None) -> list[Measure]:
    """The measures ``names`` (registered names, in order), their items drawn with ``options.seed``."""
    check_measures(names)
    return [MEASURES[name].from_options(options, model) for name in names]


for _measure in (StereoSetMeasure, CrowsPairsMeasure, BBQMeasure, PersonaBBQMeasure, ServiceMeasure):
    register(_measure.name)(_measure)
