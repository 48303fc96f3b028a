"""``circuit_edges``: the edges that carry a bias, mean-ablated (:mod:`lens_bias.circuits.ablation`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transformer_lens import HookedTransformer

from lens_bias.circuits.ablation import EdgeAblation, bias_edge_ablation, gap_change
from lens_bias.circuits.contrasts import check_contrasts, select_contrast
from lens_bias.circuits.graph import Graph
from lens_bias.circuits.overlap import split_halves
from lens_bias.debias.methods.base import Candidate, FitContext, MethodConfig, fit_key, register, reuse_or_fit
from lens_bias.errors import InputError
from lens_bias.interventions.saved import SavableIntervention


@register("circuit_edges")
@dataclass(frozen=True)
class CircuitEdges(MethodConfig):
    """The ``k`` edges with the most negative EAP score on ``n_pairs`` pairs of ``contrast`` (a name of
    :func:`lens_bias.circuits.contrasts.contrast_names`; pairs with a clean - corrupted gap of at least
    ``min_gap`` nats) that are not among the top ``control_edges`` edges of ``control``'s pairs (its circuit,
    what the model should keep; None: no control), mean-ablated at every position but the first
    (:class:`EdgeAblation`, :func:`bias_edge_ablation`). Default: the gender-pronoun term-swap pairs minus the
    definitional-gender control, the project's own templates (no benchmark item the scoreboard scores).

    Each contrast is screened for ``2 * n_pairs`` pairs, cut in two halves (seeded,
    :func:`~lens_bias.circuits.overlap.split_halves`): the edges are chosen on one, and the other, held out,
    measures the fit (``details["held_out"]``, :func:`~lens_bias.circuits.ablation.gap_change`): the contrast's
    mean gap without and with the ablation (it should shrink) and the control's (it should stay)."""

    contrast: str = field(default="gender_swap", metadata={"option": "circuit_contrast"})
    control: str | None = field(default="gender_definitional", metadata={"option": "circuit_control"})
    control_edges: int = field(default=1000, metadata={"option": "circuit_control_edges"})
    n_pairs: int = 16
    min_gap: float = 1.0
    k: int = field(default=100, metadata={"option": "circuit_k"})

    def __post_init__(self) -> None:
        check_contrasts([self.contrast] + ([self.control] if self.control is not None else []))
        if self.control == self.contrast:
            raise InputError(f"circuit_edges: the control must differ from the contrast, both are {self.contrast!r}.")
        if self.n_pairs < 1 or self.k < 1 or self.control_edges < 0:
            raise InputError(
                f"circuit_edges: n_pairs and k must be >= 1 and control_edges >= 0, got {self.n_pairs}, {self.k} "
                f"and {self.control_edges}."
            )

    def check(self, model: HookedTransformer) -> None:
        n_edges = Graph.of(model).n_edges
        excluded = 0 if self.control is None else self.control_edges
        if self.k + excluded > n_edges:
            raise InputError(
                f"circuit_edges: k ({self.k}) + control_edges ({excluded}) exceed the model's {n_edges} edges; "
                "lower --circuit-k or --circuit-control-edges."
            )

    def fit(self, model: HookedTransformer, context: FitContext) -> Candidate:
        self.check(model)
        settings = {"contrast": self.contrast, "n_pairs": self.n_pairs, "min_gap": self.min_gap, "k": self.k}
        settings |= {"control": self.control, "control_edges": self.control_edges}
        select: dict[str, Any] = {"n_pairs": 2 * self.n_pairs, "min_gap": self.min_gap, "seed": context.seed}
        select |= {"batch_size": context.batch_size}

        def fit() -> tuple[list[SavableIntervention], dict[str, Any]]:
            chosen, counts = select_contrast(model, self.contrast, **select)
            inputs, held = split_halves(chosen, context.seed)
            control = control_held = None
            pairs: dict[str, Any] = {"pairs": counts}
            if self.control is not None:
                kept, pairs["control_pairs"] = select_contrast(model, self.control, **select)
                control, control_held = split_halves(kept, context.seed)
            ablation, details = bias_edge_ablation(
                model, inputs, self.k, control=control, control_edges=self.control_edges
            )
            held_out = {"contrast": gap_change(model, ablation, held, batch_size=context.batch_size)}
            if control_held is not None:
                held_out["control"] = gap_change(model, ablation, control_held, batch_size=context.batch_size)
            return [ablation], {**details, **pairs, "held_out": held_out}

        key = fit_key(model, "circuit_edges", context.seed, **settings)
        minus = "" if self.control is None else f"-minus-{self.control.replace(':', '-')}{self.control_edges}"
        name = f"circuit-edges-{self.contrast.replace(':', '-')}{minus}-k{self.k}"
        (ablation,), details, paths = reuse_or_fit(context.folder, name, key, fit)
        assert isinstance(ablation, EdgeAblation)
        ablation.check(model)
        label = (
            self.contrast if self.control is None else f"{self.contrast} minus {self.control} top {self.control_edges}"
        )
        return Candidate(
            f"circuit edges ({label}, k={self.k})",
            "circuit ablation",
            (ablation,),
            artefacts=paths,
            details={**details, **settings},
        )
