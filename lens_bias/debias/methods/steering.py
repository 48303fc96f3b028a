"""``steering``: the best debiasing steering vector of one bias type, its multiplier calibrated to unbiased."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from transformer_lens import HookedTransformer

from lens_bias.data.contrast_splits import CONTRASTS, contrast_split
from lens_bias.data.records import ContrastPair, fingerprint
from lens_bias.debias.methods.base import Candidate, FitContext, MethodConfig, fit_key, register, reuse_or_fit
from lens_bias.errors import InputError
from lens_bias.interventions import AddVector
from lens_bias.interventions.saved import SavableIntervention
from lens_bias.steering import FittedVector, fit_vector, orient_toward_positive
from lens_bias.steering.sweep import OrientationMeasure

STEER_MULTIPLIERS = (-8.0, -4.0, -2.0, -1.0, 1.0, 2.0, 4.0, 8.0)
"""Raw multipliers a debiasing vector is calibrated over: negative toward the anti-stereotype, positive for
a model that already prefers the anti-stereotype (the unbiased point can be on either side)."""
BIAS_CONTRASTS = tuple(name for name in CONTRASTS if name != "refusal")
"""The contrasts a bias vector is fitted on: the StereoSet bias types and ``gender_prompts``."""
LAYERS = (4, 8, 12, 16, 20)
"""Candidate layers of the steering and red-teaming vectors (the embedded model has 30)."""


def check_bias_type(bias_type: str, option: str) -> None:
    """InputError unless ``bias_type`` is one of :data:`BIAS_CONTRASTS` (``option``: its flag, for the message)."""
    if bias_type not in BIAS_CONTRASTS:
        raise InputError(f"Unknown bias type {bias_type!r} ({option}); choose from {', '.join(BIAS_CONTRASTS)}.")


def oriented_bias_vector(
    model: HookedTransformer,
    bias_type: str,
    layers: Sequence[int],
    orient_multiplier: float,
    n_pairs: int | None,
    n_test: int | None,
    n_calibration: int,
    context: FitContext,
) -> tuple[FittedVector, list[ContrastPair], OrientationMeasure]:
    """The mean-difference vector of ``bias_type`` (averaged from the first differing token) on its training
    targets, its best held-out layer, its sign fixed with ``+/- orient_multiplier`` so that + is toward the
    stereotype on the first ``n_calibration`` training pairs; returns (vector, those pairs, their measure)."""
    split = contrast_split(bias_type, n_train=n_pairs, n_test=n_test, seed=context.seed)
    fitted = fit_vector(
        model,
        split,
        layers,
        readout="mean_from_difference",
        seed=context.seed,
        batch_size=context.batch_size,
        progress=f"{bias_type} vector" if context.progress else False,
    )
    return orient_toward_positive(
        model, fitted, orient_multiplier, n_calibration=n_calibration, batch_size=context.batch_size
    )


@register("steering")
@dataclass(frozen=True)
class Steering(MethodConfig):
    """The best debiasing steering vector of one StereoSet bias type (``gender``, ``race``, ``religion``,
    ``profession``) or of ``gender_prompts``; :meth:`from_options` gives one per ``steer_bias_types``.

    Fit: the mean difference (stereotype - anti-stereotype, averaged from the first differing token) on
    the contrast's training targets at ``layers``; the layer with the best held-out separability; the sign
    fixed so that a positive multiplier pushes toward the stereotype. Then the debiasing multiplier: of
    ``multipliers`` (non-zero; negative: toward the anti-stereotype, positive: toward the stereotype, for a
    model that already prefers the anti-stereotype), the one whose steered preference on
    ``n_calibration`` training pairs (mean per-token log P(stereotype) - log P(anti-stereotype), nats) is
    closest to 0, the unbiased point. Applied at that layer at every position (raw-text benchmarks have no
    instruction end). Only training targets are used: the scoreboard scores StereoSet on the others.
    """

    bias_type: str = "gender"
    layers: tuple[int, ...] = field(default=LAYERS, metadata={"option": "layers"})
    multipliers: tuple[float, ...] = field(default=STEER_MULTIPLIERS, metadata={"option": "steer_multipliers"})
    n_pairs: int | None = field(default=100, metadata={"option": "n_pairs"})
    n_test: int | None = 40
    n_calibration: int = 32

    def __post_init__(self) -> None:
        check_bias_type(self.bias_type, "--steer-bias-types")
        if not self.multipliers or 0 in self.multipliers:
            raise InputError(
                "multipliers (--steer-multipliers) must be non-zero (the unsteered model is the baseline), got "
                f"{list(self.multipliers)}."
            )

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> list[MethodConfig]:
        """One config per bias type of ``options["steer_bias_types"]`` (absent: :attr:`bias_type`)."""
        (base,) = super().from_options(options)
        assert isinstance(base, Steering)
        bias_types = options.get("steer_bias_types", (base.bias_type,))
        if not bias_types:
            raise InputError("--steer-bias-types is empty: give a bias type or drop steering from --methods.")
        return [replace(base, bias_type=bias_type) for bias_type in bias_types]

    def fit(self, model: HookedTransformer, context: FitContext) -> Candidate:
        settings = {
            "bias_type": self.bias_type,
            "layers": list(self.layers),
            "multipliers": list(self.multipliers),
            "n_pairs": self.n_pairs,
            "n_test": self.n_test,
            "n_calibration": self.n_calibration,
        }

        def fit() -> tuple[list[SavableIntervention], dict[str, Any]]:
            fitted, calibration, measure = oriented_bias_vector(
                model,
                self.bias_type,
                self.layers,
                max(abs(m) for m in self.multipliers),
                self.n_pairs,
                self.n_test,
                self.n_calibration,
                context,
            )
            assert fitted.layer is not None
            layer = fitted.layer
            steered = {m: measure([AddVector(fitted.vector, m, [layer], start=None)]) for m in self.multipliers}
            best = min(self.multipliers, key=lambda m: abs(steered[m]))
            details = {
                **fitted.summary(),
                "layer": layer,
                "multiplier": best,
                "relative_multiplier": fitted.vector.relative_multiplier(best, layer),
                "calibration": {
                    "unsteered": measure([]),
                    "steered": {str(m): v for m, v in steered.items()},
                    "n_pairs": len(calibration),
                    "pairs": fingerprint(calibration),
                },
            }
            return [AddVector(fitted.vector, best, [layer], start=None)], details

        key = fit_key(model, "steering", context.seed, **settings)
        interventions, details, paths = reuse_or_fit(context.folder, f"steer-{self.bias_type}", key, fit)
        return Candidate(f"steer {self.bias_type}", "steering", tuple(interventions), artefacts=paths, details=details)
