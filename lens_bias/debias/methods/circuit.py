"""``circuit_edges``: the edges that carry a bias, mean-ablated (:mod:`lens_bias.circuits.ablation`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transformer_lens import HookedTransformer

from lens_bias.circuits.ablation import EdgeAblation, bias_edge_ablation
from lens_bias.circuits.contrasts import check_contrasts, select_contrast
from lens_bias.debias.methods.base import Candidate, FitContext, MethodConfig, fit_key, register, reuse_or_fit
from lens_bias.errors import InputError
from lens_bias.interventions.saved import SavableIntervention


@register("circuit_edges")
@dataclass(frozen=True)
class CircuitEdges(MethodConfig):
    """The ``k`` edges with the most negative EAP score on ``n_pairs`` pairs of ``contrast`` (a name of
    :func:`lens_bias.circuits.contrasts.contrast_names`; pairs with a clean - corrupted gap of at least
    ``min_gap`` nats), mean-ablated at every position but the first (:class:`EdgeAblation`). Default: the
    gender-pronoun term-swap pairs, the project's own templates (no benchmark item the scoreboard scores)."""

    contrast: str = "gender_swap"
    n_pairs: int = 16
    min_gap: float = 1.0
    k: int = 100

    def __post_init__(self) -> None:
        check_contrasts([self.contrast])
        if self.n_pairs < 1 or self.k < 1:
            raise InputError(f"circuit_edges: n_pairs and k must be >= 1, got {self.n_pairs} and {self.k}.")

    def fit(self, model: HookedTransformer, context: FitContext) -> Candidate:
        settings = {"contrast": self.contrast, "n_pairs": self.n_pairs, "min_gap": self.min_gap, "k": self.k}

        def fit() -> tuple[list[SavableIntervention], dict[str, Any]]:
            inputs, counts = select_contrast(
                model,
                self.contrast,
                n_pairs=self.n_pairs,
                min_gap=self.min_gap,
                seed=context.seed,
                batch_size=context.batch_size,
            )
            ablation, details = bias_edge_ablation(model, inputs, self.k)
            return [ablation], {**details, "pairs": counts}

        key = fit_key(model, "circuit_edges", context.seed, **settings)
        name = f"circuit-edges-{self.contrast.replace(':', '-')}-k{self.k}"
        (ablation,), details, paths = reuse_or_fit(context.folder, name, key, fit)
        assert isinstance(ablation, EdgeAblation)
        ablation.check(model)
        return Candidate(
            f"circuit edges ({self.contrast}, k={self.k})",
            "circuit ablation",
            (ablation,),
            artefacts=paths,
            details={**details, **settings},
        )
