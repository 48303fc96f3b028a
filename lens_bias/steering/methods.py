"""Direction methods by registered name: paired activations -> a steering vector's directions or a subspace.

Two registries, filled where each method is defined (SAELens-style ``register`` decorators):

* vector methods (:data:`VECTOR_METHODS`: ``mean_difference``, ``first_pc``, in :mod:`~lens_bias.steering.build`):
  ``method(differences [n_pairs, n_layers, d_model]) -> directions [n_layers, d_model]`` (residual units),
  used by :func:`lens_bias.steering.build_vector` (``method=name``);
* subspace methods (:data:`SUBSPACE_METHODS`: ``svd`` in :mod:`~lens_bias.steering.build`, ``ccs`` in
  :mod:`~lens_bias.steering.ccs`): ``method(activations, **settings) -> Subspace``, each with a frozen
  config dataclass of its settings (:class:`SVDConfig`, :class:`CCSConfig`), built by :func:`build_subspace`.

Lookups by an unknown name raise :class:`~lens_bias.errors.InputError` naming the known methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, TypeVar

from jaxtyping import Float
from torch import Tensor

from lens_bias.directions import Subspace
from lens_bias.errors import InputError
from lens_bias.steering.contrast import ContrastActivations

#: The built-in vector methods' names, for typing a setting that names one (any registered name works).
Method = Literal["mean_difference", "first_pc"]
#: ``differences [n_pairs, n_layers, d_model] -> directions [n_layers, d_model]`` (residual units).
VectorMethod = Callable[[Float[Tensor, "n n_layers d_model"]], Float[Tensor, "n_layers d_model"]]


@dataclass(frozen=True)
class SVDConfig:
    """Settings of the ``svd`` subspace (:func:`lens_bias.steering.svd_subspace`): keep components up to
    ``variance`` (share in (0, 1]) of the paired differences' variance; ``max_pair_cosine``: drop pairs whose
    two sides have a cosine above it first (None: keep every pair)."""

    variance: float = 0.9
    max_pair_cosine: float | None = None


@dataclass(frozen=True)
class CCSConfig:
    """Settings of the ``ccs`` subspace (:func:`lens_bias.steering.ccs_subspace`): probe starts drawn with
    ``seed``, ``n_tries`` starts, ``epochs`` full-batch AdamW steps with ``lr`` and ``weight_decay``."""

    seed: int = 0
    n_tries: int = 10
    epochs: int = 1000
    lr: float = 1e-3
    weight_decay: float = 0.01


@dataclass(frozen=True)
class SubspaceMethod:
    """A registered subspace method: ``build(activations, **asdict(config))`` and its config type."""

    name: str
    build: Callable[..., Subspace]
    config: type[Any]


VECTOR_METHODS: dict[str, VectorMethod] = {}
SUBSPACE_METHODS: dict[str, SubspaceMethod] = {}

F = TypeVar("F", bound=Callable[..., Any])


def register_vector_method(name: str) -> Callable[[F], F]:
    """Register a vector method under ``name`` (a decorator)."""

    def register(method: F) -> F:
        VECTOR_METHODS[name] = method
        return method

    return register


def register_subspace_method(name: str, config: type[Any]) -> Callable[[F], F]:
    """Register a subspace method under ``name`` with its settings' ``config`` dataclass (a decorator)."""

    def register(method: F) -> F:
        SUBSPACE_METHODS[name] = SubspaceMethod(name, method, config)
        return method

    return register


def _lookup(kind: str, registry: dict[str, Any], name: str) -> Any:
    if name not in registry:
        raise InputError(f"Unknown {kind} method {name!r}: use one of {', '.join(map(repr, sorted(registry)))}.")
    return registry[name]


def vector_method(name: str) -> VectorMethod:
    """The vector method registered as ``name``."""
    return _lookup("vector", VECTOR_METHODS, name)


def subspace_method(name: str) -> SubspaceMethod:
    """The subspace method registered as ``name``."""
    return _lookup("subspace", SUBSPACE_METHODS, name)


def subspace_config(name: str, **settings: Any) -> Any:
    """The config of subspace method ``name`` with ``settings`` (unknown settings: InputError naming the known)."""
    config = subspace_method(name).config
    known = {f.name for f in fields(config)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise InputError(
            f"Method {name!r} has no setting {', '.join(unknown)}: its settings are {', '.join(sorted(known))}."
        )
    return config(**settings)


def build_subspace(activations: ContrastActivations, method: str, config: Any = None) -> Subspace:
    """The subspace of ``activations`` by the registered ``method``, with ``config`` (default: the method's
    default config; it must be the method's config type)."""
    entry = subspace_method(method)
    config = config if config is not None else entry.config()
    if not isinstance(config, entry.config):
        raise InputError(f"Method {method!r} takes a {entry.config.__name__}, got {type(config).__name__}.")
    return entry.build(activations, **asdict(config))
