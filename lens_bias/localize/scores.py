"""BiasScope's component scores: every attention head and MLP layer scored by activation patching and by
direct logit attribution on a :class:`BiasContrast` (:func:`score_components`).

* **Activation patching** (:func:`lens_bias.patching.patch`): target ``z`` (one query head's output, all
  positions) and ``mlp_out`` (one layer at one position). Default direction ``"noising"``: run the
  biased input and patch in the adversarial activation; a head's *contribution* is ``1 - score``, the
  share of the biased-minus-adversarial metric gap that disappears when that head alone sees the real
  entity (necessity: what ablation will test). With ``"denoising"`` the contribution is the score itself
  (the share restored). An MLP layer's contribution is the sum of its per-position contributions (an
  additive approximation of patching every position of the layer at once).
* **Direct logit attribution** (:func:`lens_bias.patching.logit_attribution.direct_attribution`) of the metric on
  each run; the score is (biased run) - (adversarial run), in logits. Summed with the embedding and
  attention-bias terms it equals the metric gap exactly (tested), so it measures the *direct* path only;
  patching includes indirect effects through later layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from lens_bias.errors import InputError
from lens_bias.localize.contrast import BiasContrast
from lens_bias.patching import Direction, patch
from lens_bias.patching.logit_attribution import direct_attribution

ScoreMethod = Literal["patching", "dla"]


#: The per-prompt tensors of :class:`ComponentScores` (what :meth:`ComponentScores.tensors` saves).
SCORE_TENSORS = ("patching_heads", "patching_mlp", "dla_heads", "dla_mlp", "biased_metric", "adversarial_metric")


@dataclass
class ComponentScores:
    """BiasScope scores of every head and MLP layer, per localisation prompt.

    ``patching_heads`` ``[n, n_layers, n_heads]`` and ``patching_mlp`` ``[n, n_layers]``: contribution as
    a share of the metric gap (1 = the whole gap; see the module docstring for ``direction``);
    ``dla_heads``/``dla_mlp``: direct contribution to the gap (logits, biased - adversarial);
    ``biased_metric``/``adversarial_metric``: ``[n]`` the metric (logits) on the two inputs.
    """

    templates: list[str]
    entity: str
    adversarial_entity: str
    direction: Direction
    patching_heads: Float[Tensor, "n n_layers n_heads"]
    patching_mlp: Float[Tensor, "n n_layers"]
    dla_heads: Float[Tensor, "n n_layers n_heads"]
    dla_mlp: Float[Tensor, "n n_layers"]
    biased_metric: Float[Tensor, " n"]
    adversarial_metric: Float[Tensor, " n"]

    def heads(self, method: ScoreMethod = "patching") -> Float[Tensor, "n_layers n_heads"]:
        """Mean head scores over the prompts (NaN-aware: prompts with no metric gap are skipped)."""
        return _method(self, method, "heads").nanmean(0)

    def mlp(self, method: ScoreMethod = "patching") -> Float[Tensor, " n_layers"]:
        """Mean MLP-layer scores over the prompts."""
        return _method(self, method, "mlp").nanmean(0)

    def to_dict(self) -> dict[str, Any]:
        """Prompts, entities, metrics and the prompt-mean scores of both methods, as JSON-able data."""
        return {
            "templates": self.templates,
            "entity": self.entity,
            "adversarial_entity": self.adversarial_entity,
            "direction": self.direction,
            "biased_metric": self.biased_metric.tolist(),
            "adversarial_metric": self.adversarial_metric.tolist(),
            "heads_patching": self.heads("patching").tolist(),
            "heads_dla": self.heads("dla").tolist(),
            "mlp_patching": self.mlp("patching").tolist(),
            "mlp_dla": self.mlp("dla").tolist(),
        }

    def tensors(self, prefix: str = "") -> dict[str, Tensor]:
        """The per-prompt score tensors, for saving in a Result."""
        return {f"{prefix}{name}": getattr(self, name) for name in SCORE_TENSORS}


def _method(scores: ComponentScores, method: ScoreMethod, part: str) -> Tensor:
    if method not in ("patching", "dla"):
        raise InputError(f"Unknown score method {method!r}: use 'patching' or 'dla'.")
    return getattr(scores, f"{method}_{part}")


def score_components(
    model: HookedTransformer,
    contrast: BiasContrast,
    *,
    direction: Direction = "noising",
    batch_size: int = 64,
    progress: bool = False,
) -> ComponentScores:
    """Patching and direct-attribution scores of every head and MLP layer (see the module docstring)."""
    metric = contrast.metric()
    sign = 1.0 if direction == "denoising" else -1.0
    results = {
        target: patch(
            model,
            contrast.biased,
            contrast.adversarial,
            metric,
            target=target,
            direction=direction,
            batch_size=batch_size,
            progress=f"BiasScope patching {target}" if progress else False,
        )
        for target in ("z", "mlp_out")
    }
    dla = [
        direct_attribution(model, batch, contrast.attribute_ids, contrast.neutral_ids, batch_size=batch_size)
        for batch in (contrast.biased, contrast.adversarial)
    ]
    return ComponentScores(
        templates=contrast.templates,
        entity=contrast.entity,
        adversarial_entity=contrast.adversarial_entity,
        direction=direction,
        patching_heads=sign * results["z"].effects(),
        patching_mlp=sign
        * results["mlp_out"].effects().nansum(-1).masked_fill(results["mlp_out"].degenerate[:, None], math.nan),
        dla_heads=dla[0].heads - dla[1].heads,
        dla_mlp=dla[0].mlp - dla[1].mlp,
        biased_metric=results["z"].clean_metric,
        adversarial_metric=results["z"].corrupted_metric,
    )
