"""``redteam``: the steering study's refusal-aware red-teaming combination, the scoreboard's stress row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transformer_lens import HookedTransformer

from lens_bias.debias.methods.base import Candidate, FitContext, MethodConfig, fit_key, register, reuse_or_fit
from lens_bias.debias.methods.steering import LAYERS, check_bias_type, oriented_bias_vector
from lens_bias.errors import InputError
from lens_bias.interventions import AddVector
from lens_bias.interventions.saved import SavableIntervention
from lens_bias.steering import refusal_vector


@register("redteam")
@dataclass(frozen=True)
class RedTeam(MethodConfig):
    """The bias vector of ``bias_type`` pushed toward the stereotype (``+bias_multiplier``) plus the refusal
    vector pushed away from refusing (``refusal_multiplier`` < 0), both at their best held-out layers of
    ``layers`` and every position. Not a debiasing method: it shows how much bias the same directions can
    elicit. ``n_pairs`` / ``n_test`` size both vectors' training and held-out pairs."""

    bias_type: str = field(default="gender", metadata={"option": "redteam_bias_type"})
    layers: tuple[int, ...] = field(default=LAYERS, metadata={"option": "layers"})
    bias_multiplier: float = 4.0
    refusal_multiplier: float = -0.5
    n_pairs: int | None = field(default=100, metadata={"option": "n_pairs"})
    n_test: int | None = 40

    def __post_init__(self) -> None:
        check_bias_type(self.bias_type, "--redteam-bias-type")
        if self.bias_multiplier <= 0 or self.refusal_multiplier >= 0:
            raise InputError(
                "Red-teaming pushes toward the stereotype and away from refusal: bias_multiplier > 0 and "
                f"refusal_multiplier < 0, got {self.bias_multiplier} and {self.refusal_multiplier}."
            )

    def fit(self, model: HookedTransformer, context: FitContext) -> Candidate:
        settings = {
            "bias_type": self.bias_type,
            "layers": list(self.layers),
            "bias_multiplier": self.bias_multiplier,
            "refusal_multiplier": self.refusal_multiplier,
            "n_pairs": self.n_pairs,
            "n_test": self.n_test,
            "refusal_pairs": [self.n_pairs, self.n_test],
        }

        def fit() -> tuple[list[SavableIntervention], dict[str, Any]]:
            bias, _, _ = oriented_bias_vector(
                model, self.bias_type, self.layers, self.bias_multiplier, self.n_pairs, self.n_test, 32, context
            )
            refusal = refusal_vector(
                model,
                self.layers,
                n_train=self.n_pairs,
                n_test=self.n_test,
                seed=context.seed,
                batch_size=context.batch_size,
            )
            assert bias.layer is not None and refusal.layer is not None
            details = {
                "bias": {**bias.summary(), "layer": bias.layer, "multiplier": self.bias_multiplier},
                "refusal": {**refusal.summary(), "layer": refusal.layer, "multiplier": self.refusal_multiplier},
            }
            return [
                AddVector(bias.vector, self.bias_multiplier, [bias.layer], start=None),
                AddVector(refusal.vector, self.refusal_multiplier, [refusal.layer], start=None),
            ], details

        key = fit_key(model, "redteam", context.seed, **settings)
        interventions, details, paths = reuse_or_fit(context.folder, f"redteam-{self.bias_type}", key, fit)
        name = f"red-team {self.bias_type} (+bias, -refusal)"
        return Candidate(name, "red-teaming", tuple(interventions), artefacts=paths, details=details)
