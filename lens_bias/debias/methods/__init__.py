"""Debiasing methods that plug in by name: each a registered config dataclass whose ``fit`` gives a :class:`Candidate`.

A :class:`Candidate` is "a way to get a model (+ hooks) to evaluate": the model it runs on (None: the base
model) and the interventions applied to it. The registered methods (:data:`REGISTRY`, looked up with
:func:`method`):

* interventions on the base model: ``steering`` (:class:`Steering`, one per bias type), ``redteam``
  (:class:`RedTeam`, the refusal-aware red-teaming combination of the steering study), ``alignez_svd`` and
  ``alignez_ccs`` (:class:`AlignEZ`, :class:`AlignEZCCS`), ``heads`` (:class:`HeadAblation`, BiasScope's heads),
  ``circuit_edges`` (:class:`CircuitEdges`, the edges that carry a bias, mean-ablated; not in the scoreboard's
  default ``--methods``: ask for it);
* a new checkpoint: ``lora`` (:class:`LoraFinetune`), a merged model folder that
  :func:`lens_bias.models.load_model` reads.

Every fitted artefact is saved under ``context.folder`` (interventions in the one saved format of
:mod:`lens_bias.interventions.saved`, through the artefact cache :func:`lens_bias.cache.cached`) and reused by a
later fit whose key (method, settings, model record, data) is the same; any change refits.

Your own method is one registered class; it then runs on the scoreboard by its name (``experiments.debias.main(
["--methods", "halve_heads", ...])`` in the process that registered it; its fields with an ``option`` read
that flag)::

    from dataclasses import dataclass, field
    from pathlib import Path
    from lens_bias.debias.methods import Candidate, FitContext, MethodConfig, method, register
    from lens_bias.interventions import HeadScaling

    @register("halve_heads")
    @dataclass(frozen=True)
    class HalveHeads(MethodConfig):
        heads: tuple[tuple[int, int], ...] = ((0, 0),)
        scale: float = field(default=0.5, metadata={"option": "head_scale"})  # --head-scale sets it

        def fit(self, model, context: FitContext) -> Candidate:
            return Candidate(f"heads x{self.scale:g}", "head ablation", (HeadScaling(self.heads, self.scale),))

    candidate = method("halve_heads")().fit(model, FitContext(folder=Path("artefacts")))
"""

from lens_bias.debias.methods.alignez import AlignEZ, AlignEZCCS
from lens_bias.debias.methods.base import (
    REGISTRY,
    Candidate,
    FitContext,
    MethodConfig,
    check_methods,
    fit_key,
    from_options,
    method,
    register,
    reuse_or_fit,
)
from lens_bias.debias.methods.circuit import CircuitEdges
from lens_bias.debias.methods.heads import HeadAblation
from lens_bias.debias.methods.lora import LoraFinetune
from lens_bias.debias.methods.redteam import RedTeam
from lens_bias.debias.methods.steering import LAYERS, STEER_MULTIPLIERS, Steering

__all__ = [
    "LAYERS",
    "REGISTRY",
    "STEER_MULTIPLIERS",
    "AlignEZ",
    "AlignEZCCS",
    "Candidate",
    "CircuitEdges",
    "FitContext",
    "HeadAblation",
    "LoraFinetune",
    "MethodConfig",
    "RedTeam",
    "Steering",
    "check_methods",
    "fit_key",
    "from_options",
    "method",
    "register",
    "reuse_or_fit",
]
