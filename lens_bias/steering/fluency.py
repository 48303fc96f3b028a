"""The fluency readout of a steering sweep: how much steering costs the model on neutral text.

:class:`FluencyReadout` holds neutral texts and their unsteered scores; :meth:`FluencyReadout.sweep` reads, per
multiplier at one layer, the change (nats per token) of the texts' mean per-token log-probability with the vector
added at every position, a bootstrap mean over texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from jaxtyping import Float

from lens_bias.cache import key_sha256
from lens_bias.cells import CellStore
from lens_bias.directions import SteeringVector
from lens_bias.forward.readouts import continuation_logprobs
from lens_bias.interventions import AddVector
from lens_bias.models import AnyModel
from lens_bias.stats import bootstrap_mean
from lens_bias.steering.sweep import sweep


@dataclass(frozen=True)
class FluencyReadout:
    """Neutral ``texts`` and their unsteered ``base`` scores ``[n_texts]`` (mean per-token log-probability,
    nats), read in batches of ``batch_size``; intervals bootstrapped with ``seed``."""

    texts: tuple[str, ...]
    base: Float[np.ndarray, " n_texts"]
    batch_size: int
    seed: int

    @classmethod
    def on(cls, model: AnyModel, texts: Sequence[str], *, batch_size: int, seed: int) -> "FluencyReadout":
        """The readout of ``texts``, their unsteered scores read on ``model``."""
        texts = tuple(texts)
        base = continuation_logprobs(model, [""] * len(texts), list(texts), batch_size=batch_size).mean.numpy()
        return cls(texts, base, batch_size, seed)

    @property
    def readout(self) -> dict[str, Any]:
        """What identifies this readout in a sweep's cell keys."""
        return {"name": "neutral_delta_logprob", "texts": key_sha256({"texts": self.texts}), "batch": self.batch_size}

    def sweep(
        self,
        model: AnyModel,
        vector: SteeringVector,
        layer: int,
        multipliers: Sequence[float],
        cells: CellStore,
        name: str,
    ) -> list[dict[str, Any]]:
        """Per multiplier, the fluency cost of ``vector`` added at every position of ``layer``: sweep rows with
        ``delta_logprob`` (an Estimate dict, nats per token)."""
        return sweep(
            model,
            vector,
            [layer],
            multipliers,
            self.evaluate,
            cells=cells,
            readout=self.readout,
            start=None,
            progress=f"{name}: fluency",
        )

    def evaluate(self, model: AnyModel, steer: list[AddVector]) -> dict[str, Any]:
        """One setting: the bootstrap mean over texts of the steered minus the unsteered score."""
        texts = list(self.texts)
        scores = continuation_logprobs(model, [""] * len(texts), texts, interventions=steer, batch_size=self.batch_size)
        return {"delta_logprob": bootstrap_mean(scores.mean.numpy() - self.base, seed=self.seed).to_dict()}
