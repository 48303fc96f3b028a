"""``heads``: BiasScope's selected heads scaled (0 = ablated), from a saved selection or fitted here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformer_lens import HookedTransformer

from lens_bias.data.injection_specs import injection_specs
from lens_bias.debias.methods.base import Candidate, FitContext, MethodConfig, fit_key, register, reuse_or_fit
from lens_bias.errors import InputError
from lens_bias.interventions import HeadScaling, load_intervention
from lens_bias.interventions.saved import SavableIntervention
from lens_bias.localize.runs import injection_runs, selected_heads


def _saved_heads(path: Path) -> HeadScaling:
    """The head selection saved at ``path``; InputError when the file is not one."""
    saved = load_intervention(path)
    if not isinstance(saved, HeadScaling):
        raise InputError(f"{path} holds a {saved.describe()['kind']}, not a head scaling.")
    return saved


@register("heads")
@dataclass(frozen=True)
class HeadAblation(MethodConfig):
    """BiasScope's selected heads scaled by ``scale`` (0 = ablation).

    With ``heads_file`` (the ``selected_heads.json`` that ``python -m experiments.biasscope`` saves) its
    heads are used; otherwise they are fitted as that experiment does: one injection of ``attribute`` per
    seed of ``seeds`` (``steps`` training steps), every head scored by activation patching, the heads in the
    top ``k`` of at least ``min_runs`` runs (default a majority) kept (:mod:`lens_bias.localize.runs`)."""

    heads_file: Path | None = field(default=None, metadata={"option": "heads"})
    attribute: str = "reckless_driving"
    seeds: tuple[int, ...] = field(default=(0, 1, 2), metadata={"option": "biasscope_seeds"})
    steps: int = field(default=100, metadata={"option": "biasscope_steps"})
    k: int = field(default=5, metadata={"option": "k"})
    min_runs: int | None = None
    n_templates: int | None = None
    scale: float = field(default=0.0, metadata={"option": "head_scale"})

    def __post_init__(self) -> None:
        if self.heads_file is not None and not Path(self.heads_file).is_file():
            raise InputError(
                f"heads_file (--heads) {self.heads_file}: no such file; run `python -m experiments.biasscope` "
                "first (it writes figures/biasscope/selected_heads.json), pass its path, or leave it out to fit "
                "the heads in the run."
            )
        known = [spec.name for spec in injection_specs()]
        if self.heads_file is None and self.attribute not in known:
            raise InputError(f"Unknown BiasInject attribute {self.attribute!r}; choose from {sorted(known)}.")
        if self.heads_file is not None:
            _saved_heads(self.heads_file)  # a file that is not a saved head selection is refused before any model loads

    def check(self, model: HookedTransformer) -> None:
        if self.heads_file is not None:
            _saved_heads(self.heads_file).check(model)

    def fit(self, model: HookedTransformer, context: FitContext) -> Candidate:
        details: dict[str, Any]
        if self.heads_file is not None:
            saved = _saved_heads(self.heads_file)
            heads, details, paths = saved.heads, {"source": str(self.heads_file)}, [str(self.heads_file)]
        else:
            heads, details, paths = self._fitted_heads(model, context)
        ablation = HeadScaling(heads, self.scale)
        ablation.check(model)
        details = {**details, "heads": [list(h) for h in heads], "scale": self.scale}
        return Candidate(
            f"BiasScope heads x{self.scale:g}", "head ablation", (ablation,), artefacts=paths, details=details
        )

    def _fitted_heads(
        self, model: HookedTransformer, context: FitContext
    ) -> tuple[tuple[tuple[int, int], ...], dict[str, Any], list[str]]:
        spec = next(spec for spec in injection_specs() if spec.name == self.attribute)
        settings = {
            "attribute": self.attribute,
            "seeds": list(self.seeds),
            "steps": self.steps,
            "k": self.k,
            "min_runs": self.min_runs,
            "n_templates": self.n_templates,
        }

        def fit() -> tuple[list[SavableIntervention], dict[str, Any]]:
            options: dict[str, Any] = {
                "n_templates": self.n_templates,
                "batch_size": context.batch_size,
                "progress": context.progress,
            }
            runs = injection_runs(model, spec, self.seeds, steps=self.steps, **options)
            recurring = selected_heads(runs, self.k, self.min_runs)
            details = {
                "attribute": self.attribute,
                "counts": recurring.counts.tolist(),
                "min_runs": recurring.min_runs,
                "adversarial": [run.adversarial for run in runs],
            }
            return [HeadScaling(tuple(recurring.heads), 0.0)], details

        key = fit_key(model, "biasscope", self.seeds[0] if self.seeds else 0, **settings)
        (fitted,), details, paths = reuse_or_fit(context.folder, f"biasscope-{self.attribute}", key, fit)
        assert isinstance(fitted, HeadScaling)
        return fitted.heads, details, paths
