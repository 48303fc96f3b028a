"""Residual-stream steering vectors: read paired activations, build and fit vectors, sweep and orient them.

* :mod:`~lens_bias.steering.contrast`: :func:`contrast_activations` -> :class:`ContrastActivations`.
* :mod:`~lens_bias.steering.build`: :func:`build_vector` (mean difference or first PC) and
  :func:`svd_subspace` -> a ``Subspace``.
* :mod:`~lens_bias.steering.ccs`: :func:`ccs_subspace` (contrast-consistent search: one unsupervised probe
  direction per layer, as a ``Subspace``) and its loss :func:`ccs_loss`.
* :mod:`~lens_bias.steering.sweep`: :func:`sweep` over layers x multipliers and :func:`orient` (sign by
  measurement).
* :mod:`~lens_bias.steering.fit`: :func:`fit_vector`, the whole pipeline (split -> activations -> vector ->
  held-out separability -> best layer -> sign) in one call -> :class:`FittedVector`.
* :mod:`~lens_bias.steering.refusal`: :func:`refusal_vector`, the steering study's refusal vector (oriented
  toward refusing) in one call.

What they build are the plain types of :mod:`lens_bias.directions`
(:class:`~lens_bias.directions.SteeringVector`, :class:`~lens_bias.directions.Subspace`). The interventions that apply
them (:class:`~lens_bias.interventions.AddVector`,
:class:`~lens_bias.interventions.ProjectOut`, :class:`~lens_bias.interventions.SubspaceEdit`) live in
:mod:`lens_bias.interventions` (import them from there).
"""

from lens_bias.steering.build import Method, build_vector, svd_subspace
from lens_bias.steering.ccs import ccs_loss, ccs_subspace
from lens_bias.steering.contrast import ContrastActivations, SentenceReadout, contrast_activations
from lens_bias.steering.fit import FittedVector, fit_vector, preference_measure
from lens_bias.steering.refusal import refusal_vector
from lens_bias.steering.sweep import Measure, orient, sweep

__all__ = [
    "ContrastActivations",
    "FittedVector",
    "Measure",
    "Method",
    "SentenceReadout",
    "build_vector",
    "ccs_loss",
    "ccs_subspace",
    "contrast_activations",
    "fit_vector",
    "orient",
    "preference_measure",
    "refusal_vector",
    "svd_subspace",
    "sweep",
]
