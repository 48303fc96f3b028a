"""Residual-stream steering vectors: read paired activations, build and fit vectors, sweep and orient them.

* :mod:`~lens_bias.steering.contrast`: :func:`contrast_activations` -> :class:`ContrastActivations`.
* :mod:`~lens_bias.steering.methods`: the direction methods by registered name: vector methods
  (``mean_difference``, ``first_pc``) and subspace methods (``svd``, ``ccs``, each with a config dataclass),
  :func:`build_subspace`; an unknown name raises InputError naming the known ones.
* :mod:`~lens_bias.steering.build`: :func:`build_vector` (a registered vector method) and
  :func:`svd_subspace` -> a ``Subspace``.
* :mod:`~lens_bias.steering.ccs`: :func:`ccs_subspace` (contrast-consistent search: one unsupervised probe
  direction per layer, as a ``Subspace``) and its loss :func:`ccs_loss`.
* :mod:`~lens_bias.steering.sweep`: :func:`sweep` over layers x multipliers and :func:`orient` (sign by
  measurement, an :data:`OrientationMeasure`).
* :mod:`~lens_bias.steering.fit`: :func:`fit_vector`, the whole pipeline (split -> activations -> vector ->
  held-out separability -> best layer -> sign) in one call -> :class:`FittedVector`;
  :func:`orient_toward_positive`, a sentence contrast's sign fixed on its training pairs.
* :mod:`~lens_bias.steering.fluency`: :class:`FluencyReadout`, a sweep's cost on neutral text.
* :mod:`~lens_bias.steering.generations`: :func:`steered_generations` at a few multipliers.
* :mod:`~lens_bias.steering.refusal`: :func:`refusal_vector`, the steering study's refusal vector (oriented
  toward refusing) in one call, and :func:`refusal_sweep` (refusal propensity and gender bias under it).

What they build are the plain types of :mod:`lens_bias.directions`
(:class:`~lens_bias.directions.SteeringVector`, :class:`~lens_bias.directions.Subspace`). The interventions that apply
them (:class:`~lens_bias.interventions.AddVector`,
:class:`~lens_bias.interventions.ProjectOut`, :class:`~lens_bias.interventions.SubspaceEdit`) live in
:mod:`lens_bias.interventions` (import them from there).
"""

from lens_bias.steering.build import build_vector, svd_subspace
from lens_bias.steering.ccs import ccs_loss, ccs_subspace
from lens_bias.steering.contrast import ContrastActivations, SentenceReadout, contrast_activations
from lens_bias.steering.fit import FittedVector, fit_vector, orient_toward_positive, preference_measure
from lens_bias.steering.fluency import FluencyReadout
from lens_bias.steering.generations import steered_generations
from lens_bias.steering.methods import (
    CCSConfig,
    Method,
    SVDConfig,
    build_subspace,
    subspace_config,
    subspace_method,
    vector_method,
)
from lens_bias.steering.refusal import refusal_sweep, refusal_vector
from lens_bias.steering.sweep import OrientationMeasure, orient, sweep

__all__ = [
    "CCSConfig",
    "ContrastActivations",
    "FittedVector",
    "FluencyReadout",
    "Method",
    "OrientationMeasure",
    "SVDConfig",
    "SentenceReadout",
    "build_subspace",
    "build_vector",
    "ccs_loss",
    "ccs_subspace",
    "contrast_activations",
    "fit_vector",
    "orient",
    "orient_toward_positive",
    "preference_measure",
    "refusal_sweep",
    "refusal_vector",
    "steered_generations",
    "subspace_config",
    "subspace_method",
    "svd_subspace",
    "sweep",
    "vector_method",
]
