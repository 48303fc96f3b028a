"""Fit a steering vector in one call: split -> contrast activations -> vector -> held-out separability -> layer -> sign.

:func:`fit_vector` reads paired activations of a :class:`lens_bias.data.ContrastSplit`'s training and held-out
pairs at ``layers``, builds the vector on the training pairs, measures each layer on the held-out pairs
(paired AUC of the projection on the vector, :func:`lens_bias.steering.separability.separability`, and the
standardised margin, :func:`lens_bias.steering.separability.effect_size`), picks the layer with the highest AUC (ties:
largest effect size, then earliest) and, given a measure, fixes the sign by measurement there
(:func:`lens_bias.steering.orient`). :meth:`FittedVector.normalized` rescales the vector (e.g. to the mean
norm across bias types, as contrastive activation addition does) and re-measures it;
:meth:`FittedVector.oriented` fixes the sign afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.data import ContrastSplit
from lens_bias.data.records import ContrastPair
from lens_bias.directions import SteeringVector
from lens_bias.errors import InputError
from lens_bias.forward.hooks import ResidHook
from lens_bias.forward.readouts import score_pairs
from lens_bias.prompts import ChatTemplate
from lens_bias.steering.build import build_vector
from lens_bias.steering.contrast import ContrastActivations, SentenceReadout, contrast_activations
from lens_bias.steering.methods import Method
from lens_bias.steering.separability import best_layer, effect_size, separability
from lens_bias.steering.sweep import OrientationMeasure, orient


@dataclass(frozen=True)
class FittedVector:
    """A steering vector fitted on ``split.train`` and measured on ``split.test``.

    ``train`` / ``test``: the paired activations (``[n_pairs, n_layers, d_model]`` each side; ``test`` is
    None when fitted without held-out pairs, and so are the measures below). ``separability``: per layer,
    the held-out paired AUC (0.5 = chance); ``effect_size``: per layer, mean / std of the held-out paired
    margins (dimensionless); ``layer``: the best layer by AUC, ties by effect size, then the earliest.
    ``orientation``: the sign calibration record of :func:`lens_bias.steering.orient` (None until oriented).
    """

    vector: SteeringVector
    split: ContrastSplit
    train: ContrastActivations
    test: ContrastActivations | None = None
    separability: dict[int, float] | None = None
    effect_size: dict[int, float] | None = None
    layer: int | None = None
    orientation: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """What a result records of the fit: the split's description, the best layer, the per-layer held-out
        separability and effect size, and the orientation record."""
        return {
            "data": self.split.describe(),
            "best_layer": self.layer,
            "separability": self.separability,
            "effect_size": self.effect_size,
            "orientation": self.orientation,
        }

    def measured(self) -> "FittedVector":
        """The held-out separability, effect size and best layer of :attr:`vector` (unchanged without ``test``)."""
        if self.test is None:
            return self
        auc, effect = separability(self.vector, self.test), effect_size(self.vector, self.test)
        return replace(self, separability=auc, effect_size=effect, layer=best_layer(auc, tie_break=effect))

    def normalized(self, norms: float | Tensor) -> "FittedVector":
        """The vector rescaled to ``norms`` per layer (:meth:`SteeringVector.normalized`), re-measured."""
        if self.orientation is not None:
            raise InputError("Normalise before orienting: the orientation was measured at the old norm.")
        return replace(self, vector=self.vector.normalized(norms)).measured()

    def oriented(
        self, measure: OrientationMeasure, multiplier: float, *, start: str | None = "instruction_end"
    ) -> "FittedVector":
        """The sign fixed by ``measure`` at :attr:`layer` with ``+/- multiplier``
        (:func:`lens_bias.steering.orient`)."""
        if self.layer is None:
            raise InputError("Orientation is measured at the best held-out layer: fit with held_out=True.")
        vector, record = orient(self.vector, measure, self.layer, multiplier, start=start)
        return replace(self, vector=vector, orientation=record)


def preference_measure(
    model: HookedTransformer, pairs: Sequence[ContrastPair], *, batch_size: int = 16
) -> OrientationMeasure:
    """The orientation measure of sentence contrasts: under the steering, the mean over ``pairs`` of
    per-token mean log P(positive) - log P(negative) (nats; :func:`lens_bias.forward.readouts.score_pairs`)."""

    def measure(steer: list) -> float:
        return float(score_pairs(model, pairs, interventions=steer, batch_size=batch_size).preference().mean())

    return measure


N_CALIBRATION = 32
"""Training pairs a sentence contrast's sign is measured on (:func:`orient_toward_positive`)."""


