"""What every debiasing method shares: the :class:`Candidate` it fits, its registered config, its saved fit.

A method is one registered config dataclass (a subclass of :class:`MethodConfig`) whose
:meth:`~MethodConfig.fit` returns a :class:`Candidate`. Registered by name with :func:`register`, looked up with
:func:`method`; :func:`from_options` builds the configs of several methods from one flat mapping of options (the
debiasing experiment's flags), each field reading the option its ``option`` metadata names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from transformer_lens import HookedTransformer

from lens_bias.cache import cached, canonical
from lens_bias.cells import model_key
from lens_bias.errors import InputError
from lens_bias.interventions import Intervention, load_intervention, save_intervention
from lens_bias.interventions.saved import SavableIntervention
from lens_bias.models import model_record
from lens_bias.provenance import collect_provenance, to_jsonable


@dataclass
class Candidate:
    """One debiasing method ready to evaluate: ``interventions`` on ``model`` (None: the base model).

    ``name`` labels it in the scoreboard, ``family`` groups methods of one kind (``"steering"``,
    ``"red-teaming"``, ``"alignez"``, ``"head ablation"``, ``"fine-tuning"``), ``artefacts`` are the saved
    files or folders it was built from, ``details`` what its fit measured (layer, calibration, ...)."""

    name: str
    family: str
    interventions: tuple[Intervention, ...] = ()
    model: HookedTransformer | None = None
    artefacts: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """JSON-ready record: name, family, the interventions' descriptions, artefacts, details, and the
        model record when the candidate has its own model."""
        return {
            "name": self.name,
            "family": self.family,
            "interventions": [i.describe() for i in self.interventions],
            "model": None if self.model is None else model_record(self.model).to_dict(),
            "artefacts": self.artefacts,
            "details": to_jsonable(self.details),
        }


@dataclass(frozen=True)
class FitContext:
    """What every fit shares: ``folder`` of the saved fits, ``seed``, ``batch_size`` (rows per forward),
    ``progress`` bars, and for a method that trains a new checkpoint the base model's ``source`` (what
    :func:`lens_bias.models.load_model` took) and the ``device`` to load it on."""

    folder: Path
    seed: int = 0
    batch_size: int = 16
    progress: bool = False
    source: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class MethodConfig:
    """The settings of one debiasing method; a subclass registered with :func:`register` is a method.

    A field whose metadata names an ``option`` (``field(default=..., metadata={"option": "head_scale"})``)
    is set from that option by :func:`from_options` (the debiasing experiment's flag ``--head-scale``).

    Subclasses define :meth:`fit`; validation belongs in ``__post_init__`` (InputError), so a bad setting is
    refused before any model loads. :attr:`name` is set by :func:`register`."""

    name: ClassVar[str] = ""

    def fit(self, model: HookedTransformer, context: FitContext) -> Candidate:
        """Fit (or reuse from ``context.folder``) this method on ``model``."""
        raise NotImplementedError(f"{type(self).__name__} does not define fit(model, context).")

    def check(self, model: HookedTransformer) -> None:
        """Refuse (InputError) settings that only ``model`` can rule out (e.g. heads outside it); called for every
        method before the first is fitted (:func:`check_methods`). Default: nothing to check."""

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> list[MethodConfig]:
        """The configs ``options`` asks for: by default one, each field with an ``option`` taken from it."""
        return [cls(**_settings(cls, options))]


def check_methods(methods: Sequence[MethodConfig], model: HookedTransformer) -> None:
    """Every method's :meth:`~MethodConfig.check` on ``model``: call it before the first is fitted (and before
    loading the data they are scored on), so a setting the model rules out is refused before any work."""
    for method in methods:
        method.check(model)


def _settings(cls: type[MethodConfig], options: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: options[its option]}`` for the fields of ``cls`` whose option is in ``options``."""
    out = {}
    for f in fields(cls):
        name = f.metadata.get("option")
        if name is not None and name in options:
            out[f.name] = options[name]
    return out


M = TypeVar("M", bound=type[MethodConfig])
REGISTRY: dict[str, type[MethodConfig]] = {}
"""Every registered method: name -> its config class."""


def register(name: str) -> Callable[[M], M]:
    """Class decorator: register a :class:`MethodConfig` subclass as the debiasing method ``name``."""

    def decorate(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, MethodConfig)):
            raise TypeError(f"@register({name!r}) decorates a MethodConfig subclass, got {cls!r}.")
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise InputError(f"A debiasing method {name!r} is registered already ({REGISTRY[name].__name__}).")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return decorate


def method(name: str) -> type[MethodConfig]:
    """The config class of the registered method ``name``; InputError naming the known methods otherwise."""
    if name not in REGISTRY:
        raise InputError(
            f"Unknown debiasing method {name!r}; known: {', '.join(sorted(REGISTRY))} (register your own with "
            "@lens_bias.debias.methods.register(name) on a MethodConfig subclass)."
        )
    return REGISTRY[name]


def from_options(names: Iterable[str], options: Mapping[str, Any]) -> list[MethodConfig]:
    """The configs of the methods ``names``, in order, each from ``options`` (see :meth:`MethodConfig.from_options`);
    a bad name or setting raises InputError before anything is fitted."""
    names = list(names)
    if not names:
        raise InputError(f"No debiasing methods given; choose from {', '.join(sorted(REGISTRY))}.")
    return [config for name in names for config in method(name).from_options(options)]


def fit_key(model: HookedTransformer, method: str, seed: int, **settings: Any) -> dict[str, Any]:
    """The key of a saved fit: method, model (:func:`lens_bias.cells.model_key`), seed and settings."""
    return {"method": method, "model": model_key(model), "seed": seed, "settings": settings}


def reuse_or_fit(
    folder: str | Path,
    name: str,
    key: Mapping[str, Any],
    fit: Callable[[], tuple[Sequence[SavableIntervention], dict[str, Any]]],
) -> tuple[list[SavableIntervention], dict[str, Any], list[str]]:
    """The interventions saved in ``{folder}/{name}/`` (``{i}.json`` each, ``fit.json`` with their details)
    when they were fitted for ``key`` (:func:`lens_bias.cache.cached`: another key or a damaged file is a
    warning and a refit); otherwise ``fit()`` -> (interventions, details), saved there with the key in their
    provenance. Returns (interventions, details, paths)."""
    stem = Path(folder) / name
    key = canonical(key)

    def compute(staging: Path) -> None:
        interventions, details = fit()
        staging.mkdir(parents=True)
        provenance = {**collect_provenance(model_record=key.get("model"), seed=key.get("seed")), "fit_key": key}
        for n, intervention in enumerate(interventions):
            save_intervention(intervention, staging / str(n), provenance)
        index = {"n": len(interventions), "details": json.loads(json.dumps(to_jsonable(details)))}
        (staging / "fit.json").write_text(json.dumps(index, indent=1), encoding="utf-8")

    def load(path: Path) -> tuple[list[SavableIntervention], dict[str, Any], list[str]]:
        index = json.loads((path / "fit.json").read_text(encoding="utf-8"))
        paths = [str(stem / f"{i}.json") for i in range(index["n"])]
        return [load_intervention(p) for p in paths], index["details"], paths

    return cached(stem, key, compute, load, what="saved debiasing fit").value
