"""Directions in the residual stream as plain types: :class:`SteeringVector` (one unit vector per layer) and
:class:`Subspace` (an orthonormal basis per layer). Interventions apply them; the methods of
:mod:`lens_bias.steering` build them."""

from lens_bias.directions.subspace import Subspace
from lens_bias.directions.vector import SteeringVector, mean_norm_across

__all__ = ["SteeringVector", "Subspace", "mean_norm_across"]