def orient_toward_positive(
    model: HookedTransformer,
    fitted: FittedVector,
    multiplier: float,
    *,
    n_calibration: int = N_CALIBRATION,
    batch_size: int = 16,
) -> tuple[FittedVector, list[ContrastPair], OrientationMeasure]:
    """``fitted`` with its sign fixed so that ``+multiplier`` (added at every position of its best layer)
    raises the preference for the positive side (:func:`preference_measure`) of its first ``n_calibration``
    training pairs, as :func:`lens_bias.steering.orient` measures it; returns (oriented fit, those pairs, their
    measure)."""
    calibration = list(fitted.split.train[:n_calibration])
    measure = preference_measure(model, calibration, batch_size=batch_size)
    return fitted.oriented(measure, multiplier, start=None), calibration, measure


def fit_vector(
    model: HookedTransformer,
    split: ContrastSplit,
    layers: Sequence[int],
    *,
    name: str | None = None,
    template: ChatTemplate | None = None,
    readout: SentenceReadout = "last",
    hook: ResidHook = "resid_post",
    method: Method | str = "mean_difference",
    batch_size: int = 16,
    seed: int | None = None,
    held_out: bool = True,
    orient_by: OrientationMeasure | None = None,
    orient_multiplier: float | None = None,
    orient_start: str | None = "instruction_end",
    progress: bool | str = False,
) -> FittedVector:
    """A steering vector for ``split`` at ``layers``, measured on the held-out pairs, optionally oriented.

    ``template``: required for chat splits (``split.chat``: prompts as user messages, sides as answer starts),
    refused for raw-text ones. ``readout``/``hook``/``batch_size``: how activations are read
    (:func:`contrast_activations`); ``method``: a registered vector method (:func:`build_vector`); ``seed``:
    recorded in the provenance.
    ``held_out=False`` reads only the training pairs (no separability, layer or orientation).
    ``orient_by``: an :data:`OrientationMeasure` (e.g. :func:`preference_measure` on training pairs) to fix the
    sign with ``+/- orient_multiplier`` at the best layer, added from ``orient_start`` on.
    ``progress``: True or a label (default label: the name) for progress bars.
    """
    name = name or split.name
    if split.chat and template is None:
        raise InputError(
            f"Contrast {split.name!r} holds chat pairs: pass template=lens_bias.prompts.template_for(model)."
        )
    if not split.chat and template is not None:
        raise InputError(
            f"Contrast {split.name!r} holds raw-text pairs, read without a chat template: pass template=None."
        )
    if orient_by is not None and (orient_multiplier is None or not held_out):
        raise InputError("Orientation needs orient_multiplier and the held-out layer (held_out=True).")
    label = progress if isinstance(progress, str) else name

    def read(pairs: Sequence[ContrastPair], part: str) -> ContrastActivations:
        return contrast_activations(
            model,
            pairs,
            layers,
            template=template,
            readout=readout,
            hook=hook,
            batch_size=batch_size,
            progress=progress and f"{label}: {part}",
        )

    train = read(split.train, "train")
    test = read(split.test, "test") if held_out else None
    vector = build_vector(
        name, train, method=method, model=model, items=split.train, dataset=f"{name} train", seed=seed
    )
    fitted = FittedVector(vector, split, train, test).measured()
    if orient_by is None or orient_multiplier is None:  # orient_multiplier is set whenever orient_by is (checked above)
        return fitted
    return fitted.oriented(orient_by, orient_multiplier, start=orient_start)
