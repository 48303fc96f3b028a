"""Save and load any intervention in one format, through one registry keyed by ``describe()["kind"]``.

A saved intervention is a :class:`lens_bias.provenance.Result` named for its kind: ``{stem}.json`` holds
``config["intervention"]`` (exactly :meth:`Intervention.describe`) plus whatever else the class needs to
rebuild itself (e.g. a steering vector's name, layers and provenance), and ``{stem}.safetensors`` its
tensors (e.g. the vector's directions). Every intervention class joins the registry with
:func:`register`, so :func:`load_intervention` reads any of them back, e.g. a steering study's
``interventions/{name}.json`` or BiasScope's ``selected_heads.json``
(``python -m experiments.side_effects --intervention FILE``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from torch import Tensor

from lens_bias.errors import InputError
from lens_bias.forward.hooks import Intervention
from lens_bias.provenance import Result


class SavableIntervention(Intervention, Protocol):
    """An :class:`Intervention` that :func:`save_intervention` can write and :func:`load_intervention` read."""

    def state(self) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """What :meth:`describe` lacks to rebuild the intervention: JSON-able config entries (saved next to
        ``config["intervention"]``) and named tensors."""
        ...

    @classmethod
    def from_state(
        cls, description: dict[str, Any], config: dict[str, Any], tensors: dict[str, Tensor]
    ) -> "SavableIntervention":
        """Inverse of :meth:`describe` + :meth:`state` (``config`` as loaded from JSON: keys are strings)."""
        ...


#: The registered intervention classes by their ``describe()["kind"]``.
INTERVENTION_KINDS: dict[str, type[SavableIntervention]] = {}

T = TypeVar("T", bound=type[SavableIntervention])


def register(kind: str) -> Callable[[T], T]:
    """Class decorator: saved interventions whose ``describe()["kind"]`` is ``kind`` load as this class."""

    def add(cls: T) -> T:
        if kind in INTERVENTION_KINDS and INTERVENTION_KINDS[kind] is not cls:
            raise ValueError(
                f"Intervention kind {kind!r} is already registered by {INTERVENTION_KINDS[kind].__name__}."
            )
        INTERVENTION_KINDS[kind] = cls
        return cls

    return add


def save_intervention(intervention: SavableIntervention, path_stem: str | Path, provenance: dict[str, Any]) -> Path:
    """Write ``intervention`` as ``{stem}.json`` (+ ``{stem}.safetensors`` when it has tensors), with
    ``provenance``; returns the JSON path, which :func:`load_intervention` reads back."""
    description = intervention.describe()
    kind = description.get("kind")
    if not isinstance(kind, str) or INTERVENTION_KINDS.get(kind) is not type(intervention):
        raise ValueError(
            f"{type(intervention).__name__} (kind {kind!r}) is not a registered intervention: decorate "
            "the class with @lens_bias.interventions.register(kind) and give it state()/from_state()."
        )
    config, tensors = intervention.state()
    return Result(
        kind, values={}, config={"intervention": description, **config}, provenance=provenance, tensors=tensors
    ).save(path_stem)


def load_intervention(path: str | Path) -> SavableIntervention:
    """Read an intervention written by :func:`save_intervention` (the JSON path or the stem); :class:`InputError`
    naming ``path`` for a file that is not one, is damaged, or lacks what its kind needs (e.g. its vector)."""
    result = Result.load(path)
    description = result.config.get("intervention")
    kind = description.get("kind") if isinstance(description, dict) else None
    if not isinstance(description, dict) or kind not in INTERVENTION_KINDS:
        raise InputError(
            f"{path} does not hold a known saved intervention (kind {kind!r}; known: {sorted(INTERVENTION_KINDS)})."
        )
    try:
        return INTERVENTION_KINDS[kind].from_state(description, result.config, result.tensors)
    except InputError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as error:  # a damaged description or tensor
        raise InputError(
            f"{path} is a damaged saved {kind} intervention ({type(error).__name__}: {error}); save it again."
        ) from error
