"""Circuits: which edges between components carry a behaviour, and how faithful the found circuit is.

On clean/corrupted prompt pairs and any metric of :mod:`lens_bias.patching.metrics`. Modules, one concept each:

* :mod:`~lens_bias.circuits.graph`: senders and receivers on the residual stream, edges (:class:`Graph`,
  :func:`graph_mode`);
* :mod:`~lens_bias.circuits.runs`: the hooks reading senders' outputs and reading or changing receivers' inputs;
* :mod:`~lens_bias.circuits.scores`: EAP and EAP-IG edge scores (:func:`edge_scores`);
* :mod:`~lens_bias.circuits.exact`: exact edge patching, the ground truth (:func:`exact_edge_effects`);
* :mod:`~lens_bias.circuits.faithfulness`: circuits (:func:`top_circuit`, :func:`random_circuit`,
  :func:`prune`), their metric with every other edge corrupted (:func:`circuit_metrics`), :func:`faithfulness`;
* :mod:`~lens_bias.circuits.study`: scores, an exact sample and the faithfulness curve (:func:`circuit_study`).
"""

from lens_bias.circuits.exact import exact_edge_effects
from lens_bias.circuits.faithfulness import circuit_metrics, faithfulness, prune, random_circuit, top_circuit
from lens_bias.circuits.graph import Graph, graph_mode
from lens_bias.circuits.scores import METHODS, EdgeScores, Method, edge_scores
from lens_bias.circuits.study import circuit_study

__all__ = [
    "METHODS",
    "EdgeScores",
    "Graph",
    "Method",
    "circuit_metrics",
    "circuit_study",
    "edge_scores",
    "exact_edge_effects",
    "faithfulness",
    "graph_mode",
    "prune",
    "random_circuit",
    "top_circuit",
]
