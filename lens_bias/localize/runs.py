"""BiasGym's per-seed loop: inject the bias, find the adversarial entity, score every component.

:func:`injection_runs` does, for each seed, what BiasScope needs before selecting heads: a new entity token
trained into the frozen model (:func:`lens_bias.inject.inject`), its elicitation before and after, the
closest real single-token entity among the spec's candidates (the adversarial input), and every head and
MLP layer scored on the localisation prompts (:func:`score_components`). :func:`selected_heads` keeps the
heads that recur in the top ``k`` across the runs. The BiasScope experiment and the debiasing scoreboard
both call these two.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from transformer_lens import HookedTransformer

from lens_bias.data.injection_specs import InjectionSpec, candidate_entities
from lens_bias.errors import InputError
from lens_bias.inject import (
    Elicitation,
    EntityMatch,
    InjectedEntity,
    InjectionConfig,
    closest_entities,
    elicit,
    inject,
    untrained,
)
from lens_bias.localize.contrast import bias_contrast, localization_prompts
from lens_bias.localize.scores import ComponentScores, ScoreMethod, score_components
from lens_bias.localize.selection import RecurringHeads, recurring_heads
from lens_bias.patching import Direction


@dataclass
class InjectionRun:
    """One seed's injection: the trained ``entity`` and the ``injected`` model carrying it, the elicitation
    log-odds ``before``/``after`` training (entity and the spec's control entities), the closest real
    entities (``matches``), the single-token ``adversarial`` one, and the component ``scores``."""

    seed: int
    entity: InjectedEntity
    injected: HookedTransformer
    before: Elicitation
    after: Elicitation
    matches: list[EntityMatch]
    adversarial: str
    scores: ComponentScores

    def record(self) -> dict[str, Any]:
        """JSON-ready summary: losses, elicitations, the five closest entities, the adversarial one, scores."""
        return {
            "seed": self.seed,
            "loss_first": self.entity.losses[0],
            "loss_last": self.entity.losses[-1],
            "elicitation_before": self.before.to_dict(),
            "elicitation_after": self.after.to_dict(),
            "closest_entities": [vars(m) for m in self.matches[:5]],
            "adversarial_entity": self.adversarial,
            "scores": self.scores.to_dict(),
        }


def injection_runs(
    model: HookedTransformer,
    spec: InjectionSpec,
    seeds: Sequence[int],
    *,
    steps: int = 100,
    lr: float = 3e-3,
    n_templates: int | None = None,
    direction: Direction = "noising",
    batch_size: int = 16,
    progress: bool = False,
) -> list[InjectionRun]:
    """One :class:`InjectionRun` per seed (``steps`` Adam steps at ``lr`` on the entity's embedding only;
    the first ``n_templates`` localisation prompts, None = all; patching ``direction``)."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"seeds: give at least one seed, each once; got {list(seeds)}.")
    templates = localization_prompts(spec)[:n_templates]
    runs = []
    for seed in seeds:
        injection = InjectionConfig(steps=steps, lr=lr, seed=seed)
        entities = [spec.entity_token, *spec.control_entities]
        before = elicit(untrained(model, spec, injection), spec, entities, batch_size=batch_size)
        injected, entity = inject(model, spec, injection)
        after = elicit(injected, spec, entities, batch_size=batch_size)
        matches = closest_entities(injected, entity.embedding, candidate_entities("countries"))
        adversarial = next((m.entity for m in matches if m.n_tokens == 1), None)
        if adversarial is None:
            raise InputError("No candidate country is a single token for this tokenizer: patching needs one.")
        scores = score_components(
            injected,
            bias_contrast(injected, spec, adversarial, templates),
            direction=direction,
            batch_size=64,
            progress=progress,
        )
        runs.append(InjectionRun(seed, entity, injected, before, after, matches, adversarial, scores))
    return runs


def selected_heads(
    runs: Sequence[InjectionRun], k: int, min_runs: int | None = None, method: ScoreMethod = "patching"
) -> RecurringHeads:
    """The heads in the top ``k`` of at least ``min_runs`` runs (default a majority) by ``method``'s
    prompt-mean head scores."""
    return recurring_heads([run.scores.heads(method) for run in runs], k, min_runs)
